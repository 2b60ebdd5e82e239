"""The app under test: real databases (rolled back per test), a recording or a Redis enqueuer,
and a client signed in as an admin (``anonymous`` is one with no credentials).  Every response
either receives is held to the OpenAPI document (``tests.api.conformance``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.api.conformance import Document, attach
from tests.db_fixtures import *  # noqa: F403 - fixtures
from tests.identity import TEST_HOSTS, admin_token, bearer


class RecordingEnqueuer:
    """Keeps what would have been sent (tests that need the real broker use Redis instead)."""

    def __init__(self):
        self.sent: list[tuple[int, str]] = []

    def __call__(self, experiment_id: int, queue: str) -> None:
        self.sent.append((experiment_id, queue))


class RecordingLabSender:
    """Keeps the lab jobs (races, landscapes) that would have been sent; ``refuse`` makes the
    next sends fail as a broker that is down does."""

    def __init__(self):
        self.sent: list[tuple[str, int]] = []
        self.refuse = False

    def __call__(self, task: str, job_id: int) -> None:
        if self.refuse:
            raise ConnectionError("broker down")
        self.sent.append((task, job_id))


# One app, one token and one address make every request of a test: the generated-input test
# sends ~25 per operation, the access-rule table signs in 14 times a test.  The limits' own
# tests (test_rate_limits.py) set them low again.
TEST_RATES = {"requests_per_minute": 1_000_000, "login_attempts_per_minute": 10_000}


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", database_url=None, broker_url=None, max_upload_bytes=200_000,
                    allowed_hosts=TEST_HOSTS, **TEST_RATES)


@pytest.fixture
def enqueued():
    return RecordingEnqueuer()


@pytest.fixture
def lab_sent():
    return RecordingLabSender()


@pytest.fixture
def app(settings, session_factory, enqueued, lab_sent):
    return create_app(settings, session_factory=session_factory, enqueuer=enqueued, reconcile_interval_s=0,
                      broker_check=lambda: None, lab_sender=lab_sent)


@pytest.fixture(scope="session")
def openapi_document(tmp_path_factory):
    """The api's OpenAPI document, which every response the tests receive is held to."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")), session_factory=lambda: None,
                     enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
    return Document(app.openapi())


@pytest.fixture
def client(app, session_factory, openapi_document):
    with TestClient(app, headers=bearer(admin_token(session_factory))) as c:
        attach(c, openapi_document)
        yield c


@pytest.fixture
def anonymous(app, openapi_document):
    with TestClient(app) as c:
        attach(c, openapi_document)
        yield c


@pytest.fixture
def iris_split(client):
    response = client.post("/api/v1/splits", json={"dataset": "iris", "strategy": "stratified", "seed": 1})
    assert response.status_code == 201, response.text
    return response.json()
