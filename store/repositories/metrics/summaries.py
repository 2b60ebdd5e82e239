"""``metric_summaries``: one row per series (count, first and last step, best value), merged
with each batch of new points by an upsert, and read by experiment and name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.metrics import higher_is_better
from store.models import MetricSummary
from store.repositories.metrics._sql import better, insert


def summaries(session: Session, experiment_ids: Sequence[int], names: Sequence[str] | None = None
              ) -> list[MetricSummary]:
    query = select(MetricSummary).where(MetricSummary.experiment_id.in_(list(experiment_ids)))
    if names:
        query = query.where(MetricSummary.name.in_(list(names)))
    return list(session.scalars(query.order_by(MetricSummary.experiment_id, MetricSummary.name)))


def point_count(session: Session, experiment_id: int) -> int:
    """How many points the experiment has stored, all metrics together (from the summaries'
    counts: one row per metric, not a scan of the points)."""
    return session.scalar(select(func.coalesce(func.sum(MetricSummary.count), 0))
                          .where(MetricSummary.experiment_id == experiment_id)) or 0


def last_steps(session: Session, experiment_id: int, names: Sequence[str]) -> dict[str, int]:
    """The stored last step of each of ``names`` that has points."""
    query = select(MetricSummary.name, MetricSummary.last_step).where(
        MetricSummary.experiment_id == experiment_id, MetricSummary.name.in_(sorted(set(names)))
    )
    return {name: last for name, last in session.execute(query)}


def _first_by(primary: np.ndarray, steps: np.ndarray) -> int:
    """Index of the smallest ``primary`` value, the earliest step among ties."""
    return int(np.lexsort((steps, primary))[0])


def summary_row(experiment_id: int, name: str, steps, values, walls) -> dict[str, Any]:
    """The summary of one series' new points (numpy columns, NaN for a missing value)."""
    last = int(np.argmax(steps))
    first = int(np.argmin(steps))
    row: dict[str, Any] = {
        "experiment_id": experiment_id, "name": name, "count": len(steps),
        "first_step": int(steps[first]), "first_wall_time": float(walls.min()),
        "last_step": int(steps[last]), "last_value": None if math.isnan(values[last]) else float(values[last]),
        "last_wall_time": float(walls[last]),
        "best_step": None, "best_value": None, "best_wall_time": None,
    }
    finite = ~np.isnan(values)
    if finite.any():
        v, s, w = values[finite], steps[finite], walls[finite]
        i = _first_by(-v if higher_is_better(name) else v, s)
        row.update(best_step=int(s[i]), best_value=float(v[i]), best_wall_time=float(w[i]))
    return row


def upsert_summaries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Merge ``rows`` (from :func:`summary_row`) into the stored summaries: counts add up, the
    earliest first and the latest last step win, and the best value by the metric's direction."""
    table = MetricSummary.__table__
    c = table.c
    for higher in (False, True):
        batch = [r for r in rows if higher_is_better(r["name"]) == higher]
        if not batch:
            continue
        ins = insert(session, table)
        x = ins.excluded
        newer = x.last_step > c.last_step
        wins = better(x.best_value, x.best_step, c.best_value, c.best_step, higher=higher)
        statement = ins.on_conflict_do_update(
            index_elements=[c.experiment_id, c.name],
            set_={
                "count": c.count + x.count,
                "first_step": case((x.first_step < c.first_step, x.first_step), else_=c.first_step),
                "first_wall_time": case((x.first_wall_time < c.first_wall_time, x.first_wall_time),
                                        else_=c.first_wall_time),
                "last_step": case((newer, x.last_step), else_=c.last_step),
                "last_value": case((newer, x.last_value), else_=c.last_value),
                "last_wall_time": case((newer, x.last_wall_time), else_=c.last_wall_time),
                "best_step": case((wins, x.best_step), else_=c.best_step),
                "best_value": case((wins, x.best_value), else_=c.best_value),
                "best_wall_time": case((wins, x.best_wall_time), else_=c.best_wall_time),
            },
        )
        session.connection().execute(statement, batch)
