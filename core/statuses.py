"""An experiment's lifecycle: ``queued → running → succeeded | failed | cancelled``.

A queued run may also be cancelled before it starts, and a running one goes back to running
under a new attempt when another worker takes it over (the fencing ``attempt`` grows)."""

from __future__ import annotations

from core.choices import choice, values_of

Status = choice(
    "Status", ("queued", "running", "succeeded", "failed", "cancelled"),
    "Where a run is in its lifecycle: queued → running → succeeded | failed | cancelled.",
)
STATUSES: tuple[Status, ...] = values_of(Status)
FINISHED: tuple[Status, ...] = ("succeeded", "failed", "cancelled")

TRANSITIONS: dict[Status, frozenset[Status]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"running", "succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
