"""Metric points: idempotent bulk insert that keeps the summary and the min/max rollups current
in the same transaction, and series reads downsampled on the server.

Ingest: on PostgreSQL a batch that only appends (every series' steps rise and start after what
is stored: the worker's normal case) is streamed in with ``COPY FROM STDIN``; any other batch
goes as a handful of arrays in one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING``
(one round trip however long the batch).  SQLite gets a batched ``INSERT ... ON CONFLICT DO
NOTHING``.  Only the rows really inserted (``RETURNING``) update the summary and the rollups, so
a re-sent batch changes nothing.

Reads: a series longer than ``max_points`` is cut into at most ``max_points // 2`` equal step
buckets and each bucket keeps its smallest and largest value, so spikes survive.  The bucket
width is a multiple of a rollup level, so the extremes come exactly from that level's blocks:
a 100k-step series reads a few hundred rows instead of every point."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, case, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.metrics import higher_is_better
from store.models import ROLLUP_WIDTHS, Metric, MetricRollup, MetricSummary

PointLike = Mapping[str, Any] | Sequence[Any]


@dataclass
class Series:
    steps: list[int]
    values: list[float | None]


@dataclass
class _Columns:
    names: list[str]
    steps: np.ndarray  # int64
    epochs: list[int | None]
    values: np.ndarray  # float64, NaN for non-finite
    walls: np.ndarray  # float64


def _columns(points: Iterable[PointLike]) -> _Columns:
    points = list(points)
    if not points:
        return _Columns([], np.empty(0, np.int64), [], np.empty(0), np.empty(0))
    points = [
        (p["name"], p["step"], p.get("epoch"), p["value"], p.get("wall_time")) if isinstance(p, Mapping) else p
        for p in points
    ]
    names, steps, epochs, values, walls = zip(*points)  # columns in C, not a Python loop per field
    now = time.time()
    v = np.array([math.nan if x is None else x for x in values], dtype=np.float64)
    v[~np.isfinite(v)] = np.nan
    w = np.array([now if x is None else x for x in walls], dtype=np.float64)
    return _Columns(
        [str(n) for n in names], np.asarray(steps, dtype=np.int64),
        [None if e is None else int(e) for e in epochs], v, w,
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(session: Session, table):
    if _dialect(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _none_for_nan(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _pg_literal(items: Iterable[Any]) -> str:
    """A PostgreSQL array literal: one text parameter instead of one Python object per element
    (psycopg's per-element array adaptation was most of the client time).  None and NaN → NULL."""
    text_ = ",".join(map(repr, items))
    return "{" + text_.replace("None", "NULL").replace("nan", "NULL") + "}"


def _pg_names_literal(names: Sequence[str]) -> str:
    return "{" + ",".join('"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names) + "}"


_PG_SELECT = """
    SELECT :experiment_id, (CAST(:names AS varchar[]))[t.code], t.step, t.epoch, t.value, t.wall_time
    FROM unnest(CAST(:codes AS integer[]), CAST(:steps AS bigint[]), CAST(:epochs AS integer[]),
                CAST(:vals AS double precision[]), CAST(:walls AS double precision[]))
         AS t(code, step, epoch, value, wall_time)
"""
_PG_COPY = "COPY metrics (experiment_id, name, step, epoch, value, wall_time) FROM STDIN"
_PG_INSERT_NEW = text(
    "INSERT INTO metrics (experiment_id, name, step, epoch, value, wall_time)" + _PG_SELECT
    + " ON CONFLICT DO NOTHING RETURNING name, step, value, wall_time"
)


def _appends_only(session: Session, experiment_id: int, cols: _Columns) -> bool:
    """True when every name's steps rise strictly and start after what is stored: then no point
    can already exist and the plain INSERT (no conflict handling, no RETURNING) is safe."""
    names = np.asarray(cols.names, dtype=object)
    stored = {
        s.name: s.last_step
        for s in session.execute(
            select(MetricSummary.name, MetricSummary.last_step).where(
                MetricSummary.experiment_id == experiment_id, MetricSummary.name.in_(sorted(set(cols.names)))
            )
        )
    }
    for name in set(cols.names):
        steps = cols.steps[names == name]
        if np.any(np.diff(steps) <= 0) or (name in stored and steps[0] <= stored[name]):
            return False
    return True


def _copy_text(experiment_id: int, cols: _Columns) -> str:
    """The batch in COPY's text format: tab-separated columns, ``\\N`` for NULL.  Names are
    escaped for the format's backslash, tab and newline rules; numbers need no escaping."""
    def escape(name: str) -> str:
        return name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    names = {n: escape(n) for n in set(cols.names)}
    prefix = f"{experiment_id}\t"
    null = "\\N"
    lines = [
        f"{prefix}{names[n]}\t{s}\t{null if e is None else e}\t{null if v != v else repr(v)}\t{w!r}"
        for n, s, e, v, w in zip(cols.names, cols.steps.tolist(), cols.epochs, cols.values.tolist(),
                                 cols.walls.tolist())
    ]
    lines.append("")
    return "\n".join(lines)


def _copy_rows(session: Session, experiment_id: int, cols: _Columns) -> None:
    """Append the batch with ``COPY FROM STDIN``: no SQL to parse, no arrays to unpack; the
    server only checks the primary key (a duplicate raises ``IntegrityError``)."""
    import psycopg

    data = _copy_text(experiment_id, cols)
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(_PG_COPY) as copy:
            copy.write(data)
    except psycopg.errors.UniqueViolation as exc:
        raise IntegrityError(_PG_COPY, None, exc) from exc
    finally:
        cursor.close()


def _insert_rows_postgresql(session: Session, experiment_id: int, cols: _Columns) -> list[tuple] | None:
    if _appends_only(session, experiment_id, cols):
        try:
            with session.begin_nested():  # a concurrent writer may still win the race: fall back
                _copy_rows(session, experiment_id, cols)
            return None
        except IntegrityError:
            pass
    distinct = sorted(set(cols.names))
    code_of = {n: i + 1 for i, n in enumerate(distinct)}
    params = {
        "experiment_id": experiment_id,
        "names": _pg_names_literal(distinct),
        "codes": _pg_literal(code_of[n] for n in cols.names),
        "steps": _pg_literal(cols.steps.tolist()),
        "epochs": _pg_literal(cols.epochs),
        "vals": _pg_literal(cols.values.tolist()),
        "walls": _pg_literal(cols.walls.tolist()),
    }
    return [tuple(r) for r in session.execute(_PG_INSERT_NEW, params)]


def _insert_rows(session: Session, experiment_id: int, cols: _Columns) -> list[tuple] | None:
    """The rows really inserted as (name, step, value, wall_time); None when all of them were."""
    if _dialect(session) == "postgresql":
        return _insert_rows_postgresql(session, experiment_id, cols)
    table = Metric.__table__
    statement = (
        _insert(session, table).on_conflict_do_nothing()
        .returning(table.c.name, table.c.step, table.c.value, table.c.wall_time)
    )
    rows = [
        {"experiment_id": experiment_id, "name": n, "step": s, "epoch": e, "value": v, "wall_time": w}
        for n, s, e, v, w in zip(cols.names, cols.steps.tolist(), cols.epochs, _none_for_nan(cols.values),
                                 cols.walls.tolist())
    ]
    return [tuple(r) for r in session.connection().execute(statement, rows)]


def add_points(session: Session, experiment_id: int, points: Iterable[PointLike]) -> int:
    """Insert ``points`` (dicts with name, step, epoch, value, wall_time, or tuples in that
    order); points already stored are skipped.  Returns how many were new.  Non-finite values
    are stored as NULL."""
    cols = _columns(points)
    if not cols.names:
        return 0
    inserted = _insert_rows(session, experiment_id, cols)
    if inserted is None:
        names, steps, values, walls = np.asarray(cols.names, dtype=object), cols.steps, cols.values, cols.walls
    elif not inserted:
        return 0
    else:
        names = np.array([r[0] for r in inserted], dtype=object)
        steps = np.fromiter((r[1] for r in inserted), dtype=np.int64, count=len(inserted))
        values = np.array([math.nan if r[2] is None else r[2] for r in inserted], dtype=np.float64)
        walls = np.fromiter((r[3] for r in inserted), dtype=np.float64, count=len(inserted))
    summaries: list[dict[str, Any]] = []
    rollups: list[dict[str, Any]] = []
    for name in sorted(set(names.tolist())):
        mask = names == name
        summaries.append(_summary_row(experiment_id, name, steps[mask], values[mask], walls[mask]))
        rollups.extend(_rollup_rows(experiment_id, name, steps[mask], values[mask]))
    _upsert_summaries(session, summaries)
    _upsert_rollups(session, rollups)
    return len(steps)


def _first_by(primary: np.ndarray, steps: np.ndarray) -> int:
    """Index of the smallest ``primary`` value, the earliest step among ties."""
    return int(np.lexsort((steps, primary))[0])


def _summary_row(experiment_id: int, name: str, steps, values, walls) -> dict[str, Any]:
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


def _group_extremes(groups: np.ndarray, keys: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each group (``groups`` sorted ids): the index of its smallest key, earliest step on ties."""
    order = np.lexsort((steps, keys, groups))
    unique, first = np.unique(groups[order], return_index=True)
    return unique, order[first]


def _rollup_rows(experiment_id: int, name: str, steps, values) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    low = np.where(np.isnan(values), np.inf, values)
    high = np.where(np.isnan(values), np.inf, -values)
    for width in ROLLUP_WIDTHS:
        blocks = steps // width
        unique, counts = np.unique(blocks, return_counts=True)
        _, imin = _group_extremes(blocks, low, steps)
        _, imax = _group_extremes(blocks, high, steps)
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


def _better(new_value, new_step, old_value, old_step, *, higher: bool):
    """SQL: the new (value, step) beats the stored one (NULL never wins; ties go to the earlier step)."""
    beats = new_value > old_value if higher else new_value < old_value
    return and_(
        new_value.is_not(None),
        (old_value.is_(None)) | beats | ((new_value == old_value) & (new_step < old_step)),
    )


def _upsert_summaries(session: Session, rows: list[dict[str, Any]]) -> None:
    table = MetricSummary.__table__
    c = table.c
    for higher in (False, True):
        batch = [r for r in rows if higher_is_better(r["name"]) == higher]
        if not batch:
            continue
        ins = _insert(session, table)
        x = ins.excluded
        newer = x.last_step > c.last_step
        better = _better(x.best_value, x.best_step, c.best_value, c.best_step, higher=higher)
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
                "best_step": case((better, x.best_step), else_=c.best_step),
                "best_value": case((better, x.best_value), else_=c.best_value),
                "best_wall_time": case((better, x.best_wall_time), else_=c.best_wall_time),
            },
        )
        session.connection().execute(statement, batch)


def _beats_sql(kind: str, op: str) -> str:
    new, old = f"excluded.{kind}", f"metric_rollups.{kind}"
    step_new, step_old = new.replace("value", "step"), old.replace("value", "step")
    return (f"({new} IS NOT NULL AND ({old} IS NULL OR {new} {op} {old} "
            f"OR ({new} = {old} AND {step_new} < {step_old})))")


_PG_UPSERT_ROLLUPS = text(
    f"""
    INSERT INTO metric_rollups (experiment_id, name, width, block, count, min_step, min_value, max_step, max_value)
    SELECT :experiment_id, (CAST(:names AS varchar[]))[t.code], t.width, t.block, t.count,
           t.min_step, t.min_value, t.max_step, t.max_value
    FROM unnest(CAST(:codes AS integer[]), CAST(:widths AS integer[]), CAST(:blocks AS bigint[]),
                CAST(:counts AS bigint[]), CAST(:min_steps AS bigint[]), CAST(:min_values AS double precision[]),
                CAST(:max_steps AS bigint[]), CAST(:max_values AS double precision[]))
         AS t(code, width, block, count, min_step, min_value, max_step, max_value)
    ON CONFLICT (experiment_id, name, width, block) DO UPDATE SET
        count = metric_rollups.count + excluded.count,
        min_step = CASE WHEN {_beats_sql("min_value", "<")} THEN excluded.min_step ELSE metric_rollups.min_step END,
        min_value = CASE WHEN {_beats_sql("min_value", "<")} THEN excluded.min_value ELSE metric_rollups.min_value END,
        max_step = CASE WHEN {_beats_sql("max_value", ">")} THEN excluded.max_step ELSE metric_rollups.max_step END,
        max_value = CASE WHEN {_beats_sql("max_value", ">")} THEN excluded.max_value ELSE metric_rollups.max_value END
    """
)


def _upsert_rollups_postgresql(session: Session, rows: list[dict[str, Any]]) -> None:
    distinct = sorted({r["name"] for r in rows})
    code_of = {n: i + 1 for i, n in enumerate(distinct)}
    params = {"experiment_id": rows[0]["experiment_id"], "names": _pg_names_literal(distinct),
              "codes": _pg_literal(code_of[r["name"]] for r in rows)}
    for key in ("width", "block", "count", "min_step", "min_value", "max_step", "max_value"):
        params[key + "s"] = _pg_literal(r[key] for r in rows)
    session.execute(_PG_UPSERT_ROLLUPS, params)


def _upsert_rollups(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if _dialect(session) == "postgresql":
        _upsert_rollups_postgresql(session, rows)
        return
    table = MetricRollup.__table__
    c = table.c
    ins = _insert(session, table)
    x = ins.excluded
    lower = _better(x.min_value, x.min_step, c.min_value, c.min_step, higher=False)
    higher = _better(x.max_value, x.max_step, c.max_value, c.max_step, higher=True)
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

def summaries(session: Session, experiment_ids: Sequence[int], names: Sequence[str] | None = None
              ) -> list[MetricSummary]:
    query = select(MetricSummary).where(MetricSummary.experiment_id.in_(list(experiment_ids)))
    if names:
        query = query.where(MetricSummary.name.in_(list(names)))
    return list(session.scalars(query.order_by(MetricSummary.experiment_id, MetricSummary.name)))


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


MIN_MAX_POINTS = 4


def bucket_width(first: int, last: int, max_points: int) -> int:
    """Step width of the buckets a series over ``[first, last]`` is cut into.  Buckets start at
    multiples of the width (not at ``first``) and the width is a multiple of a rollup level, so
    every rollup block lies inside one bucket and the bucket extremes are exact.  At most
    ``max_points // 2`` buckets overlap the range."""
    buckets = max(1, max_points // 2 - 1)
    raw = max(1, math.ceil((last - first + 1) / buckets))
    # a grid up to twice the ideal width: at least half the buckets asked for, from far fewer blocks
    grid = max([w for w in ROLLUP_WIDTHS if w <= 2 * raw], default=1)
    return math.ceil(raw / grid) * grid


def downsample(steps: np.ndarray, values: np.ndarray, width: int) -> Series:
    """Keep each bucket's (``step // width``) smallest and largest value, earliest step on ties;
    NaN is skipped."""
    keep = ~np.isnan(values)
    steps, values = steps[keep], values[keep]
    if len(steps) == 0:
        return Series([], [])
    bucket = steps // width
    _, imin = _group_extremes(bucket, values, steps)
    _, imax = _group_extremes(bucket, -values, steps)
    chosen = np.concatenate([imin, imax])
    kept_steps, first = np.unique(steps[chosen], return_index=True)  # a flat bucket keeps one point
    return Series(kept_steps.tolist(), values[chosen][first].tolist())


def series_many(
    session: Session, experiment_ids: Sequence[int], names: Sequence[str] | None, max_points: int
) -> dict[int, dict[str, Series]]:
    """Every requested series of every experiment, each at most ``max_points`` points; the
    reads are batched per kind (raw points, each rollup level), not per series."""
    if max_points < MIN_MAX_POINTS:
        raise ValueError(f"max_points must be at least {MIN_MAX_POINTS}")
    found = summaries(session, experiment_ids, names)
    result: dict[int, dict[str, Series]] = {i: {} for i in experiment_ids}
    raw: list[MetricSummary] = []
    by_width: dict[int, list[MetricSummary]] = {}
    for s in found:
        width = bucket_width(s.first_step, s.last_step, max_points)
        level = max([w for w in ROLLUP_WIDTHS if width % w == 0], default=None)
        if s.count <= max_points or level is None:
            raw.append(s)
        else:
            by_width.setdefault(level, []).append(s)
    if raw:
        keys = [(s.experiment_id, s.name) for s in raw]
        query = (
            select(Metric.experiment_id, Metric.name, Metric.step, Metric.value)
            .where(tuple_(Metric.experiment_id, Metric.name).in_(keys))
            .order_by(Metric.experiment_id, Metric.name, Metric.step)
        )
        grouped = _group_rows(session.connection().execute(query).fetchall())
        for s in raw:
            steps, values = grouped.get((s.experiment_id, s.name), (np.empty(0, np.int64), np.empty(0)))
            if s.count <= max_points:
                result[s.experiment_id][s.name] = Series(
                    steps.tolist(), [None if math.isnan(v) else v for v in values.tolist()]
                )
            else:
                result[s.experiment_id][s.name] = downsample(
                    steps, values, bucket_width(s.first_step, s.last_step, max_points)
                )
    for level, members in by_width.items():
        blocks = _read_blocks(session, level, [(s.experiment_id, s.name) for s in members])
        for s in members:
            found_blocks = blocks.get((s.experiment_id, s.name))
            width = bucket_width(s.first_step, s.last_step, max_points)
            result[s.experiment_id][s.name] = (
                Series([], []) if found_blocks is None else found_blocks.downsample(level, width)
            )
    return result


@dataclass
class _Blocks:
    """One series' rollup blocks of one level, in block order; NaN for a block of only
    non-finite values (its steps are then meaningless)."""

    block: np.ndarray  # int64
    min_step: np.ndarray  # int64
    min_value: np.ndarray  # float64
    max_step: np.ndarray
    max_value: np.ndarray

    def downsample(self, level: int, width: int) -> Series:
        """Each bucket's (``step // width``) smallest and largest value, earliest step on ties,
        exactly: a bucket is a run of whole blocks (``width`` is a multiple of ``level``), its
        minimum the least block minimum, and block minima come in step order."""
        bucket = self.block * level // width
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        low_steps, low_values = _first_extreme(self.min_step, self.min_value, starts)
        high_steps, high_values = _first_extreme(self.max_step, -self.max_value, starts)
        steps = np.concatenate([low_steps, high_steps])
        values = np.concatenate([low_values, -high_values])
        kept, first = np.unique(steps, return_index=True)  # a flat bucket picks one point twice
        return Series(kept.tolist(), values[first].tolist())


def _first_extreme(steps: np.ndarray, values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (``starts`` of runs of ``values``): the step and value of its smallest value,
    the first one on ties; segments of only NaN give nothing."""
    v = np.where(np.isnan(values), np.inf, values)
    least = np.minimum.reduceat(v, starts)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(v)]))
    hits = np.flatnonzero(v == least[segment])  # never true for an all-NaN (inf) segment's inf
    hits = hits[np.isfinite(v[hits])]
    first = hits[np.r_[True, segment[hits][1:] != segment[hits][:-1]]] if len(hits) else hits
    return steps[first], values[first]


_PG_BLOCKS = text(
    """
    SELECT experiment_id, name,
           string_agg(int8send(block), ''::bytea ORDER BY block),
           string_agg(int8send(COALESCE(min_step, 0)), ''::bytea ORDER BY block),
           string_agg(float8send(COALESCE(min_value, 'NaN')), ''::bytea ORDER BY block),
           string_agg(int8send(COALESCE(max_step, 0)), ''::bytea ORDER BY block),
           string_agg(float8send(COALESCE(max_value, 'NaN')), ''::bytea ORDER BY block)
    FROM metric_rollups
    WHERE width = :width AND experiment_id = ANY(:ids) AND name = ANY(:names)
    GROUP BY experiment_id, name
    """
)


def _read_blocks(session: Session, level: int, keys: list[tuple[int, str]]) -> dict[tuple[int, str], _Blocks]:
    """The blocks of width ``level`` of every series in ``keys``.  PostgreSQL packs each
    series' columns into one big-endian binary string (one row per series, decoded by numpy
    without a Python object per block: a comparison reads tens of thousands of blocks)."""
    if _dialect(session) == "postgresql":
        ids = sorted({k[0] for k in keys})
        names = sorted({k[1] for k in keys})
        wanted = set(keys)
        out = {}
        for eid, name, *packed in session.execute(_PG_BLOCKS, {"width": level, "ids": ids, "names": names}):
            if (eid, name) in wanted:
                ints = [np.frombuffer(packed[i], dtype=">i8").astype(np.int64) for i in (0, 1, 3)]
                floats = [np.frombuffer(packed[i], dtype=">f8").astype(np.float64) for i in (2, 4)]
                out[(eid, name)] = _Blocks(ints[0], ints[1], floats[0], ints[2], floats[1])
        return out
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
            out[tuple(rows[start][:2])] = _Blocks(as_int[0], as_int[1], as_float[0], as_int[2], as_float[1])
            start = end
    return out


def _group_rows(rows: Sequence[Sequence[Any]]) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    grouped: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
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


def series(session: Session, experiment_id: int, names: Sequence[str] | None, max_points: int
           ) -> dict[str, Series]:
    return series_many(session, [experiment_id], names, max_points)[experiment_id]
