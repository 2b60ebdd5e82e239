"""The queue read from the database: counts of every project, positions oldest first within a
queue, workers alive by their last beat and busy by a running run's ``worker_host``, the cause
each queued run waits for, and the lab queue: races and landscapes counted together, its workers
those beating ``lab``, idle those beyond its running jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core.queue import LAB_QUEUE, QUEUES
from store.models import Experiment, Landscape, Project, Race, Worker, utcnow
from store.repositories import queue, workers
from tests.identity import default_project_id
from tests.store.helpers import make_experiment

WITHIN_S = 30.0


def _set(session, experiment_id: int, **values) -> None:
    session.execute(update(Experiment).where(Experiment.id == experiment_id).values(**values))


def _queued(session, now, waited_s: float, queue_name: str = "cpu", sent: bool = True, project_id=None) -> int:
    eid = make_experiment(session, queue=queue_name)
    _set(session, eid, created_at=now - timedelta(seconds=waited_s), enqueued_at=now if sent else None,
         **({"project_id": project_id} if project_id else {}))
    return eid


def _running(session, queue_name: str, worker_id: str) -> int:
    eid = make_experiment(session, queue=queue_name)
    _set(session, eid, status="running", worker_host=worker_id, started_at=utcnow(), heartbeat_at=utcnow())
    return eid


def _worker(session, worker_id: str, queues: list[str], seen_ago: float = 1) -> None:
    workers.beat(session, worker_id, worker_id.split(":")[0], queues, gpus=0)
    session.execute(update(Worker).where(Worker.id == worker_id)
                    .values(last_seen=utcnow() - timedelta(seconds=seen_ago)))


def _other_project(session) -> int:
    project = Project(name="elsewhere", description="", created_at=utcnow())
    session.add(project)
    session.flush()
    return project.id


def test_counts_cover_every_project_and_only_live_statuses(session):
    now = utcnow()
    elsewhere = _other_project(session)
    _queued(session, now, 40, "cpu")
    _queued(session, now, 70, "cpu", project_id=elsewhere)
    _queued(session, now, 5, "gpu")
    _running(session, "cpu", "gone:1")
    done = make_experiment(session, queue="cpu")
    _set(session, done, status="succeeded")

    depth = queue.depths(session, WITHIN_S, now=now)

    assert set(depth) == {*QUEUES, LAB_QUEUE}
    assert (depth["cpu"].queued, depth["cpu"].running, depth["gpu"].queued, depth["gpu"].running) == (2, 1, 1, 0)
    assert depth["cpu"].oldest_queued_s == pytest.approx(70, abs=1e-3)
    assert depth["gpu"].oldest_queued_s == pytest.approx(5, abs=1e-3)


def test_an_empty_queue_has_no_oldest(session):
    depth = queue.depths(session, WITHIN_S)
    assert all(d.queued == d.running == d.workers == 0 and d.oldest_queued_s is None for d in depth.values())


def test_workers_are_alive_by_their_last_beat_and_busy_by_a_running_runs_host(session):
    _worker(session, "idle:1", ["cpu"])
    _worker(session, "busy:2", ["cpu", "gpu"])
    _worker(session, "dead:3", ["cpu"], seen_ago=WITHIN_S + 60)
    _running(session, "cpu", "busy:2")
    _running(session, "cpu", "dead:3")  # a dead worker's run makes no alive worker busy

    depth = queue.depths(session, WITHIN_S)

    assert (depth["cpu"].workers, depth["cpu"].idle_workers) == (2, 1)
    assert (depth["gpu"].workers, depth["gpu"].idle_workers) == (1, 0)  # busy:2 trains a cpu run


def test_positions_run_across_projects_oldest_first_and_the_list_keeps_to_the_callers_projects(session):
    now = utcnow()
    elsewhere = _other_project(session)
    mine_new = _queued(session, now, 10)
    theirs = _queued(session, now, 20, project_id=elsewhere)
    mine_old = _queued(session, now, 30)
    mine_gpu = _queued(session, now, 1, "gpu")
    mine_project = session.get(Experiment, mine_new).project_id
    depth = queue.depths(session, WITHIN_S, now=now)

    everyone = queue.waiting(session, depth, None, limit=100, now=now)
    assert [(r.id, r.queue, r.position) for r in everyone] == [
        (mine_old, "cpu", 1), (theirs, "cpu", 2), (mine_new, "cpu", 3), (mine_gpu, "gpu", 1)]
    assert [r.waited_s for r in everyone] == pytest.approx([30, 20, 10, 1], abs=1e-3)

    mine = queue.waiting(session, depth, [mine_project], limit=100, now=now)
    assert [(r.id, r.position) for r in mine] == [(mine_old, 1), (mine_new, 3), (mine_gpu, 1)]
    assert [r.id for r in queue.waiting(session, depth, [], limit=100)] == []
    assert [r.id for r in queue.waiting(session, depth, None, limit=2)] == [mine_old, theirs]


def test_same_created_at_breaks_ties_by_id(session):
    now = utcnow()
    first, second = _queued(session, now, 10), _queued(session, now, 10)
    runs = queue.waiting(session, queue.depths(session, WITHIN_S), None, limit=10)
    assert [(r.id, r.position) for r in runs] == [(min(first, second), 1), (max(first, second), 2)]


def _causes(session) -> dict[int, str]:
    return {r.id: r.cause for r in queue.waiting(session, queue.depths(session, WITHIN_S), None, limit=100)}


def test_an_idle_worker_takes_the_first_and_the_rest_wait_for_it(session):
    now = utcnow()
    _worker(session, "idle:1", ["cpu"])
    first, second = _queued(session, now, 20), _queued(session, now, 10)
    assert _causes(session) == {first: "starting", second: "busy"}


@pytest.mark.parametrize("sent, queues, seen_ago, busy, cause", [
    (False, ["cpu"], 1, False, "unsent"),
    (True, ["cpu"], 1, False, "starting"),
    (True, ["cpu"], 1, True, "busy"),
    (True, ["cpu"], WITHIN_S + 60, False, "no_worker"),
    (True, ["gpu"], 1, False, "no_worker"),
])
def test_cause(session, sent, queues, seen_ago, busy, cause):
    _worker(session, "w:1", queues, seen_ago=seen_ago)
    if busy:
        _running(session, "cpu", "w:1")
    waiting = _queued(session, utcnow(), 5, "cpu", sent=sent)
    assert _causes(session) == {waiting: cause}


def _lab_job(session, model, status: str, waited_s: float = 0, project_id=None, now=None) -> None:
    if model is Race:
        job = Race(project_id=project_id or default_project_id(session), spec={"function": "booth"})
    else:  # a landscape belongs to a finished run, which waits on no queue
        experiment_id = make_experiment(session, queue="cpu")
        _set(session, experiment_id, status="succeeded")
        job = Landscape(experiment_id=experiment_id, spec={"dims": 1})
    job.status, job.created_at = status, (now or utcnow()) - timedelta(seconds=waited_s)
    session.add(job)
    session.flush()


def test_the_lab_queue_counts_races_and_landscapes_of_every_project_and_only_lab_workers(session):
    now = utcnow()
    _lab_job(session, Race, "queued", waited_s=50, project_id=_other_project(session), now=now)
    _lab_job(session, Landscape, "queued", waited_s=20, now=now)
    _lab_job(session, Landscape, "running", waited_s=90)
    _lab_job(session, Race, "running")
    for status in ("done", "failed"):
        _lab_job(session, Race, status, waited_s=500)
    _worker(session, "lab:1", [LAB_QUEUE])
    _worker(session, "lab:2", [LAB_QUEUE])
    _worker(session, "lab:3", [LAB_QUEUE])
    _worker(session, "dead:4", [LAB_QUEUE], seen_ago=WITHIN_S + 60)
    _worker(session, "trainer:5", ["cpu", "gpu"])

    depth = queue.depths(session, WITHIN_S, now=now)

    lab = depth[LAB_QUEUE]
    assert (lab.queued, lab.running, lab.workers, lab.idle_workers) == (2, 2, 3, 1)
    assert lab.oldest_queued_s == pytest.approx(50, abs=1e-3)
    # lab jobs wait on no training queue, and a lab worker serves none
    assert [(depth[q].queued, depth[q].running, depth[q].workers) for q in QUEUES] == [(0, 0, 1), (0, 0, 1)]


@pytest.mark.parametrize("lab_workers, running, workers_idle", [
    (0, 0, (0, 0)),  # no lab worker: nothing serves the queue
    (0, 1, (0, 0)),  # a job still marked running after its worker died
    (1, 0, (1, 1)),
    (2, 1, (2, 1)),
    (1, 2, (1, 0)),  # one worker running two jobs at once (--concurrency 2) is not less than idle
])
def test_idle_lab_workers_are_the_alive_ones_beyond_the_running_jobs(session, lab_workers, running, workers_idle):
    for n in range(lab_workers):
        _worker(session, f"lab:{n}", [LAB_QUEUE])
    for _ in range(running):
        _lab_job(session, Race, "running")
    lab = queue.depths(session, WITHIN_S)[LAB_QUEUE]
    assert (lab.workers, lab.idle_workers) == workers_idle
    assert lab.queued == 0 and lab.oldest_queued_s is None
