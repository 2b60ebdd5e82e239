"""The app under test: real databases (rolled back per test), a recording or a Redis enqueuer,
and a client signed in as an admin (``anonymous`` is one with no credentials)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.db_fixtures import *  # noqa: F403 - fixtures
from tests.identity import TEST_HOSTS, admin_token, bearer


class RecordingEnqueuer:
    """Keeps what would have been sent (tests that need the real broker use Redis instead)."""

    def __init__(self):
        self.sent: list[tuple[int, str]] = []

    def __call__(self, experiment_id: int, queue: str) -> None:
        self.sent.append((experiment_id, queue))


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", database_url=None, broker_url=None, max_upload_bytes=200_000,
                    allowed_hosts=TEST_HOSTS)


@pytest.fixture
def enqueued():
    return RecordingEnqueuer()


@pytest.fixture
def app(settings, session_factory, enqueued):
    return create_app(settings, session_factory=session_factory, enqueuer=enqueued, reconcile_interval_s=0,
                      broker_check=lambda: None)


@pytest.fixture
def client(app, session_factory):
    with TestClient(app, headers=bearer(admin_token(session_factory))) as c:
        yield c


@pytest.fixture
def anonymous(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def iris_split(client):
    response = client.post("/api/v1/splits", json={"dataset": "iris", "strategy": "stratified", "seed": 1})
    assert response.status_code == 201, response.text
    return response.json()
