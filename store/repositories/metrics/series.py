"""Series reads.  A series longer than ``max_points`` is cut into at most ``max_points // 2``
equal step buckets and each bucket keeps its smallest and largest value, so spikes survive.
The bucket width is a multiple of a rollup level, so the extremes come exactly from that
level's blocks: a 100k-step series reads a few hundred rows instead of every point."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from store.models import ROLLUP_WIDTHS, Metric, MetricSummary
from store.repositories.metrics._sql import execute_arrays, is_postgresql, without_jit
from store.repositories.metrics.downsample import Series, bucket_width, downsample
from store.repositories.metrics.rollups import Key, read_blocks
from store.repositories.metrics.summaries import summaries

MIN_MAX_POINTS = 4

Result = dict[int, dict[str, Series]]


def raw_points(session: Session, experiment_id: int, name: str, after_step: int | None = None,
               limit: int | None = None) -> list[tuple[int, int | None, float | None, float]]:
    """``(step, epoch, value, wall_time)`` in step order (after ``after_step`` if given)."""
    query = select(Metric.step, Metric.epoch, Metric.value, Metric.wall_time).where(
        Metric.experiment_id == experiment_id, Metric.name == name
    )
    if after_step is not None:
        query = query.where(Metric.step > after_step)
    query = query.order_by(Metric.step)
    if limit is not None:
        query = query.limit(limit)
    return [tuple(r) for r in session.execute(query)]


def _group_rows(rows: Sequence[Sequence[Any]]) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    """``(experiment_id, name, step, value)`` rows sorted by series → per series (steps, values)."""
    grouped: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end][0] != rows[start][0] or rows[end][1] != rows[start][1]:
            chunk = rows[start:end]
            grouped[(chunk[0][0], chunk[0][1])] = (
                np.fromiter((r[2] for r in chunk), dtype=np.int64, count=len(chunk)),
                np.array([np.nan if r[3] is None else r[3] for r in chunk], dtype=np.float64),
            )
            start = end
    return grouped


# One row per series: its steps and values packed in big-endian binary (see ``read_blocks``),
# in the order the rows were read (both aggregates see the rows in the same order; an ORDER BY
# inside them sorted every group and took half the time), sorted by numpy.  One
# aggregate per asked (experiment, name) pair, read from the primary key: joined instead,
# the planner, guessing a few hundred points a pair, scanned the whole table.
_PG_POINTS = """
    SELECT k.experiment_id, k.name, m.steps, m.values
    FROM unnest(CAST(%(ids)b AS integer[]), CAST(%(names)b AS varchar[])) AS k(experiment_id, name),
         LATERAL (SELECT string_agg(int8send(step), ''::bytea) AS steps,
                         string_agg(float8send(COALESCE(value, 'NaN')), ''::bytea) AS values
                  FROM metrics WHERE experiment_id = k.experiment_id AND name = k.name) AS m
    WHERE m.steps IS NOT NULL
"""


def _in_step_order(steps: bytes, values: bytes) -> tuple[np.ndarray, np.ndarray]:
    step_array = np.frombuffer(steps, dtype=">i8").astype(np.int64)
    order = np.argsort(step_array, kind="stable")
    return step_array[order], np.frombuffer(values, dtype=">f8").astype(np.float64)[order]


def read_points(session: Session, keys: list[Key]) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    """Every point of each series in ``keys``: (steps, values) in step order, NaN for a missing
    value.  PostgreSQL sends one packed row per series, not a Python tuple per point."""
    if is_postgresql(session):
        without_jit(session)
        params = {"ids": [k[0] for k in keys], "names": [k[1] for k in keys]}
        return {(eid, name): _in_step_order(steps, values)
                for eid, name, steps, values in execute_arrays(session, _PG_POINTS, params)}
    query = (
        select(Metric.experiment_id, Metric.name, Metric.step, Metric.value)
        .where(tuple_(Metric.experiment_id, Metric.name).in_(keys))
        .order_by(Metric.experiment_id, Metric.name, Metric.step)
    )
    return _group_rows(session.connection().execute(query).fetchall())


def _from_points(session: Session, found: list[MetricSummary], max_points: int, result: Result) -> None:
    """Read these series' points in one query; downsample the ones longer than ``max_points``."""
    grouped = read_points(session, [(s.experiment_id, s.name) for s in found])
    for s in found:
        steps, values = grouped.get((s.experiment_id, s.name), (np.empty(0, np.int64), np.empty(0)))
        if s.count <= max_points:
            result[s.experiment_id][s.name] = Series(
                steps.tolist(), [None if math.isnan(v) else v for v in values.tolist()]
            )
        else:
            result[s.experiment_id][s.name] = downsample(
                steps, values, bucket_width(s.first_step, s.last_step, max_points)
            )


def _from_rollups(session: Session, level: int, found: list[MetricSummary], max_points: int,
                  result: Result) -> None:
    """Downsample these series from their blocks of width ``level``, read in one query."""
    blocks = read_blocks(session, level, [(s.experiment_id, s.name) for s in found])
    for s in found:
        found_blocks = blocks.get((s.experiment_id, s.name))
        width = bucket_width(s.first_step, s.last_step, max_points)
        result[s.experiment_id][s.name] = (
            Series([], []) if found_blocks is None else found_blocks.downsample(level, width)
        )


def series_many(
    session: Session, experiment_ids: Sequence[int], names: Sequence[str] | None, max_points: int
) -> Result:
    """Every requested series of every experiment, each at most ``max_points`` points; the
    reads are batched per kind (raw points, each rollup level), not per series."""
    if max_points < MIN_MAX_POINTS:
        raise ValueError(f"max_points must be at least {MIN_MAX_POINTS}")
    result: Result = {i: {} for i in experiment_ids}
    raw: list[MetricSummary] = []
    by_level: dict[int, list[MetricSummary]] = {}
    for s in summaries(session, experiment_ids, names):
        width = bucket_width(s.first_step, s.last_step, max_points)
        level = max([w for w in ROLLUP_WIDTHS if width % w == 0], default=None)
        if s.count <= max_points or level is None:
            raw.append(s)
        else:
            by_level.setdefault(level, []).append(s)
    if raw:
        _from_points(session, raw, max_points, result)
    for level, members in by_level.items():
        _from_rollups(session, level, members, max_points, result)
    return result


def series(session: Session, experiment_id: int, names: Sequence[str] | None, max_points: int
           ) -> dict[str, Series]:
    return series_many(session, [experiment_id], names, max_points)[experiment_id]
