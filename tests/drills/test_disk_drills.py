"""Drill: the data folder's disk refuses writes (full, or read-only) under a real run, against a
real PostgreSQL with the real migrations.

Before, the run failed at its first checkpoint with torch's ``[enforce fail at
inline_container.cc:672] . unexpected pos 64 vs 0``, naming neither the disk nor the path, and
left empty ``.last.pt.<pid>.tmp`` files.  Now it keeps training with a warning on the run that
names the checkpoint and the OS error; the warning goes once a checkpoint is written again; a
run that cannot store its final weights fails saying where, why and what to do; every step's
metrics are stored exactly once and no temporary file is left either way."""

from __future__ import annotations

import threading
import time

import pytest

from api.experiments.schemas import ExperimentPublic
from core.settings import Settings
from store.db import session_scope
from store.models import Experiment
from store.repositories import experiments
from tests.drills.disks import REFUSING, temporary_files
from tests.drills.shown import shown
from tests.identity import TEST_HOSTS
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, add_experiment, assert_every_step_once, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.engine import checkpoint
from worker.run import Runtime, run_experiment

pytestmark = [pytest.mark.drills, pytest.mark.integration]

BATCH = 16
STEPS_PER_EPOCH = -(-len(builtin_split("wine").x_train) // BATCH)


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def runtime(database_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, stale_heartbeat_s=30,
                        allowed_hosts=TEST_HOSTS)
    return Runtime(settings, sessions_for(database_url), host="drill-host:1")


def _queued(runtime, epochs: int) -> int:
    split_id = add_builtin_split(runtime.sessions, "wine")
    spec = make_spec(builtin_split("wine"), epochs=epochs, batch_size=BATCH).model_copy(update={"split_id": split_id})
    return add_experiment(runtime.sessions, spec)


def _experiment(runtime, experiment_id) -> Experiment:
    with session_scope(runtime.sessions) as session:
        return experiments.get(session, experiment_id)


def _warning(path, disk) -> str:
    code = disk.codes[0]
    return (f"checkpoint not written at {path}: {checkpoint.describe(code)}; training goes on and the next epoch "
            f"tries again; {checkpoint.remedy(code, 'DESCENT_DATA_DIR')}")


@pytest.mark.parametrize("kind", list(REFUSING))
def test_a_run_keeps_training_while_its_checkpoints_are_refused_and_the_warning_goes_once_one_is_written(
        kind, runtime, capsys):
    experiment_id = _queued(runtime, epochs=20)
    last = runtime.settings.checkpoint_path(experiment_id, "last")
    seen: dict = {}

    with REFUSING[kind](runtime.settings.checkpoint_dir) as disk:
        def give_the_disk_back_once_warned():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                experiment = _experiment(runtime, experiment_id)
                if experiment.warning or experiment.status not in ("queued", "running"):
                    seen.update(warning=experiment.warning, step=experiment.step, status=experiment.status,
                                temporary=temporary_files(disk.folder))
                    disk.restore()
                    break
                time.sleep(0.02)
            while time.monotonic() < deadline:  # the next checkpoint clears it, while the run goes on
                experiment = _experiment(runtime, experiment_id)
                if not experiment.warning or experiment.status != "running":
                    seen.update(cleared_while=experiment.status, cleared_warning=experiment.warning)
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=give_the_disk_back_once_warned)
        watcher.start()
        try:
            status = run_experiment(experiment_id, runtime, cancel_poll_s=0.05)
        finally:
            watcher.join()
        assert seen["warning"] == _warning(last, disk), (disk.how, seen)
        assert seen["status"] == "running" and seen["step"] < 20 * STEPS_PER_EPOCH  # still training then
        assert "enforce fail" not in seen["warning"] and disk.names[0] in seen["warning"]
        assert seen["temporary"] == [] and temporary_files(disk.folder) == []
        assert (seen["cleared_while"], seen["cleared_warning"]) == ("running", None)

        assert status == "succeeded"
        experiment = _experiment(runtime, experiment_id)
        assert (experiment.status, experiment.error, experiment.warning) == ("succeeded", None, None)
        assert ExperimentPublic.model_validate(experiment, from_attributes=True).warning is None
        assert checkpoint.load(last)["epoch"] == 20 and runtime.settings.checkpoint_path(experiment_id, "final").exists()
        # the run's own warning section (a diagnosis finding's severity is indented beneath "diagnosis:")
        assert "\nwarning:\n" not in "\n" + shown(runtime.settings, runtime.sessions, experiment_id, capsys)
    assert_every_step_once(runtime.sessions, experiment_id, STEPS_PER_EPOCH, 20)


@pytest.mark.parametrize("kind", list(REFUSING))
def test_a_run_whose_final_weights_cannot_be_stored_fails_saying_where_why_and_what_to_do(kind, runtime, capsys):
    experiment_id = _queued(runtime, epochs=3)
    last = runtime.settings.checkpoint_path(experiment_id, "last")
    final = runtime.settings.checkpoint_path(experiment_id, "final")

    with REFUSING[kind](runtime.settings.checkpoint_dir) as disk:
        assert run_experiment(experiment_id, runtime) == "failed"
        experiment = _experiment(runtime, experiment_id)
        code = disk.codes[0]
        assert experiment.error == (
            f"could not store the final weights at {final}: {checkpoint.describe(code)}; "
            f"{checkpoint.remedy(code, 'DESCENT_DATA_DIR')} and run it again"
        ), (disk.how, experiment.error)
        assert disk.names[0] in experiment.error and "enforce fail" not in experiment.error
        assert experiment.warning == _warning(last, disk)
        assert temporary_files(disk.folder) == [] and not last.exists() and not final.exists()
        printed = shown(runtime.settings, runtime.sessions, experiment_id, capsys)
        assert f"error:\n  {experiment.error}" in printed and f"warning:\n  {experiment.warning}" in printed
    assert_every_step_once(runtime.sessions, experiment_id, STEPS_PER_EPOCH, 3)
