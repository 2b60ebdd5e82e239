"""Bad input is a 4xx naming the field and the problem, never a 500: non-finite numbers in a
body that fails validation, digit strings ``int`` cannot read, NUL characters PostgreSQL cannot
store.  Every case runs on both databases."""

from __future__ import annotations

import json

import pytest

API = "/api/v1"
NUL = "\x00"
MANY_NINES = "9" * 5000  # past int()'s 4300-digit limit


def _strict_json(text: str):
    """Parse as RFC 8259 JSON: NaN/Infinity are not JSON."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _experiment(split_id=1, **over) -> dict:
    body = {"name": "r", "split_id": split_id, "architecture": {"name": "mlp"}, "solver": {"name": "sgd"}}
    body.update(over)
    return body


def _raw(body: dict, token: str, value: str) -> bytes:
    """``body`` as JSON text with the string ``token`` replaced by the bare ``value`` (NaN, 1e400)."""
    return json.dumps(body).replace(json.dumps(token), value).encode()


# (path, body with a "@" placeholder, the raw text put in its place, the error's loc)
NON_FINITE = [
    ("/experiments", _experiment(solver={"name": "sgd", "base_lr": "@"}), "NaN", ["body", "solver", "sgd", "base_lr"]),
    ("/experiments", _experiment(solver={"name": "sgd", "base_lr": "@"}), "Infinity",
     ["body", "solver", "sgd", "base_lr"]),
    ("/experiments", _experiment(solver={"name": "sgd", "base_lr": "@"}), "-Infinity",
     ["body", "solver", "sgd", "base_lr"]),
    ("/experiments", _experiment(scheduler={"name": "constant", "warmup_steps": "@"}), "1e400",
     ["body", "scheduler", "constant", "warmup_steps"]),
    ("/experiments", _experiment(training={"epochs": "@"}), "NaN", ["body", "training", "epochs"]),
    ("/experiments", _experiment(training={"grad_clip_norm": "@"}), "-1e400", ["body", "training", "grad_clip_norm"]),
    ("/splits", {"dataset": "iris", "fractions": {"train": "@", "val": 0, "test": 0}}, "1e400",
     ["body", "fractions", "train"]),
    ("/experiments/1/metrics", {"points": [{"name": "loss", "step": "@", "value": 1.0}]}, "1e400",
     ["body", "points", 0, "step"]),
    ("/experiments/1/metrics", {"points": [{"name": "loss", "step": 0, "value": 1.0, "wall_time": "@"}]}, "NaN",
     ["body", "points", 0, "wall_time"]),
]


@pytest.mark.parametrize("path, body, value, loc", NON_FINITE)
def test_non_finite_numbers_in_a_bad_body_are_a_json_422(client, path, body, value, loc):
    r = client.post(API + path, content=_raw(body, "@", value), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = _strict_json(r.text)["detail"]
    assert loc in [d["loc"] for d in detail]
    for d in detail:
        assert {"loc", "msg", "type"} <= set(d) and d["msg"]
    hit = next(d for d in detail if d["loc"] == loc)
    assert hit["input"] in ("NaN", "Infinity", "-Infinity")  # what was sent, as a string


def test_validation_errors_keep_fastapis_shape(client):
    r = client.post(f"{API}/experiments", json=_experiment(training={"epochs": 0}))
    assert r.status_code == 422
    (d,) = [d for d in r.json()["detail"] if d["loc"] == ["body", "training", "epochs"]]
    assert d["type"] == "greater_than_equal" and d["input"] == 0 and d["ctx"] == {"ge": 1}


# digits str.isdigit() accepts and int() does not, and digit runs longer than any id
@pytest.mark.parametrize("method, path, kwargs, code, loc", [
    ("get", "/datasets/%C2%B2", {}, 404, None),
    ("get", "/datasets/%D9%A3", {}, 404, None),  # ARABIC-INDIC DIGIT THREE: int() reads it, not an id either
    ("get", f"/datasets/{MANY_NINES}", {}, 404, None),
    ("get", f"/datasets/{2**31}", {}, 404, None),
    ("get", "/datasets/0", {}, 404, None),
    ("post", "/splits", {"json": {"dataset": "²"}}, 422, ["body", "dataset"]),
    ("post", "/splits", {"json": {"dataset": MANY_NINES}}, 422, ["body", "dataset"]),
    ("post", "/splits", {"json": {"dataset": str(2**40)}}, 422, ["body", "dataset"]),
    ("get", "/compare?ids=%C2%B2", {}, 422, ["query", "ids"]),
    ("get", "/compare?ids=1,%C2%B2", {}, 422, ["query", "ids"]),
    ("get", "/compare?ids=%D9%A3", {}, 422, ["query", "ids"]),
    ("get", f"/compare?ids={'9' * 3999}", {}, 422, ["query", "ids"]),
])
def test_unreadable_digits_are_not_found_or_422(client, method, path, kwargs, code, loc):
    r = getattr(client, method)(API + path, **kwargs)
    assert r.status_code == code, r.text
    if loc is not None:
        assert r.json()["detail"][0]["loc"] == loc
    else:
        assert "does not exist" in r.json()["detail"] or "no dataset named" in r.json()["detail"]


# the header is only a hint (the body is read up to the limit either way): unreadable is ignored,
# too many digits to read is too large
@pytest.mark.parametrize("length, code", [("²".encode(), 201), (b"1" * 5000, 413), (b"-5", 201)])
def test_an_unreadable_content_length_does_not_break_the_upload(client, length, code):
    csv = b"a,y\n1,0\n2,1\n"
    r = client.post(f"{API}/datasets", data={"name": "d", "target": "y"}, files={"file": ("d.csv", csv)},
                    headers={"content-length": length})
    assert r.status_code == code, r.text


@pytest.fixture
def experiment_id(client, iris_split):
    r = client.post(f"{API}/experiments", json=_experiment(iris_split["id"], tags=["t"]))
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    points = [{"name": "loss", "step": 0, "value": 1.0}]
    assert client.post(f"{API}/experiments/{eid}/metrics", json={"points": points}).status_code == 200
    return eid


def _nul_cases():
    yield "post", "/experiments", {"json": _experiment(name=f"a{NUL}b")}, ["body", "name"]
    yield "post", "/experiments", {"json": _experiment(description=f"x{NUL}")}, ["body", "description"]
    yield "post", "/experiments", {"json": _experiment(tags=["ok", NUL])}, ["body", "tags", 1]
    yield "post", "/experiments/{eid}/clone", {"json": {"name": f"c{NUL}"}}, ["body", "name"]
    yield "post", "/experiments/{eid}/clone", {"json": {"tags": [f"{NUL}t"]}}, ["body", "tags", 0]
    yield "post", "/experiments/{eid}/metrics", {"json": {"points": [{"name": f"l{NUL}", "step": 1, "value": 0}]}}, \
        ["body", "points", 0, "name"]
    yield "post", "/datasets", {"data": {"name": f"d{NUL}", "target": "y"}, "files": {"file": ("d.csv", b"a,y\n1,0\n2,1\n")}}, \
        ["body", "name"]
    yield "post", "/datasets", {"data": {"name": "d", "target": f"y{NUL}"}, "files": {"file": ("d.csv", b"a,y\n1,0\n2,1\n")}}, \
        ["body", "target"]
    yield "get", "/experiments", {"params": {"solver": f"sgd{NUL}"}}, ["query", "solver"]
    yield "get", "/experiments", {"params": {"tag": f"t{NUL}"}}, ["query", "tag"]
    yield "get", "/experiments/{eid}/metrics", {"params": {"names": f"loss,{NUL}"}}, ["query", "names"]
    yield "get", "/compare?ids={eid}", {"params": {"names": f"{NUL}loss"}}, ["query", "names"]


@pytest.mark.parametrize("method, path, kwargs, loc", list(_nul_cases()))
def test_nul_characters_are_422_naming_the_field(client, experiment_id, method, path, kwargs, loc):
    r = getattr(client, method)(API + path.format(eid=experiment_id), **kwargs)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    hit = [d for d in detail if d["loc"] == loc]
    assert hit, detail
    assert "must not contain NUL characters" in hit[0]["msg"]
    assert client.get(f"{API}/experiments").json()["total"] == 1  # nothing new stored


def _multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand: httpx would percent-encode a NUL in the file name."""
    boundary = "x-boundary-x"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: text/csv\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_nul_in_an_uploaded_file_name_is_422(client):
    body, content_type = _multipart({"name": "d", "target": "y"}, f"d{NUL}.csv", b"a,y\n1,0\n2,1\n")
    r = client.post(f"{API}/datasets", content=body, headers={"content-type": content_type})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{"loc": ["body", "file"], "msg": "the file name must not contain NUL characters",
                                   "type": "value_error"}]


@pytest.mark.parametrize("text, want", [
    ("7", 7), ("007", 7), ("2147483647", 2**31 - 1), ("0" * 5000 + "12", 12),
    ("0", None), ("2147483648", None), (MANY_NINES, None), ("", None), ("²", None), ("٣", None), ("1²", None),
    ("-1", None), ("+1", None), (" 1", None), ("1_000", None), ("1.0", None),
])
def test_parse_id_reads_ascii_digits_in_the_id_range_only(text, want):
    from api.ids import parse_id

    assert parse_id(text) == want
