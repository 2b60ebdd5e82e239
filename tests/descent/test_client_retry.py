"""The client's submissions against the real api (``served``: uvicorn on SQLite, from
test_client.py) through a transport that loses an answer after the api has stored the
submission: the client sends it again with the same ``Idempotency-Key`` and gets the first
answer back, and exactly one resource exists.  It retries connection errors and 502/503/504 a
few times only, and never another error."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from descent import client as client_module
from descent.client import IDEMPOTENCY_HEADER, SUBMIT_ATTEMPTS, ApiError, Client
from tests.descent.test_client import served  # noqa: F401 - the running api, a fixture

CSV = b"a,b,kind\n" + b"".join(f"{i},{i * 2},{'x' if i % 3 else 'y'}\n".encode() for i in range(30))


class LossyTransport(httpx.BaseTransport):
    """Sends every request to the api; the answers to the first ``lose`` POSTs are read (so the
    api has done its work) and then lost: a connection error, or ``status`` from a proxy."""

    def __init__(self, lose: int = 1, status: int | None = None):
        self.inner = httpx.HTTPTransport()
        self.lose, self.status = lose, status
        self.posts: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "POST":
            return response
        self.posts.append(request)
        if len(self.posts) > self.lose:
            return response
        response.read()
        response.close()
        if self.status is None:
            raise httpx.ReadError("connection reset before the answer arrived", request=request)
        return httpx.Response(self.status, json={"detail": "from the proxy"}, request=request)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Submission:
    """``call(client, ctx, name)`` submits something named ``name``; ``count(client, name)``
    says how many such things the api has; ``prepare(client, folder)`` makes what ``call`` needs."""

    name: str
    call: Callable[[Client, dict, str], dict]
    count: Callable[[Client, str], int]
    prepare: Callable[[Client, Path], dict] = lambda c, folder: {}


def _spec(split_id: int, name: str) -> dict:
    return {"name": name, "split_id": split_id, "architecture": {"name": "mlp", "width": 8},
            "solver": {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 1}}


def _experiments_named(c: Client, name: str) -> int:
    return sum(e["name"] == name for e in c.experiments(limit=500))


def _with_split(c: Client, folder: Path) -> dict:
    return {"split_id": c.create_split("iris", seed=0)["id"]}


def _with_source(c: Client, folder: Path) -> dict:
    ctx = _with_split(c, folder)
    return {**ctx, "source_id": c.submit(_spec(ctx["split_id"], f"source-{uuid.uuid4()}"))["id"]}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _seed(name: str) -> int:
    return uuid.UUID(name).int % 1_000_000


SUBMISSIONS = [
    Submission("submit", lambda c, ctx, name: c.submit(_spec(ctx["split_id"], name)), _experiments_named,
               _with_split),
    Submission("clone", lambda c, ctx, name: c.clone(ctx["source_id"], {"name": name}), _experiments_named,
               _with_source),
    Submission("create_split", lambda c, ctx, name: c.create_split("iris", seed=_seed(name)),
               lambda c, name: sum(s["seed"] == _seed(name) for s in c.splits())),
    Submission("upload_dataset", lambda c, ctx, name: c.upload_dataset(ctx["path"], name=name, target="kind"),
               lambda c, name: sum(d["name"] == name for d in c.datasets()),
               lambda c, folder: {"path": _write(folder / "toy.csv", CSV)}),
]
BY_NAME = pytest.mark.parametrize("submission", SUBMISSIONS, ids=[s.name for s in SUBMISSIONS])


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(client_module, "RETRY_BACKOFF_S", 0.01)


def _lossy_client(api, transport: LossyTransport) -> Client:
    url, _, _, token = api
    return Client(url, token, transport=transport)


@BY_NAME
@pytest.mark.parametrize("status", [None, 502, 503, 504], ids=["reset", "502", "503", "504"])
def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one(submission, status, served, tmp_path):  # noqa: F811
    url, _, sent, token = served
    name = str(uuid.uuid4())
    with Client(url, token) as plain:
        ctx = submission.prepare(plain, tmp_path)
        enqueued = len(sent)
        transport = LossyTransport(status=status)
        with _lossy_client(served, transport) as lossy:
            created = submission.call(lossy, ctx, name)
        keys = [r.headers[IDEMPOTENCY_HEADER] for r in transport.posts]
        assert len(keys) == 2 and keys[0] == keys[1]
        assert submission.count(plain, name) == 1
        if submission.name in ("submit", "clone"):
            assert plain.experiment(created["id"])["name"] == name
            assert sent[enqueued:] == [(created["id"], created["queue"])]  # enqueued once


def test_each_submission_has_a_key_of_its_own(served):  # noqa: F811
    transport = LossyTransport(lose=0)
    with _lossy_client(served, transport) as c:
        split = c.create_split("iris", seed=1)
        c.submit(_spec(split["id"], "a"))
        c.submit(_spec(split["id"], "a"))  # the same spec twice on purpose: two runs
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in transport.posts]
    assert len(set(keys)) == 3
    assert all(uuid.UUID(k).version == 4 for k in keys)


@pytest.mark.parametrize("status", [400, 404, 409, 429, 500])
def test_other_errors_are_not_retried(status, served):  # noqa: F811
    transport = LossyTransport(status=status)
    with _lossy_client(served, transport) as c, pytest.raises(ApiError) as error:
        c.create_split("iris", seed=2)
    assert error.value.status_code == status and len(transport.posts) == 1


def test_it_gives_up_after_a_few_attempts(served):  # noqa: F811
    transport = LossyTransport(lose=100)
    with _lossy_client(served, transport) as c, pytest.raises(httpx.ReadError):
        c.create_split("iris", seed=3)
    assert len(transport.posts) == SUBMIT_ATTEMPTS
    transport = LossyTransport(lose=100, status=503)
    with _lossy_client(served, transport) as c, pytest.raises(ApiError) as error:
        c.create_split("iris", seed=3)
    assert error.value.status_code == 503 and len(transport.posts) == SUBMIT_ATTEMPTS
