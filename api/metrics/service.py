"""Series reads (downsampled in ``store.repositories.metrics``), comparisons and ingest.

Every series, summary row and best value the api sends is built here, with the direction of
its metric (``core.metrics``), so the dashboard and the CLI read it instead of restating it."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.errors import Conflict, NotFound, PayloadError
from api.ids import parse_id
from api.metrics.schemas import (
    BestPublic,
    CompareExperiment,
    ComparePublic,
    MetricsPublic,
    PointsCreate,
    SeriesPublic,
    SummaryRow,
)
from core.metrics import higher_is_better, is_diagnostic
from core.statuses import FINISHED
from store.models import Experiment, MetricSummary
from store.repositories import MAX_ID
from store.repositories import experiments as experiments_repo
from store.repositories import metrics as repo


def parse_list(raw: str | None, loc: list[str | int], *, integers: bool = False) -> list | None:
    if raw is None or not raw.strip():
        return None
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if integers:
        ids = [parse_id(item) for item in items]
        if None in ids:
            raise PayloadError.at(loc, f"expected a comma-separated list of integer ids from 1 to {MAX_ID}")
        return list(dict.fromkeys(ids))
    return list(dict.fromkeys(items))


def _existing(session: Session, principal: Principal, ids: list[int]) -> dict[int, Experiment]:
    """The experiments ``ids``, all of which the caller may read (else 404 naming the others)."""
    found = experiments_repo.get_many(session, ids)
    missing = [i for i in ids if i not in found or principal.role_in(found[i].project_id) is None]
    if missing:
        raise NotFound(f"experiment(s) {missing} do not exist")
    return found


def series_public(name: str, steps: list[int], values: list[float | None]) -> SeriesPublic:
    return SeriesPublic(steps=steps, values=values, higher_is_better=higher_is_better(name),
                        diagnostic=is_diagnostic(name))


def summary_row(s: MetricSummary) -> SummaryRow:
    return SummaryRow(
        experiment_id=s.experiment_id, name=s.name, count=s.count, best_value=s.best_value,
        best_step=s.best_step, final_value=s.last_value, final_step=s.last_step,
        time_to_best_s=None if s.best_wall_time is None else max(0.0, s.best_wall_time - s.first_wall_time),
        higher_is_better=higher_is_better(s.name), diagnostic=is_diagnostic(s.name),
    )


def best_public(s: MetricSummary | None) -> BestPublic | None:
    """The summary's best point; None without one (no such metric, or no finite value)."""
    if s is None or s.best_value is None or s.best_step is None:
        return None
    return BestPublic(name=s.name, value=s.best_value, step=s.best_step, higher_is_better=higher_is_better(s.name))


def _public(series: dict[str, repo.Series]) -> dict[str, SeriesPublic]:
    return {name: series_public(name, s.steps, s.values) for name, s in sorted(series.items())}


def experiment_series(session: Session, experiment_id: int, names: list[str] | None, max_points: int
                      ) -> MetricsPublic:
    """Every series of one experiment (the caller's access was checked by the route)."""
    return MetricsPublic(series=_public(repo.series(session, experiment_id, names, max_points)))


def compare(session: Session, principal: Principal, ids: list[int], names: list[str] | None, max_points: int
            ) -> ComparePublic:
    experiments = _existing(session, principal, ids)
    by_experiment = repo.series_many(session, ids, names, max_points)
    summary = [summary_row(s) for s in repo.summaries(session, ids, names)]
    return ComparePublic(
        experiments=[
            CompareExperiment(id=i, name=experiments[i].name, status=experiments[i].status,
                              series=_public(by_experiment[i]))
            for i in ids
        ],
        summary=summary,
    )


def ingest(session: Session, principal: Principal, experiment_id: int, body: PointsCreate, max_names: int,
           max_points: int | None = None) -> int:
    """Store points.  A worker token may report for a running experiment only; a user needs
    editor in its project, and a finished experiment's record is closed to everyone (409).  An
    experiment records at most ``max_names`` distinct metrics and ``max_points`` points (422 past
    either, nothing stored).

    The points limit counts what is really new: the batch is stored, then refused (the
    request's transaction rolls back) if its new points took the experiment past the limit, so
    a re-sent batch at the limit still succeeds.  Points the worker writes straight to the
    database do not pass here: they count towards the limit but are not refused by it."""
    experiment = experiments_repo.get(session, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    if principal.kind == "worker":
        if experiment.status != "running":
            raise Conflict(f"experiment {experiment_id} is {experiment.status}: a worker reports only while it runs")
    else:
        access.require(principal, experiment.project_id, "editor", f"experiment {experiment_id}")
        if experiment.status in FINISHED:
            raise Conflict(f"experiment {experiment_id} is {experiment.status}: its metrics are final")
    names = {p.name for p in body.points}
    if len(names) > max_names or len(names | {s.name for s in repo.summaries(session, [experiment_id])}) > max_names:
        raise PayloadError.at(["body", "points"], f"an experiment records at most {max_names} distinct metric names "
                                                  "(DESCENT_MAX_METRIC_NAMES); this batch would pass that")
    points = [
        (p.name, p.step, p.epoch, p.value if p.value is not None and math.isfinite(p.value) else None, p.wall_time)
        for p in body.points
    ]
    before = repo.point_count(session, experiment_id) if max_points is not None else 0
    inserted = repo.add_points(session, experiment_id, points)
    if max_points is not None and before + inserted > max_points:
        raise PayloadError.at(["body", "points"], f"an experiment records at most {max_points} metric points "
                                                  f"(DESCENT_MAX_METRIC_POINTS); it has {before} and this batch "
                                                  f"adds {inserted} new: nothing of it was stored")
    return inserted
