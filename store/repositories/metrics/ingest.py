"""Metric ingest: an idempotent bulk insert of points that keeps the summaries and the rollups
current in the same transaction.

On PostgreSQL a batch that only appends (every series' steps rise and start after what is
stored: the worker's normal case) is streamed in with binary ``COPY FROM STDIN``, one
``write_row`` per point.  Any other batch goes as one ``INSERT ... SELECT FROM unnest(...) ON
CONFLICT DO NOTHING RETURNING`` whose columns are bound array parameters (one round trip
however long the batch).  SQLite gets a batched (executemany) ``INSERT ... ON CONFLICT DO
NOTHING``.  No value is ever spliced into SQL text.  Only the rows really inserted update the
summary and the rollups, so a re-sent batch changes nothing."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import Metric
from store.repositories.metrics._sql import codes, execute_arrays, insert, is_postgresql
from store.repositories.metrics.rollups import rollup_rows, upsert_rollups
from store.repositories.metrics.summaries import last_steps, summary_row, upsert_summaries

PointLike = Mapping[str, Any] | Sequence[Any]


@dataclass
class Columns:
    """A batch as columns; NaN in ``values`` for a missing or non-finite value."""

    names: list[str]
    steps: np.ndarray  # int64
    epochs: list[int | None]
    values: np.ndarray  # float64
    walls: np.ndarray  # float64

    def nullable_values(self) -> list[float | None]:
        """``values`` as the database stores them: NaN becomes None (NULL)."""
        return [None if math.isnan(v) else v for v in self.values.tolist()]


def columns(points: Iterable[PointLike]) -> Columns:
    """Points (dicts with name, step, epoch, value, wall_time, or tuples in that order) as
    columns; a missing wall time is now."""
    points = list(points)
    if not points:
        return Columns([], np.empty(0, np.int64), [], np.empty(0), np.empty(0))
    points = [
        (p["name"], p["step"], p.get("epoch"), p["value"], p.get("wall_time")) if isinstance(p, Mapping) else p
        for p in points
    ]
    names, steps, epochs, values, walls = zip(*points)  # columns in C, not a Python loop per field
    now = time.time()
    v = np.array([math.nan if x is None else x for x in values], dtype=np.float64)
    v[~np.isfinite(v)] = np.nan
    w = np.array([now if x is None else x for x in walls], dtype=np.float64)
    return Columns(
        [str(n) for n in names], np.asarray(steps, dtype=np.int64),
        [None if e is None else int(e) for e in epochs], v, w,
    )


def _appends_only(session: Session, experiment_id: int, cols: Columns) -> bool:
    """True when every name's steps rise strictly and start after what is stored: then no point
    can already exist and the plain COPY (no conflict handling, no RETURNING) is safe."""
    names = np.asarray(cols.names, dtype=object)
    stored = last_steps(session, experiment_id, cols.names)
    for name in set(cols.names):
        steps = cols.steps[names == name]
        if np.any(np.diff(steps) <= 0) or (name in stored and steps[0] <= stored[name]):
            return False
    return True


_INT4 = (-(2**31), 2**31 - 1)


def _copyable(experiment_id: int, cols: Columns) -> bool:
    """Binary COPY writes the 4-byte columns (experiment id, epoch) without a range check
    (psycopg would wrap a larger int modulo 2**32): a batch with one outside goes as arrays,
    which the server range-checks and rejects."""
    known = [e for e in cols.epochs if e is not None]
    low, high = _INT4
    return all(low <= v <= high for v in (experiment_id, min(known, default=0), max(known, default=0)))


_PG_COPY = "COPY metrics (experiment_id, name, step, epoch, value, wall_time) FROM STDIN (FORMAT BINARY)"
_PG_COPY_TYPES = ("int4", "varchar", "int8", "int4", "float8", "float8")


def _copy_rows(session: Session, experiment_id: int, cols: Columns) -> None:
    """Append the batch with binary ``COPY FROM STDIN``, each point a row of Python values
    (None is NULL): no SQL to parse, nothing to escape; the server only checks the primary key
    (a duplicate raises ``IntegrityError``)."""
    import psycopg

    rows = zip([int(experiment_id)] * len(cols.names), cols.names, cols.steps.tolist(), cols.epochs,
               cols.nullable_values(), cols.walls.tolist())
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(_PG_COPY) as copy:
            copy.set_types(_PG_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.UniqueViolation as exc:
        raise IntegrityError(_PG_COPY, None, exc) from exc
    finally:
        cursor.close()


# Each column is one bound array parameter (see ``execute_arrays``); names go once each, rows
# refer to them by position.
_PG_INSERT_NEW = """
    INSERT INTO metrics (experiment_id, name, step, epoch, value, wall_time)
    SELECT %(experiment_id)b, (CAST(%(names)b AS varchar[]))[t.code], t.step, t.epoch, t.value, t.wall_time
    FROM unnest(CAST(%(codes)b AS integer[]), CAST(%(steps)b AS bigint[]), CAST(%(epochs)b AS integer[]),
                CAST(%(vals)b AS double precision[]), CAST(%(walls)b AS double precision[]))
         AS t(code, step, epoch, value, wall_time)
    ON CONFLICT DO NOTHING RETURNING name, step, value, wall_time
