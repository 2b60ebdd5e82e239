"""Dataset uploads and splits over HTTP."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

API = "/api/v1"
CSV = b"a,b,kind\n" + b"".join(f"{i},{i * 2},{'x' if i % 3 else 'y'}\n".encode() for i in range(30))


def _npz(x, y) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    return buffer.getvalue()


def test_builtins_are_listed_and_described(client):
    listed = {d["id"]: d for d in client.get(f"{API}/datasets").json()}
    assert listed["iris"]["n_samples"] == 150 and listed["iris"]["class_counts"] == {"0": 50, "1": 50, "2": 50}
    assert client.get(f"{API}/datasets/digits").json()["feature_shape"] == [64]
    assert client.get(f"{API}/datasets/nope").status_code == 404
    assert client.get(f"{API}/datasets/999").status_code == 404


def test_csv_upload_is_stored_with_checksum_and_splits(client, settings):
    r = client.post(f"{API}/datasets", data={"name": "toy", "target": "kind"}, files={"file": ("toy.csv", CSV)})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["sha256"] == hashlib.sha256(CSV).hexdigest() and d["size_bytes"] == len(CSV)
    assert (d["task"], d["n_samples"], d["feature_shape"]) == ("classification", 30, [2])
    assert d["class_counts"] == {"x": 20, "y": 10}
    assert len(list(settings.upload_dir.glob("*.npz"))) == 1
    assert client.get(f"{API}/datasets/{d['id']}").json() == d
    split = client.post(f"{API}/splits", json={"dataset": d["id"], "strategy": "stratified",
                                               "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}})
    assert split.status_code == 201, split.text
    s = split.json()
    assert s["sizes"] == {"train": 18, "val": 6, "test": 6}
    assert {part: counts["y"] for part, counts in s["class_counts"].items()} == {"train": 6, "val": 2, "test": 2}
    assert client.get(f"{API}/splits/{s['id']}").json() == s


def test_npz_upload_of_images(client):
    x = np.random.default_rng(0).normal(size=(20, 1, 8, 8))
    r = client.post(f"{API}/datasets", data={"name": "imgs"},
                    files={"file": ("imgs.npz", _npz(x, np.arange(20) % 2))})
    assert r.status_code == 201, r.text
    assert r.json()["feature_shape"] == [1, 8, 8]


@pytest.mark.parametrize("files, data, field", [
    ({"file": ("e.csv", b"")}, {"name": "e", "target": "y"}, "file"),
    ({"file": ("r.csv", b"a,y\n1,0\n2\n")}, {"name": "r", "target": "y"}, "file"),
    ({"file": ("n.csv", b"a,y\n1,0\nnan,1\n")}, {"name": "n", "target": "y"}, "file"),
    ({"file": ("m.csv", b"a,y\n1,0\n2,1\n")}, {"name": "m", "target": "label"}, "target"),
    ({"file": ("o.csv", b"a,y\n1,0\n2,0\n")}, {"name": "o", "target": "y"}, "target"),
    ({"file": ("big.csv", b"a,y\n1,0\n" + b"2" * 140_000 + b",1\n")}, {"name": "b", "target": "y"}, "file"),
])
def test_bad_uploads_are_422(client, files, data, field):
    r = client.post(f"{API}/datasets", data=data, files=files)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", field]


def test_too_large_upload_is_413(client, settings):
    big = b"a,y\n" + b"1,0\n" * (settings.max_upload_bytes // 4 + 10)
    r = client.post(f"{API}/datasets", data={"name": "big", "target": "y"}, files={"file": ("big.csv", big)})
    assert r.status_code == 413


@pytest.mark.parametrize("payload, loc", [
    ({"dataset": "nope"}, ["body", "dataset"]),
    ({"dataset": 12345}, ["body", "dataset"]),
    ({"dataset": -(2**31) - 1}, ["body", "dataset"]),  # outside the id column's range: no row, no 500
    ({"dataset": 2**63}, ["body", "dataset"]),
    ({"dataset": "diabetes", "strategy": "stratified"}, ["body", "strategy"]),
    ({"dataset": "iris", "fractions": {"train": 0.5, "val": 0.2, "test": 0.2}}, ["body", "fractions"]),
])
def test_bad_splits_are_422(client, payload, loc):
    r = client.post(f"{API}/splits", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def _rows(session_factory, split_id):
    from store.models import Split

    with session_factory() as s:
        split = s.get(Split, split_id)
        return split.train_indices, split.val_indices, split.test_indices


def test_split_reproduces_for_a_seed(client, session_factory):
    """Made again after the first is deleted, a split with the same seed has the same rows."""
    a = client.post(f"{API}/splits", json={"dataset": "wine", "seed": 9}).json()
    rows = _rows(session_factory, a["id"])
    assert client.delete(f"{API}/splits/{a['id']}").status_code == 204
    b = client.post(f"{API}/splits", json={"dataset": "wine", "seed": 9})
    assert b.status_code == 201 and b.json()["id"] != a["id"]
    assert _rows(session_factory, b.json()["id"]) == rows
    assert client.get(f"{API}/splits/4242").status_code == 404


@pytest.mark.parametrize("change", [
    {"seed": 10}, {"strategy": "stratified"}, {"fractions": {"train": 0.8, "val": 0.1, "test": 0.1}},
    {"dataset": "iris"},
])
def test_asking_again_for_a_split_returns_it_instead_of_a_copy(client, change):
    """Issue 12: six rejected submissions with a ``split:`` block left six identical splits.
    The same dataset, strategy, fractions and seed in the same project is the same split (200);
    any difference makes a new one (201)."""
    body = {"dataset": "wine", "strategy": "random", "fractions": {"train": 0.7, "val": 0.2, "test": 0.1}, "seed": 9}
    first = client.post(f"{API}/splits", json=body)
    assert first.status_code == 201
    again = client.post(f"{API}/splits", json={"dataset": "wine", "seed": 9})  # the defaults spelled out above
    assert again.status_code == 200 and again.json() == first.json()
    other = client.post(f"{API}/splits", json={**body, **change})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    listed = [s["id"] for s in client.get(f"{API}/splits").json()]
    assert listed.count(first.json()["id"]) == 1 and len(listed) == len(set(listed))


def test_splits_are_listed_oldest_first_and_paginated(client):
    made = [client.post(f"{API}/splits", json={"dataset": name, "seed": i}).json()
            for i, name in enumerate(["iris", "wine", "digits"])]
    listed = client.get(f"{API}/splits").json()
    assert [s["id"] for s in listed] == [m["id"] for m in made]
    assert listed[1] == made[1]  # the same public view as GET /splits/{id}
    assert "train_indices" not in listed[0]
    page = client.get(f"{API}/splits", params={"limit": 1, "offset": 2}).json()
    assert [s["id"] for s in page] == [made[2]["id"]]
    assert client.get(f"{API}/splits", params={"limit": 0}).status_code == 422


def test_a_declared_oversized_upload_is_refused_before_its_body_is_read():
    """The ASGI wrapper answers 413 from the Content-Length alone: receive() is never awaited."""
    import asyncio

    from api.datasets.limits import DeclaredSizeLimit

    async def app(scope, receive, send):  # the endpoint: would read the body
        await receive()
        raise AssertionError("the app ran")

    async def receive():
        raise AssertionError("the body was read")

    sent = []

    async def send(message):
        sent.append(message)

    wrapped = DeclaredSizeLimit(app, path="/api/v1/datasets", max_bytes=1000)
    scope = {"type": "http", "method": "POST", "path": "/api/v1/datasets",
             "headers": [(b"content-length", str(1000 + 64 * 1024 + 1).encode())]}
    asyncio.run(wrapped(scope, receive, send))
    assert sent[0]["status"] == 413 and b"upload larger than 1000 bytes" in sent[1]["body"]
    # within the limit (and other paths) the request goes through untouched
    for path, length in [("/api/v1/datasets", 1000), ("/api/v1/splits", 10**9)]:
        with pytest.raises(AssertionError, match="the body was read"):
            asyncio.run(wrapped({**scope, "path": path, "headers": [(b"content-length", str(length).encode())]},
                                receive, send))


def test_an_npz_that_decompresses_past_the_limit_is_413(client, settings):
    """A few KB of compressed zeros can hold gigabytes; the zip directory says how big they get."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((settings.max_upload_bytes // 8, 2)), y=np.zeros(settings.max_upload_bytes // 8))
    assert len(buffer.getvalue()) < settings.max_upload_bytes  # small on the wire
    r = client.post(f"{API}/datasets", data={"name": "bomb"}, files={"file": ("bomb.npz", buffer.getvalue())})
    assert r.status_code == 413 and "decompressed" in r.json()["detail"], r.text


