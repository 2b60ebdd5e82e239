"""The lab jobs' shared lifecycle: one claim per job, results and errors stored once, and a job
whose lab worker died mid-job failed by the sweep once ``limit_s`` has passed since its claim."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store.models import Landscape, Race, utcnow
from store.repositories import lab_jobs
from tests.identity import default_project_id
from tests.store.helpers import make_experiment


def _race(session) -> int:
    race = Race(project_id=default_project_id(session), spec={"function": "booth"})
    session.add(race)
    session.flush()
    return race.id


def _landscape(session) -> int:
    landscape = Landscape(experiment_id=make_experiment(session), spec={"dims": 1})
    session.add(landscape)
    session.flush()
    return landscape.id


@pytest.mark.parametrize("model, make", [(Race, _race), (Landscape, _landscape)])
def test_a_job_is_claimed_once_and_stores_its_result(session, model, make):
    job_id = make(session)
    job = lab_jobs.claim(session, model, job_id)
    assert job is not None and job["id"] == job_id and job["status"] == "running" and job["started_at"]
    assert lab_jobs.claim(session, model, job_id) is None, "a redelivered message finds nothing to claim"
    lab_jobs.complete(session, model, job_id, {"answer": 42})
    lab_jobs.fail(session, model, job_id, "too late")  # a finished job keeps its outcome
    session.expire_all()
    row = session.get(model, job_id)
    assert (row.status, row.result, row.error) == ("done", {"answer": 42}, None) and row.finished_at


def test_a_failure_is_stored_with_its_error_cut_to_size(session):
    job_id = _race(session)
    lab_jobs.claim(session, Race, job_id)
    lab_jobs.fail(session, Race, job_id, "x" * (lab_jobs.ERROR_CHARS + 10))
    session.expire_all()
    row = session.get(Race, job_id)
    assert row.status == "failed" and len(row.error) == lab_jobs.ERROR_CHARS


def test_the_sweep_fails_only_jobs_running_past_the_limit(session):
    stuck, fresh, queued = _race(session), _race(session), _landscape(session)
    old_landscape = _landscape(session)
    for model, job_id in ((Race, stuck), (Race, fresh), (Landscape, old_landscape)):
        lab_jobs.claim(session, model, job_id)
    for model, job_id in ((Race, stuck), (Landscape, old_landscape)):
        session.execute(model.__table__.update().where(model.id == job_id)
                        .values(started_at=utcnow() - timedelta(seconds=601)))
    assert lab_jobs.fail_abandoned(session, 600) == 2
    session.expire_all()
    assert session.get(Race, stuck).status == "failed" and "ask for it again" in session.get(Race, stuck).error
    assert session.get(Landscape, old_landscape).status == "failed"
    assert session.get(Race, fresh).status == "running"
    assert session.get(Landscape, queued).status == "queued"
