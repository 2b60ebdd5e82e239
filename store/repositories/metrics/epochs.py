"""Per-epoch aggregates of an experiment's metrics, the input of the convergence diagnosis
(``core.diagnosis``): for each metric and epoch its point count, finite count, mean, smallest and
largest value, in one grouped query.  Non-finite values are stored as NULL, so ``count(value)``
counts the finite ones and the aggregates skip the others."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.diagnosis.series import Aggregates, EpochStats
from store.models import Metric


def epoch_aggregates(session: Session, experiment_id: int, names: Sequence[str]) -> Aggregates:
    """The ``names`` metrics of one experiment, reduced per epoch (points without an epoch are left out)."""
    query = (
        select(Metric.name, Metric.epoch, func.count(), func.count(Metric.value), func.avg(Metric.value),
               func.min(Metric.value), func.max(Metric.value))
        .where(Metric.experiment_id == experiment_id, Metric.name.in_(list(names)), Metric.epoch.is_not(None))
        .group_by(Metric.name, Metric.epoch)
    )
    out: Aggregates = {}
    for name, epoch, count, finite, mean, low, high in session.execute(query):
        out.setdefault(name, {})[epoch] = EpochStats(
            count, finite, None if mean is None else float(mean), low, high)
    return out
