"""``metric_rollups``: per series and per level in ``ROLLUP_WIDTHS``, each block of ``width``
steps keeps its point count and its smallest and largest value (earliest step on ties).  New
points are folded in by an upsert in the ingest's transaction; reads fetch one level's blocks
for many series at once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import case, select, tuple_
from sqlalchemy.orm import Session

from store.models import ROLLUP_WIDTHS, MetricRollup
from store.repositories.metrics._sql import better, codes, execute_arrays, insert, is_postgresql, without_jit
from store.repositories.metrics.downsample import Blocks, group_extremes

Key = tuple[int, str]  # (experiment_id, name)


def rollup_rows(experiment_id: int, name: str, steps, values) -> list[dict[str, Any]]:
    """The blocks of every level touched by one series' new points (numpy columns, NaN for a
    missing value; a block of only missing values has NULL extremes)."""
    rows: list[dict[str, Any]] = []
    low = np.where(np.isnan(values), np.inf, values)
    high = np.where(np.isnan(values), np.inf, -values)
    for width in ROLLUP_WIDTHS:
        blocks = steps // width
        unique, counts = np.unique(blocks, return_counts=True)
        _, imin = group_extremes(blocks, low, steps)
        _, imax = group_extremes(blocks, high, steps)
        for block, count, i, j in zip(unique.tolist(), counts.tolist(), imin.tolist(), imax.tolist()):
            has_value = not math.isnan(values[i])
            rows.append({
                "experiment_id": experiment_id, "name": name, "width": width, "block": block, "count": count,
                "min_step": int(steps[i]) if has_value else None,
                "min_value": float(values[i]) if has_value else None,
                "max_step": int(steps[j]) if has_value else None,
                "max_value": float(values[j]) if has_value else None,
            })
    return rows


def _beats_sql(kind: str, op: str) -> str:
    """SQL text (column names only, no values): the incoming ``kind`` extreme beats the stored one."""
    new, old = f"excluded.{kind}", f"metric_rollups.{kind}"
    step_new, step_old = new.replace("value", "step"), old.replace("value", "step")
    return (f"({new} IS NOT NULL AND ({old} IS NULL OR {new} {op} {old} "
            f"OR ({new} = {old} AND {step_new} < {step_old})))")


_PG_COLUMNS = ("width", "block", "count", "min_step", "min_value", "max_step", "max_value")

# Every column travels as one bound array parameter (see ``execute_arrays``): one statement
# and one round trip however many blocks.
_PG_UPSERT_ROLLUPS = f"""
    INSERT INTO metric_rollups (experiment_id, name, width, block, count, min_step, min_value, max_step, max_value)
    SELECT %(experiment_id)b, (CAST(%(names)b AS varchar[]))[t.code], t.width, t.block, t.count,
           t.min_step, t.min_value, t.max_step, t.max_value
    FROM unnest(CAST(%(codes)b AS integer[]), CAST(%(width)b AS integer[]), CAST(%(block)b AS bigint[]),
                CAST(%(count)b AS bigint[]), CAST(%(min_step)b AS bigint[]), CAST(%(min_value)b AS double precision[]),
                CAST(%(max_step)b AS bigint[]), CAST(%(max_value)b AS double precision[]))
         AS t(code, width, block, count, min_step, min_value, max_step, max_value)
    ON CONFLICT (experiment_id, name, width, block) DO UPDATE SET
        count = metric_rollups.count + excluded.count,
        min_step = CASE WHEN {_beats_sql("min_value", "<")} THEN excluded.min_step ELSE metric_rollups.min_step END,
        min_value = CASE WHEN {_beats_sql("min_value", "<")} THEN excluded.min_value ELSE metric_rollups.min_value END,
        max_step = CASE WHEN {_beats_sql("max_value", ">")} THEN excluded.max_step ELSE metric_rollups.max_step END,
        max_value = CASE WHEN {_beats_sql("max_value", ">")} THEN excluded.max_value ELSE metric_rollups.max_value END