def test_uploads_and_splits_can_be_deleted_once_nothing_uses_them(client, settings):
    """Issue 12: nothing could be freed.  A split in use, or an upload a split uses, is 409
    naming what uses it; the stored arrays go with the last upload that shares them."""
    csv = ("a,b,target\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40))).encode()

    def upload(name):
        r = client.post("/api/v1/datasets", data={"name": name, "target": "target"}, files={"file": ("d.csv", csv)})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    first, twin = upload("first"), upload("same content")
    split = client.post("/api/v1/splits", json={"dataset": first}).json()["id"]
    run = client.post("/api/v1/experiments", json={"name": "r", "split_id": split, "architecture": {"name": "linear"},
                                                   "solver": {"name": "sgd"}}).json()["id"]
    (stored,) = list(settings.upload_dir.iterdir())  # one file: the two uploads share it

    assert client.delete("/api/v1/datasets/iris").status_code == 409
    r = client.delete(f"/api/v1/datasets/{first}")
    assert r.status_code == 409 and f"split(s) [{split}]" in r.json()["detail"]
    r = client.delete(f"/api/v1/splits/{split}")
    assert r.status_code == 409 and f"experiment(s) [{run}]" in r.json()["detail"]
    client.post(f"/api/v1/experiments/{run}/cancel")
    assert client.delete(f"/api/v1/experiments/{run}").status_code == 204
    assert client.delete(f"/api/v1/splits/{split}").status_code == 204
    assert client.get(f"/api/v1/splits/{split}").status_code == 404
    assert client.delete(f"/api/v1/datasets/{first}").status_code == 204
    assert stored.exists()  # the twin still needs it
    assert client.delete(f"/api/v1/datasets/{twin}").status_code == 204
    assert not stored.exists()
    assert client.get(f"/api/v1/datasets/{twin}").status_code == 404


def _upload_named(client, name: str, project_id: int | None = None) -> int:
    data = {"name": name, "target": "kind"} | ({"project_id": str(project_id)} if project_id else {})
    r = client.post(f"{API}/datasets", data=data, files={"file": ("toy.csv", CSV)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_an_upload_is_split_by_its_name_and_a_typo_gets_a_suggestion(client):
    dataset_id = _upload_named(client, "flowers")
    by_name = client.post(f"{API}/splits", json={"dataset": "flowers", "strategy": "stratified", "seed": 1})
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["dataset"] == dataset_id
    by_id = client.post(f"{API}/splits", json={"dataset": dataset_id, "strategy": "stratified", "seed": 1})
    assert by_id.status_code == 200 and by_id.json()["id"] == by_name.json()["id"]  # the same rows: the same split

    typo = client.post(f"{API}/splits", json={"dataset": "flowerz"})
    assert typo.status_code == 422, typo.text
    assert typo.json()["detail"][0]["loc"] == ["body", "dataset"]
    assert "did you mean 'flowers'?" in typo.json()["detail"][0]["msg"]
    builtin_typo = client.post(f"{API}/splits", json={"dataset": "irsi"})
    assert "did you mean 'iris'?" in builtin_typo.json()["detail"][0]["msg"]


def test_two_uploads_of_one_name_must_be_named_by_id(client):
    first, second = _upload_named(client, "twice"), _upload_named(client, "twice")
    r = client.post(f"{API}/splits", json={"dataset": "twice"})
    assert r.status_code == 422, r.text
    message = r.json()["detail"][0]["msg"]
    assert f"{first} (project" in message and f"{second} (project" in message and "by its id" in message


def test_another_projects_upload_is_not_found_by_name(app, client, session_factory):
    from fastapi.testclient import TestClient

    from tests.identity import bearer, make_user, new_project, token_for

    _upload_named(client, "private")
    outside = new_project(session_factory, "outside")
    with session_factory() as session, session.begin():
        stranger = make_user(session, "stranger", roles={outside: "editor"})
        token = token_for(session, stranger)
    with TestClient(app, headers=bearer(token)) as other:
        r = other.post(f"{API}/splits", json={"dataset": "private", "project_id": outside})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["msg"].startswith("no dataset named private (built-ins: ")
