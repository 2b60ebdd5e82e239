"""One limit on every request body but the upload's: a declared length above it, or a chunked
body that grows past it, is answered 413 before any parser reads it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conformance import attach
from tests.identity import admin_token, bearer

API = "/api/v1"
LIMIT = 4096


@pytest.fixture
def small(settings, session_factory, enqueued, openapi_document):
    app = create_app(settings.model_copy(update={"max_request_bytes": LIMIT}), session_factory=session_factory,
                     enqueuer=enqueued, reconcile_interval_s=0, broker_check=lambda: None)
    with TestClient(app, headers=bearer(admin_token(session_factory))) as c:
        attach(c, openapi_document)
        yield c


def _chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _spec(milestones: int) -> bytes:
    return json.dumps({"name": "big", "split_id": 1, "architecture": {"name": "linear"}, "solver": {"name": "sgd"},
                       "scheduler": {"name": "multisteplr", "milestones": list(range(1, milestones))}}).encode()


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_413_naming_the_setting(small, chunked):
    body = _spec(2000)
    assert len(body) > LIMIT
    content = _chunks(body) if chunked else body
    r = small.post(f"{API}/experiments", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "DESCENT_MAX_REQUEST_BYTES" in r.json()["detail"]
    assert small.get(f"{API}/experiments").json()["total"] == 0  # nothing was stored


def test_a_chunked_body_within_the_limit_reaches_the_route(small):
    split = small.post(f"{API}/splits", content=_chunks(json.dumps({"dataset": "iris"}).encode(), 5),
                       headers={"content-type": "application/json"})
    assert split.status_code == 201, split.text


def test_the_upload_keeps_its_own_larger_limit(small):
    csv = ("a,b,target\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(1000))).encode()
    assert len(csv) > LIMIT
    r = small.post(f"{API}/datasets", data={"name": "bigger than the body limit", "target": "target"},
                   files={"file": ("d.csv", csv)})
    assert r.status_code == 201, r.text
