"""What a user or a project may hold (``api.limits.quotas``, the token and metric services): live
API tokens per user (409), dataset uploads per project (413), metric points per experiment (422)
and queued or running experiments per project (429 with ``Retry-After``).  Each refusal names
the count, the limit and its setting; use below the limit is unaffected, and freeing what is
held (revoking, deleting, finishing) makes room again."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.auth.principal import Principal
from api.errors import PayloadError, TooLarge
from api.limits import quotas
from api.limits.errors import TooManyRequests
from api.metrics import service as metrics_service
from api.metrics.schemas import PointsCreate
from store.models import ApiToken, Dataset, Experiment, utcnow
from store.repositories import metrics as metrics_repo
from store.repositories import projects as projects_repo
from tests.api.conformance import attach
from tests.identity import bearer, default_project_id, make_user, new_project, token_for

API = "/api/v1"
MIB = 1024 * 1024
QUOTAS = {"max_tokens_per_user": 3, "max_project_storage_mb": 1, "max_upload_bytes": MIB,
          "max_metric_points": 10, "max_active_experiments": 2}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update=QUOTAS)


# -- API tokens per user -------------------------------------------------------------------------

@pytest.fixture
def alice(app, session_factory, openapi_document):
    """alice with one live token (her client's), one revoked and one expired: only the first counts."""
    with session_factory() as s:
        user = make_user(s, "alice")
        token = token_for(s, user)
        for revoked, expires in ((utcnow(), None), (None, utcnow() - timedelta(days=1))):
            s.add(ApiToken(user_id=user.id, kind="user", name="old", prefix="dsc_old", hash=secrets.token_hex(32),
                           created_at=utcnow(), revoked_at=revoked, expires_at=expires))
        s.commit()
    client = TestClient(app, headers=bearer(token))
    attach(client, openapi_document)
    return client


def test_a_user_past_their_live_tokens_gets_409_until_they_revoke_one(alice):
    made = [alice.post(f"{API}/tokens", json={"name": f"t{i}"}) for i in range(2)]
    assert [r.status_code for r in made] == [201, 201]
    refused = alice.post(f"{API}/tokens", json={"name": "one too many"})
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "holds 3 live API tokens" in detail and "DESCENT_MAX_TOKENS_PER_USER" in detail and "revoke" in detail
    assert "one too many" not in {t["name"] for t in alice.get(f"{API}/tokens").json()}
    assert alice.delete(f"{API}/tokens/{made[0].json()['id']}").status_code == 204
    assert alice.post(f"{API}/tokens", json={"name": "in its place"}).status_code == 201


def test_worker_tokens_belong_to_no_user_and_are_not_counted(client):
    for i in range(QUOTAS["max_tokens_per_user"] - 1):  # the admin's client holds one already
        assert client.post(f"{API}/tokens", json={"name": f"t{i}"}).status_code == 201
    assert client.post(f"{API}/tokens", json={"name": "user"}).status_code == 409
    assert client.post(f"{API}/tokens", json={"name": "worker", "kind": "worker"}).status_code == 201


# -- dataset storage per project -----------------------------------------------------------------

def _csv(n_bytes: int) -> bytes:
    rows, size = ["a,b,target\n"], 11
    i = 0
    while size < n_bytes:
        row = f"{i % 97},{i % 89},{i % 3}\n"
        rows.append(row)
        size += len(row)
        i += 1
    return "".join(rows).encode()


def _upload(client, data: bytes, project_id: int | None = None):
    form = {"name": "d", "target": "target"} | ({"project_id": str(project_id)} if project_id else {})
    return client.post(f"{API}/datasets", data=form, files={"file": ("d.csv", data)})


def test_an_upload_past_the_projects_storage_is_413_until_a_dataset_is_deleted(client, session_factory):
    data = _csv(600_000)
    first = _upload(client, data)
    assert first.status_code == 201, first.text
    refused = _upload(client, data)
    assert refused.status_code == 413
    detail = refused.json()["detail"]
    assert "stores 0.6 MiB" in detail and "limit of 1 MiB" in detail and "DESCENT_MAX_PROJECT_STORAGE_MB" in detail
    other = new_project(session_factory, "other")
    assert _upload(client, data, other).status_code == 201  # another project's storage is its own
    assert client.delete(f"{API}/datasets/{first.json()['id']}").status_code == 204
    assert _upload(client, data).status_code == 201


# stored upload sizes in the project, the new upload's size, whether it fits a 1 MiB limit
STORAGE_CASES = [
    ([], MIB, True),
    ([MIB - 10], 10, True),
    ([MIB - 10], 11, False),
    ([MIB // 2, MIB // 2], 1, False),
    ([MIB // 2, MIB // 4], MIB // 4, True),
]


@pytest.mark.parametrize("stored, adding, fits", STORAGE_CASES)
def test_storage_counts_the_projects_upload_sizes(session, settings, stored, adding, fits):
    project = projects_repo.get(session, default_project_id(session))
    other = projects_repo.create(session, "elsewhere")
    for project_id, size in [(project.id, n) for n in stored] + [(other.id, MIB)]:
        session.add(Dataset(project_id=project_id, name="d", format="csv", filename="d.csv", path="x.npz",
                            sha256="0" * 64, arrays_sha256="0" * 64, size_bytes=size, n_samples=1,
                            feature_shape=[1], task="regression"))
    session.flush()
    if fits:
        quotas.check_storage(session, settings, project, adding)
    else:
        with pytest.raises(TooLarge, match="DESCENT_MAX_PROJECT_STORAGE_MB"):
            quotas.check_storage(session, settings, project, adding)


# -- metric points per experiment ----------------------------------------------------------------

def _experiments(client, split_id: int, statuses, session_factory) -> list[int]:
    """Experiments in ``statuses``, each finished as soon as made so that none meets the limit
    of active ones on its way in, then given its status."""
    body = {"name": "q", "split_id": split_id, "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
    ids = []
    for _ in statuses:
        response = client.post(f"{API}/experiments", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        _set_status(session_factory, ids[-1], "cancelled")
    for eid, status in zip(ids, statuses):
        _set_status(session_factory, eid, status)
    return ids


def _set_status(session_factory, eid: int, status: str) -> None:
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == eid).values(status=status))
        s.commit()


# a batch's steps (of one metric) -> how many it stores, or None: refused with 422 (limit 10)
POINT_BATCHES = [
    (range(0, 6), 6),
    (range(0, 6), 0),  # sent again: nothing new
    (range(6, 11), None),  # 6 + 5 > 10
    (range(6, 10), 4),  # to the limit exactly
    (range(0, 10), 0),  # sent again at the limit
    ([10], None),
]


def test_a_batch_taking_an_experiment_past_its_points_is_refused_whole(client, iris_split, session_factory, settings):
    [eid] = _experiments(client, iris_split["id"], ["running"], session_factory)
    worker = Principal(kind="worker")
    for steps, stored in POINT_BATCHES:
        body = PointsCreate(points=[{"name": "train/loss", "step": s, "value": 1.0} for s in steps])
        with session_factory() as s:  # one request's transaction
            if stored is not None:
                assert metrics_service.ingest(s, worker, eid, body, settings.max_metric_names,
                                              settings.max_metric_points) == stored
                s.commit()
                continue
            with pytest.raises(PayloadError) as refused:
                metrics_service.ingest(s, worker, eid, body, settings.max_metric_names, settings.max_metric_points)
            s.rollback()
        detail = refused.value.detail
        assert "at most 10 metric points (DESCENT_MAX_METRIC_POINTS)" in detail and f"adds {len(steps)} new" in detail
        assert refused.value.errors[0][0] == ["body", "points"]
    with session_factory() as s:
        assert metrics_repo.point_count(s, eid) == 10


# -- queued and running experiments per project --------------------------------------------------

# statuses of the project's experiments (limit 2) -> how many count, or None: under the limit
ACTIVE_CASES = [
    ((), None),
    (("queued",), None),
    (("queued", "running"), 2),
    (("running", "running", "succeeded"), 2),
    (("succeeded", "failed", "cancelled", "queued"), None),
]


@pytest.mark.parametrize("statuses, active", ACTIVE_CASES)
def test_queued_and_running_experiments_past_the_limit_are_429(client, iris_split, session_factory, settings,
                                                               statuses, active):
    elsewhere = new_project(session_factory, "elsewhere")
    other_split = client.post(f"{API}/splits", json={"dataset": "iris", "project_id": elsewhere}).json()["id"]
    _experiments(client, other_split, ["queued"] * 3, session_factory)  # another project's count for it only
    _experiments(client, iris_split["id"], statuses, session_factory)
    with session_factory() as s:
        if active is None:
            quotas.check_active_experiments(s, settings, iris_split["project_id"])
            return
        with pytest.raises(TooManyRequests) as refused:
            quotas.check_active_experiments(s, settings, iris_split["project_id"])
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "60"}
    assert (f"has {active} queued or running experiments" in refused.value.detail
            and "(2, DESCENT_MAX_ACTIVE_EXPERIMENTS)" in refused.value.detail)


def test_a_submission_past_the_projects_active_experiments_is_429_and_creates_nothing(client, iris_split, enqueued):
    body = {"name": "q", "split_id": iris_split["id"], "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
    made = [client.post(f"{API}/experiments", json=body) for _ in range(2)]
    assert [r.status_code for r in made] == [201, 201]
    refused = client.post(f"{API}/experiments", json=body)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "has 2 queued or running experiments" in refused.json()["detail"]
    assert "DESCENT_MAX_ACTIVE_EXPERIMENTS" in refused.json()["detail"]
    assert client.get(f"{API}/experiments").json()["total"] == 2 and len(enqueued.sent) == 2
    assert client.post(f"{API}/experiments/{made[0].json()['id']}/cancel").status_code == 200
    assert client.post(f"{API}/experiments", json=body).status_code == 201


# -- a project's own limits ----------------------------------------------------------------------

def test_a_project_shows_its_usage_against_its_limits_and_an_admin_may_set_its_own(client, iris_split,
                                                                                    session_factory, settings):
    pid = iris_split["project_id"]
    _experiments(client, iris_split["id"], ["queued"], session_factory)
    data = _csv(600_000)
    assert _upload(client, data, pid).status_code == 201
    limits = client.get(f"{API}/projects/{pid}").json()["limits"]
    assert limits == {"active_experiments": 1, "max_active_experiments": 2, "storage_bytes": len(data),
                      "max_storage_mb": 1, "own_max_active_experiments": None, "own_max_storage_mb": None}
    assert _upload(client, data, pid).status_code == 413

    own = client.patch(f"{API}/projects/{pid}/limits", json={"max_active_experiments": 1, "max_storage_mb": 2})
    assert own.status_code == 200, own.text
    assert own.json() | {"storage_bytes": 0} == {
        "active_experiments": 1, "max_active_experiments": 1, "storage_bytes": 0, "max_storage_mb": 2,
        "own_max_active_experiments": 1, "own_max_storage_mb": 2}
    assert _upload(client, data, pid).status_code == 201  # 1.2 MiB of 2
    with session_factory() as s, pytest.raises(TooManyRequests, match=f"project {pid}'s own limit"):
        quotas.check_active_experiments(s, settings, pid)

    back = client.patch(f"{API}/projects/{pid}/limits", json={"max_active_experiments": None})
    assert (back.json()["max_active_experiments"], back.json()["max_storage_mb"]) == (2, 2)  # the other stays
    with session_factory() as s:
        quotas.check_active_experiments(s, settings, pid)
    assert client.patch(f"{API}/projects/{pid}/limits", json={"max_storage_mb": 0}).status_code == 422
    assert client.patch(f"{API}/projects/999999/limits", json={}).status_code == 404
    events = client.get(f"{API}/audit", params={"project_id": pid}).json()
    assert "project.limits" in {e["action"] for e in events}
