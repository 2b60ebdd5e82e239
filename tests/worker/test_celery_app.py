"""The worker's start-up (worker/celery_app.py): a worker serving a training queue builds the fused
optimizer kernel in a thread, a lab-only worker does not; the build's outcome reaches the log,
with the reason when it failed."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from optim import _fused
from worker import celery_app


class _Threads:
    """Stands in for ``threading.Thread``: records the targets started, runs none."""

    def __init__(self):
        self.started: list[str] = []

    def __call__(self, target, name, daemon):
        return SimpleNamespace(start=lambda: self.started.append(target.__name__))


def _sender(*queues: str):
    return SimpleNamespace(task_consumer=SimpleNamespace(queues=[SimpleNamespace(name=q) for q in queues]),
                           pool=object())


@pytest.mark.parametrize(("queues", "builds"), [(["cpu"], True), (["gpu0"], True), (["cpu", "lab"], True),
                                                (["lab"], False)])
def test_a_training_worker_builds_the_kernel_at_start_up(queues, builds, monkeypatch):
    threads = _Threads()
    monkeypatch.setattr(celery_app, "threading", SimpleNamespace(Thread=threads))  # this module's, not all
    monkeypatch.setattr("worker.presence.Presence.start", lambda *args: None)
    monkeypatch.setattr(celery_app, "_presence", None)
    monkeypatch.setattr(celery_app, "_trains", True)
    celery_app._start_presence(_sender(*queues))
    assert ("_warm_fused" in threads.started) is builds


@pytest.mark.parametrize("works", [True, False])
def test_the_build_outcome_is_logged(works, monkeypatch, caplog):
    monkeypatch.setattr(_fused, "warm", lambda: works)
    monkeypatch.setattr(_fused, "failure", lambda: None if works else "RuntimeError: no c++ compiler")
    with caplog.at_level(logging.INFO, logger="worker.celery_app"):
        celery_app._warm_fused()
    (record,) = caplog.records
    if works:
        assert record.levelno == logging.INFO and "fused optimizer kernel ready in" in record.getMessage()
    else:
        assert record.levelno == logging.WARNING and "(RuntimeError: no c++ compiler)" in record.getMessage()