"""


def _insert_rows_postgresql(session: Session, experiment_id: int, cols: Columns) -> list[tuple] | None:
    if _copyable(experiment_id, cols) and _appends_only(session, experiment_id, cols):
        try:
            with session.begin_nested():  # a concurrent writer may still win the race: fall back
                _copy_rows(session, experiment_id, cols)
            return None
        except IntegrityError:
            pass
    names, name_codes = codes(cols.names)
    params = {
        "experiment_id": experiment_id, "names": names, "codes": name_codes, "steps": cols.steps.tolist(),
        "epochs": cols.epochs, "vals": cols.nullable_values(), "walls": cols.walls.tolist(),
    }
    return [tuple(r) for r in execute_arrays(session, _PG_INSERT_NEW, params).fetchall()]


def _insert_rows_sqlite(session: Session, experiment_id: int, cols: Columns) -> list[tuple]:
    table = Metric.__table__
    statement = (
        insert(session, table).on_conflict_do_nothing()
        .returning(table.c.name, table.c.step, table.c.value, table.c.wall_time)
    )
    rows = [
        {"experiment_id": experiment_id, "name": n, "step": s, "epoch": e, "value": v, "wall_time": w}
        for n, s, e, v, w in zip(cols.names, cols.steps.tolist(), cols.epochs, cols.nullable_values(),
                                 cols.walls.tolist())
    ]
    return [tuple(r) for r in session.connection().execute(statement, rows)]


def _insert_rows(session: Session, experiment_id: int, cols: Columns) -> list[tuple] | None:
    """The rows really inserted as (name, step, value, wall_time); None when all of them were."""
    if is_postgresql(session):
        return _insert_rows_postgresql(session, experiment_id, cols)
    return _insert_rows_sqlite(session, experiment_id, cols)


def _inserted_columns(inserted: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    names = np.array([r[0] for r in inserted], dtype=object)
    steps = np.fromiter((r[1] for r in inserted), dtype=np.int64, count=len(inserted))
    values = np.array([math.nan if r[2] is None else r[2] for r in inserted], dtype=np.float64)
    walls = np.fromiter((r[3] for r in inserted), dtype=np.float64, count=len(inserted))
    return names, steps, values, walls


def add_points(session: Session, experiment_id: int, points: Iterable[PointLike]) -> int:
    """Insert ``points`` (dicts with name, step, epoch, value, wall_time, or tuples in that
    order); points already stored are skipped.  Returns how many were new.  Non-finite values
    are stored as NULL."""
    cols = columns(points)
    if not cols.names:
        return 0
    inserted = _insert_rows(session, experiment_id, cols)
    if inserted is None:
        names, steps, values, walls = np.asarray(cols.names, dtype=object), cols.steps, cols.values, cols.walls
    elif not inserted:
        return 0
    else:
        names, steps, values, walls = _inserted_columns(inserted)
    summaries: list[dict[str, Any]] = []
    rollups: list[dict[str, Any]] = []
    for name in sorted(set(names.tolist())):
        mask = names == name
        summaries.append(summary_row(experiment_id, name, steps[mask], values[mask], walls[mask]))
        rollups.extend(rollup_rows(experiment_id, name, steps[mask], values[mask]))
    upsert_summaries(session, summaries)
    upsert_rollups(session, rollups)
    return len(steps)