"""


def _upsert_rollups_postgresql(session: Session, rows: list[dict[str, Any]]) -> None:
    names, name_codes = codes([r["name"] for r in rows])
    params: dict[str, Any] = {"experiment_id": rows[0]["experiment_id"], "names": names, "codes": name_codes}
    for key in _PG_COLUMNS:
        params[key] = [r[key] for r in rows]
    execute_arrays(session, _PG_UPSERT_ROLLUPS, params)


def upsert_rollups(session: Session, rows: list[dict[str, Any]]) -> None:
    """Merge ``rows`` (from :func:`rollup_rows`, all of one experiment) into the stored blocks:
    counts add up, the smaller minimum and the larger maximum win (earliest step on ties)."""
    if not rows:
        return
    if is_postgresql(session):
        _upsert_rollups_postgresql(session, rows)
        return
    table = MetricRollup.__table__
    c = table.c
    ins = insert(session, table)
    x = ins.excluded
    lower = better(x.min_value, x.min_step, c.min_value, c.min_step, higher=False)
    higher = better(x.max_value, x.max_step, c.max_value, c.max_step, higher=True)
    statement = ins.on_conflict_do_update(
        index_elements=[c.experiment_id, c.name, c.width, c.block],
        set_={
            "count": c.count + x.count,
            "min_step": case((lower, x.min_step), else_=c.min_step),
            "min_value": case((lower, x.min_value), else_=c.min_value),
            "max_step": case((higher, x.max_step), else_=c.max_step),
            "max_value": case((higher, x.max_value), else_=c.max_value),
        },
    )
    session.connection().execute(statement, rows)


# -- reads -------------------------------------------------------------------------------------

# One aggregate per asked (experiment, name) pair, read from the primary key (another series of
# the same experiments and names may be read from another level or from its points; a join let
# the planner scan the whole table).  No ORDER BY inside the aggregates (it sorts every group):
# both see the rows in the same order, numpy sorts the blocks.
_PG_BLOCKS = """
    SELECT k.experiment_id, k.name, r.block, r.min_step, r.min_value, r.max_step, r.max_value
    FROM unnest(CAST(%(ids)b AS integer[]), CAST(%(names)b AS varchar[])) AS k(experiment_id, name),
         LATERAL (SELECT string_agg(int8send(block), ''::bytea) AS block,
                         string_agg(int8send(COALESCE(min_step, 0)), ''::bytea) AS min_step,
                         string_agg(float8send(COALESCE(min_value, 'NaN')), ''::bytea) AS min_value,
                         string_agg(int8send(COALESCE(max_step, 0)), ''::bytea) AS max_step,
                         string_agg(float8send(COALESCE(max_value, 'NaN')), ''::bytea) AS max_value
                  FROM metric_rollups
                  WHERE experiment_id = k.experiment_id AND name = k.name
                    AND width = CAST(%(width)b AS integer)) AS r
    WHERE r.block IS NOT NULL
"""


def _read_blocks_postgresql(session: Session, level: int, keys: list[Key]) -> dict[Key, Blocks]:
    without_jit(session)
    params = {"width": level, "ids": [k[0] for k in keys], "names": [k[1] for k in keys]}
    out = {}
    for eid, name, *packed in execute_arrays(session, _PG_BLOCKS, params):
        ints = [np.frombuffer(packed[i], dtype=">i8").astype(np.int64) for i in (0, 1, 3)]
        floats = [np.frombuffer(packed[i], dtype=">f8").astype(np.float64) for i in (2, 4)]
        order = np.argsort(ints[0], kind="stable")
        block, min_step, max_step = (a[order] for a in ints)
        min_value, max_value = (a[order] for a in floats)
        out[(eid, name)] = Blocks(block, min_step, min_value, max_step, max_value)
    return out


def _read_blocks_sqlite(session: Session, level: int, keys: list[Key]) -> dict[Key, Blocks]:
    r = MetricRollup
    query = (
        select(r.experiment_id, r.name, r.block, r.min_step, r.min_value, r.max_step, r.max_value)
        .where(r.width == level, tuple_(r.experiment_id, r.name).in_(keys))
        .order_by(r.experiment_id, r.name, r.block)
    )
    rows = session.execute(query).fetchall()
    out = {}
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end][:2] != rows[start][:2]:
            columns = list(zip(*rows[start:end]))
            as_int = [np.array([0 if v is None else v for v in columns[i]], dtype=np.int64) for i in (2, 3, 5)]
            as_float = [np.array(columns[i], dtype=np.float64) for i in (4, 6)]  # None -> NaN
            out[tuple(rows[start][:2])] = Blocks(as_int[0], as_int[1], as_float[0], as_int[2], as_float[1])
            start = end
    return out


def read_blocks(session: Session, level: int, keys: list[Key]) -> dict[Key, Blocks]:
    """The blocks of width ``level`` of every series in ``keys``.  PostgreSQL packs each
    series' columns into one big-endian binary string (one row per series, decoded by numpy
    without a Python object per block: a comparison reads tens of thousands of blocks)."""
    if is_postgresql(session):
        return _read_blocks_postgresql(session, level, keys)
    return _read_blocks_sqlite(session, level, keys)
