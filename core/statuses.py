"""An experiment's lifecycle: ``queued → running → succeeded | failed | cancelled | pruned``
(pruned: a study's trial its pruner stopped early, ``core.studies``).

A queued run may also be cancelled before it starts, and a running one goes back to running
under a new attempt when another worker takes it over (the fencing ``attempt`` grows)."""

from __future__ import annotations

from core.choices import choice, values_of

Status = choice(
    "Status", ("queued", "running", "succeeded", "failed", "cancelled", "pruned"),
    "Where a run is in its lifecycle: queued → running → succeeded | failed | cancelled | pruned (a study's trial "
    "stopped early by its pruner).",
)
STATUSES: tuple[Status, ...] = values_of(Status)
FINISHED: tuple[Status, ...] = ("succeeded", "failed", "cancelled", "pruned")

TRANSITIONS: dict[Status, frozenset[Status]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"running", "succeeded", "failed", "cancelled", "pruned"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "pruned": frozenset(),
}

StudyStatus = choice(
    "StudyStatus", ("running", "done", "stopped"),
    "Where a study is: running (it starts trials while its budget lasts), done (its budget is spent or its "
    "space exhausted, every trial finished) or stopped (cancelled, or past its wall-clock limit: live trials "
    "cancelled).",
)
STUDY_STATUSES: tuple[StudyStatus, ...] = values_of(StudyStatus)

LabStatus = choice(
    "LabStatus", ("queued", "running", "done", "failed"),
    "Where an optimizer-lab job (a race on a 2-D test function, a trained run's loss landscape) is: queued for "
    "the lab worker, running, done (its result is stored) or failed (its error says why).",
)
LAB_STATUSES: tuple[LabStatus, ...] = values_of(LabStatus)
LAB_FINISHED: tuple[LabStatus, ...] = ("done", "failed")
