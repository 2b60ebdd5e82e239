"""``Idempotency-Key`` on the four submissions (api/idempotency.py), over HTTP on both databases:
a repeat returns the first answer and creates and enqueues nothing; another request with the
key is 409; keys are per user and expire; a bad key is 422.  Then concurrent requests with one
key against a real PostgreSQL server (its own database, real commits): exactly one creates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text, update

from api.idempotency import KEY_HEADER, KEY_LIFETIME, REPLAYED_HEADER
from store.models import IdempotencyKey, utcnow
from tests.identity import bearer, default_project_id, make_user, token_for

API = "/api/v1"
CSV = b"a,b,kind\n" + b"".join(f"{i},{i * 2},{'x' if i % 3 else 'y'}\n".encode() for i in range(30))


def _spec(split_id: int, name: str) -> dict:
    return {"name": name, "split_id": split_id, "architecture": {"name": "mlp", "width": 8},
            "solver": {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 1}}


@dataclass(frozen=True)
class Operation:
    """One keyed submission: ``send(http, ctx, variant, headers)`` posts request ``variant``
    (another variant differs in its body only); ``prepare(http)`` makes what it needs."""

    name: str
    table: str  # where what it creates is stored
    enqueues: bool
    service: tuple[str, str]  # the module and function doing the work (slowed in the race)
    send: Callable[[httpx.Client, dict, int, dict], httpx.Response]
    prepare: Callable[[httpx.Client], dict] = lambda http: {}


def _split(http) -> dict:
    r = http.post(f"{API}/splits", json={"dataset": "iris", "strategy": "stratified", "seed": 1})
    assert r.status_code in (200, 201), r.text
    return {"split_id": r.json()["id"]}


def _source_experiment(http) -> dict:
    ctx = _split(http)
    r = http.post(f"{API}/experiments", json=_spec(ctx["split_id"], "source"))
    assert r.status_code == 201, r.text
    return {**ctx, "source_id": r.json()["id"]}


OPERATIONS = [
    Operation("create_experiment", "experiments", True, ("api.experiments.service", "create"),
              lambda http, ctx, v, h: http.post(f"{API}/experiments", json=_spec(ctx["split_id"], f"run-{v}"),
                                                headers=h),
              _split),
    Operation("clone_experiment", "experiments", True, ("api.experiments.service", "clone"),
              lambda http, ctx, v, h: http.post(f"{API}/experiments/{ctx['source_id']}/clone",
                                                json={"name": f"clone-{v}"}, headers=h),
              _source_experiment),
    Operation("upload_dataset", "datasets", False, ("api.datasets.service", "create_upload"),
              lambda http, ctx, v, h: http.post(f"{API}/datasets", data={"name": f"toy-{v}", "target": "kind"},
                                                files={"file": ("toy.csv", CSV)}, headers=h)),
    Operation("create_split", "splits", False, ("api.splits.service", "create_split"),
              lambda http, ctx, v, h: http.post(f"{API}/splits", json={"dataset": "iris", "seed": 100 + v},
                                                headers=h)),
]
BY_NAME = pytest.mark.parametrize("op", OPERATIONS, ids=[op.name for op in OPERATIONS])


def _count(factory, table: str) -> int:
    with factory() as s:
        return s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _sent_count(enqueued) -> int:
    return len(enqueued.sent)


@BY_NAME
def test_a_repeat_returns_the_first_answer_and_creates_and_enqueues_nothing(op, client, session_factory, enqueued):
    ctx = op.prepare(client)
    key = {KEY_HEADER: f"{op.name}-1"}
    first = op.send(client, ctx, 0, key)
    assert first.status_code == 201, first.text
    assert REPLAYED_HEADER.lower() not in first.headers
    rows, sent = _count(session_factory, op.table), _sent_count(enqueued)
    if op.enqueues:  # the fresh request enqueued its run
        assert enqueued.sent[-1][0] == first.json()["id"]

    for _ in range(2):
        again = op.send(client, ctx, 0, key)
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers[REPLAYED_HEADER] == "true"
    assert _count(session_factory, op.table) == rows
    assert _sent_count(enqueued) == sent


@BY_NAME
def test_the_same_key_with_another_request_is_409_naming_the_key(op, client, session_factory):
    ctx = op.prepare(client)
    key = {KEY_HEADER: "reused key"}
    assert op.send(client, ctx, 0, key).status_code == 201
    rows = _count(session_factory, op.table)
    other = op.send(client, ctx, 1, key)
    assert other.status_code == 409 and "'reused key'" in other.json()["detail"]
    assert _count(session_factory, op.table) == rows
    # another operation with the key is another request too
    elsewhere = client.post(f"{API}/splits", json={"dataset": "wine", "seed": 5}, headers=key)
    assert elsewhere.status_code == 409


@BY_NAME
def test_keys_belong_to_their_user(op, client, session_factory):
    ctx = op.prepare(client)
    key = {KEY_HEADER: "shared"}
    mine = op.send(client, ctx, 0, key)
    assert mine.status_code == 201
    with session_factory() as s:
        bob = make_user(s, "bob", roles={default_project_id(s): "editor"})
        bobs = bearer(token_for(s, bob))
        s.commit()
    rows = _count(session_factory, op.table)
    theirs = op.send(client, ctx, 1, {**key, **bobs})  # no 409: bob's key is not the admin's
    assert theirs.status_code == 201, theirs.text
    assert REPLAYED_HEADER.lower() not in theirs.headers and theirs.json()["id"] != mine.json()["id"]
    assert _count(session_factory, op.table) == rows + 1
    assert op.send(client, ctx, 1, {**key, **bobs}).headers[REPLAYED_HEADER] == "true"


@BY_NAME
def test_an_expired_key_is_deleted_and_can_be_used_again(op, client, session_factory):
    ctx = op.prepare(client)
    assert op.send(client, ctx, 0, {KEY_HEADER: "old"}).status_code == 201
    with session_factory() as s:
        s.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
                  .values(created_at=utcnow() - KEY_LIFETIME - timedelta(minutes=1)))
        s.commit()
    # any keyed request clears expired keys, anyone's
    assert op.send(client, ctx, 2, {KEY_HEADER: "new"}).status_code == 201
    assert _keys(session_factory, "old") == 0
    rows = _count(session_factory, op.table)
    again = op.send(client, ctx, 1, {KEY_HEADER: "old"})  # another request: no 409 once expired
    assert again.status_code == 201 and REPLAYED_HEADER.lower() not in again.headers
    assert _count(session_factory, op.table) == rows + 1


def _keys(factory, key: str) -> int:
    with factory() as s:
        return s.execute(select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key)
                         ).scalar_one()


@BY_NAME
@pytest.mark.parametrize("bad", [b"", b"k" * 201, b"caf\xc3\xa9", b"tab\there"], ids=["empty", "201", "utf8", "tab"])
def test_a_bad_key_is_422_naming_the_header(op, bad, client, session_factory):
    ctx = op.prepare(client)
    rows = _count(session_factory, op.table)
    r = op.send(client, ctx, 0, {KEY_HEADER: bad})
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["header", KEY_HEADER]]
    assert _count(session_factory, op.table) == rows


def test_a_failed_request_stores_no_key(client, session_factory):
    """Nothing was created, so the key stays free: the corrected request with it succeeds."""
    key = {KEY_HEADER: "after-a-422"}
    bad = client.post(f"{API}/experiments", json=_spec(2**31 - 1, "x"), headers=key)
    assert bad.status_code == 422 and _keys(session_factory, "after-a-422") == 0
    ctx = _split(client)
    assert client.post(f"{API}/experiments", json=_spec(ctx["split_id"], "x"), headers=key).status_code == 201


# -- concurrent requests with one key, on a PostgreSQL database of their own (each request
# -- commits for real, on its own connection) --


@pytest.fixture(scope="module")
def served_postgresql(tmp_path_factory):
    import uvicorn

    from api.app import create_app
    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker
    from tests.api.conftest import TEST_RATES, RecordingEnqueuer
    from tests.identity import TEST_HOSTS, admin_token
    from tests.services import scratch_database

    with scratch_database() as url:
        engine = make_engine(url, pool_size=20)
        factory = make_sessionmaker(engine)
        enqueued = RecordingEnqueuer()
        settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("race"), database_url=url,
                            broker_url=None, allowed_hosts=TEST_HOSTS, **TEST_RATES)
        app = create_app(settings, session_factory=factory, enqueuer=enqueued, reconcile_interval_s=0,
                         broker_check=lambda: None)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not (server.started and server.servers):
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", factory, enqueued, admin_token(factory)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()


RACERS = 6


@BY_NAME
def test_concurrent_requests_with_one_key_create_exactly_one(op, served_postgresql, monkeypatch):
    import importlib

    url, factory, enqueued, token = served_postgresql
    with httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http:
        ctx = op.prepare(http)
        rows, sent = _count(factory, op.table), _sent_count(enqueued)
        # the work takes a while, so every racer arrives while the first holds the key uncommitted
        module = importlib.import_module(op.service[0])
        real = getattr(module, op.service[1])

        def slow(*args, **kwargs):
            time.sleep(0.5)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, op.service[1], slow)
        start = threading.Barrier(RACERS)
        answers: list[httpx.Response] = []

        def race():
            start.wait()
            answers.append(op.send(http, ctx, 0, {KEY_HEADER: f"race-{op.name}"}))

        threads = [threading.Thread(target=race) for _ in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    assert [a.status_code for a in answers] == [201] * RACERS, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(REPLAYED_HEADER.lower() not in a.headers for a in answers) == 1
    assert _count(factory, op.table) == rows + 1
    assert _sent_count(enqueued) == sent + (1 if op.enqueues else 0)

