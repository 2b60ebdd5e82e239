"""A stored trial as the search sees it: the experiment's status mapped to a trial state, and its
objective value from the objective metric's per-epoch values.  Shared by the api (proposing
trials) and the worker (asking the pruner), so both read a trial the same way."""

from __future__ import annotations

import math
from typing import Any

from core.studies.sampling import TrialRecord
from core.studies.space import StudySpec

# an experiment's status → the trial state Optuna replays
STATES = {"queued": "running", "running": "running", "succeeded": "complete", "pruned": "pruned",
          "failed": "failed", "cancelled": "failed"}


def objective_value(spec: StudySpec, by_epoch: dict[int, float]) -> float | None:
    """A trial's value: its best epoch's (by the objective's mode) or its last epoch's; None
    before any finite one."""
    finite = [v for _, v in sorted(by_epoch.items()) if math.isfinite(v)]
    if not finite:
        return None
    if spec.objective.use == "final":
        return finite[-1]
    return max(finite) if spec.objective.mode == "max" else min(finite)


def trial_record(spec: StudySpec, number: int, params: dict[str, Any] | None, status: str,
                 by_epoch: dict[int, float]) -> TrialRecord:
    """The record of one trial; a run that succeeded without a finite objective counts as failed
    (there is nothing to learn from it)."""
    value = objective_value(spec, by_epoch)
    state = STATES[status]
    if state == "complete" and value is None:
        state = "failed"
    return TrialRecord(number, dict(params or {}), state, value,
                       {e: v for e, v in by_epoch.items() if math.isfinite(v)})
