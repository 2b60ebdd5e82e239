"""``descent bench api``: the store and api on a real PostgreSQL.  Metric ingest in batches
(``store.repositories.metrics.add_points``) against one INSERT per point, and ``GET /compare``
for 20 experiments x 5 metrics at max_points=500 at every series length in ``--steps`` (1,000 to
1,000,000 steps) against reading the raw points; both baselines are measured in the same run.
Series of ``--rollups-only-from`` steps or more (100 million points at 1,000,000 steps, hours of
ingest) get their rollup blocks and summaries written directly, exactly as ingest would write
them (a compare of such series reads nothing else; the experiments share one set of values), and
have no raw baseline.

It creates a scratch database on the server ``--postgres-url`` names (an admin url; default
``DESCENT_TEST_POSTGRES_URL``), applies the migrations and drops it at the end.  ``/compare``
goes through the whole FastAPI app in-process (routing, validation, JSON), not a socket."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial

from bench import ADMIN_URL
from bench.identity import default_project_id, user_token
from bench.table import Table

NAMES = ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr")


def _rng(seed: int):
    import numpy as np

    return np.random.default_rng(seed)


def _experiment(factory, split_id: int, name: str) -> int:
    from store.db import session_scope
    from store.repositories import experiments

    with session_scope(factory) as s:
        return experiments.create(s, name=name, spec={}, solver="sgd", tags=[], split_id=split_id, queue="cpu").id


def _points(name: str, start: int, n: int, rng) -> list[tuple]:
    import numpy as np

    values = np.cumsum(rng.normal(size=n)).tolist()
    now = time.time()
    return [(name, s, s // 1000, v, now) for s, v in zip(range(start, start + n), values)]


def bench_ingest(factory, split_id: int, total: int, batch: int) -> float:
    from store.db import session_scope
    from store.repositories import metrics

    eid = _experiment(factory, split_id, "ingest")
    rng = _rng(0)
    batches = [_points(NAMES[i % len(NAMES)], (i // len(NAMES)) * batch, batch, rng) for i in range(total // batch)]
    start = time.perf_counter()
    for points in batches:
        with session_scope(factory) as s:
            metrics.add_points(s, eid, points)
    return total / (time.perf_counter() - start)


def bench_naive_ingest(factory, split_id: int, total: int) -> float:
    """The baseline: one INSERT per point, committed per batch of 1000."""
    from sqlalchemy import insert

    from store.db import session_scope
    from store.models import Metric

    eid = _experiment(factory, split_id, "naive")
    points = _points("train/loss", 0, total, _rng(1))
    start = time.perf_counter()
    for i in range(0, total, 1000):
        with session_scope(factory) as s:
            for name, step, epoch, value, wall in points[i:i + 1000]:
                s.execute(insert(Metric).values(experiment_id=eid, name=name, step=step, epoch=epoch, value=value,
                                                wall_time=wall))
    return total / (time.perf_counter() - start)


def fill_compare(factory, split_id: int, n_experiments: int, steps: int) -> list[int]:
    from store.db import session_scope
    from store.repositories import metrics

    ids = []
    rng = _rng(2)
    for i in range(n_experiments):
        eid = _experiment(factory, split_id, f"compare-{steps}-{i}")
        for name in NAMES:
            for start in range(0, steps, 50_000):
                with session_scope(factory) as s:
                    metrics.add_points(s, eid, _points(name, start, min(50_000, steps - start), rng))
        ids.append(eid)
    return ids


def dense_rollup_rows(experiment_id: int, name: str, values) -> list[dict]:
    """The rollup blocks ``rollups.rollup_rows`` makes of a series at steps ``0 .. len(values)-1``
    with no missing value, from a reshape per level instead of a sort (argmin and argmax take the
    first, i.e. earliest, of equal values)."""
    import numpy as np

    from store.models import ROLLUP_WIDTHS

    rows = []
    n = len(values)
    for width in ROLLUP_WIDTHS:
        blocks = -(-n // width)
        padded = np.full(blocks * width, np.nan)
        padded[:n] = values
        grid = padded.reshape(blocks, width)
        low = np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1)
        high = np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1)
        counts = np.minimum(width, n - np.arange(blocks) * width)
        for block, count, i, j in zip(range(blocks), counts.tolist(), low.tolist(), high.tolist()):
            start = block * width
            rows.append({"experiment_id": experiment_id, "name": name, "width": width, "block": block, "count": count,
                         "min_step": start + i, "min_value": float(grid[block, i]),
                         "max_step": start + j, "max_value": float(grid[block, j])})
    return rows


def fill_rollups_only(factory, split_id: int, n_experiments: int, steps: int) -> list[int]:
    """Experiments whose series have the blocks and summaries ingest of ``steps`` points would
    leave, without the points themselves.  The first experiment's are computed (an upsert of
    400,000 blocks takes seconds); the others get copies of them, in one statement each."""
    import numpy as np
    from sqlalchemy import insert, literal, select

    from store.db import session_scope
    from store.models import MetricRollup, MetricSummary
    from store.repositories.metrics.rollups import upsert_rollups
    from store.repositories.metrics.summaries import summary_row, upsert_summaries

    rng = _rng(3)
    step_array = np.arange(steps)
    walls = np.full(steps, time.time())
    ids = [_experiment(factory, split_id, f"compare-{steps}-{i}") for i in range(n_experiments)]
    for name in NAMES:
        values = np.cumsum(rng.normal(size=steps))
        with session_scope(factory) as s:
            upsert_rollups(s, dense_rollup_rows(ids[0], name, values))
            upsert_summaries(s, [summary_row(ids[0], name, step_array, values, walls)])
    for eid in ids[1:]:
        with session_scope(factory) as s:
            for model in (MetricRollup, MetricSummary):
                columns = [c.name for c in model.__table__.columns if c.name != "experiment_id"]
                source = select(literal(eid), *(model.__table__.c[c] for c in columns)).where(
                    model.__table__.c.experiment_id == ids[0])
                s.execute(insert(model).from_select(["experiment_id", *columns], source))
    return ids


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm caches and connections
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _split(factory) -> int:
    from store.db import session_scope
    from store.models import Split

    with session_scope(factory) as s:
        split = Split(project_id=default_project_id(factory), builtin="iris", strategy="random", fractions={"train": 1.0}, seed=0,
                      train_indices=list(range(150)), val_indices=[], test_indices=[], summary={})
        s.add(split)
        s.flush()
        return split.id


def _compare_ms(url: str, factory, groups: list[list[int]], repeats: int) -> list[list[float]]:
    """Per group of ids: times of ``GET /api/v1/compare`` for them through the whole app,
    in-process (one app and one user for all groups)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings

    app = create_app(Settings(database_url=url, allowed_hosts=["testserver"], requests_per_minute=10**9),
                     session_factory=factory,
                     enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
    with TestClient(app, headers={"Authorization": f"Bearer {user_token(factory)[0]}"}) as client:
        def compare(ids):
            params = {"ids": ",".join(map(str, ids)), "names": ",".join(NAMES), "max_points": 500}
            r = client.get("/api/v1/compare", params=params)
            assert r.status_code == 200, r.text
            series = [s for e in r.json()["experiments"] for s in e["series"].values()]
            assert len(series) == len(ids) * len(NAMES) and all(0 < len(s["steps"]) <= 500 for s in series)

        return [timed(partial(compare, ids), repeats) for ids in groups]


def _raw_fetch_ms(factory, ids: list[int], repeats: int) -> list[float]:
    """The baseline: read every point of ``ids`` from the table."""
    from sqlalchemy import select

    from store.models import Metric

    def raw_fetch():
        with factory() as s:
            s.execute(select(Metric.experiment_id, Metric.name, Metric.step, Metric.value)
                      .where(Metric.experiment_id.in_(ids))).all()

    return timed(raw_fetch, repeats)


def run(args: argparse.Namespace) -> Table:
    import numpy as np

    from store.db import make_engine, make_sessionmaker

    lengths = ", ".join(f"{n:,}" for n in args.steps)
    out = Table(f"PostgreSQL scratch database; ingest of {args.ingest_points:,} points, GET /compare of "
                f"{args.experiments}×{len(NAMES)} series of {lengths} steps, {args.repeats} timed requests each",
                COLUMNS)
    from store.scratch import scratch_database  # a database driver only when it runs

    with scratch_database(args.postgres_url, prefix="descent_bench") as url:
        engine = make_engine(url)
        try:
            factory = make_sessionmaker(engine)
            split_id = _split(factory)
            batched = bench_ingest(factory, split_id, args.ingest_points, args.batch)
            naive = bench_naive_ingest(factory, split_id, args.naive_points)
            out.add(f"ingest, batches of {args.batch:,}", f"{batched:,.0f} points/s", f"{batched / naive:,.1f}x")
            out.add("ingest, one INSERT per point (baseline)", f"{naive:,.0f} points/s", "")
            filled = {}
            for steps in args.steps:
                direct = steps >= args.rollups_only_from
                print(f"filling {args.experiments}×{len(NAMES)}×{steps:,}{' (blocks only)' if direct else ''} ...",
                      file=sys.stderr)
                fill = fill_rollups_only if direct else fill_compare
                filled[steps] = fill(factory, split_id, args.experiments, steps), direct
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            times = _compare_ms(url, factory, [ids for ids, _ in filled.values()], args.repeats)
            for (steps, (ids, direct)), ms in zip(filled.items(), times):
                size = f"{args.experiments}×{len(NAMES)}×{steps:,}"
                median = statistics.median(ms)
                result = f"median {median:.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"
                if direct:
                    out.add(f"GET /compare {size}, max_points=500 (blocks written directly)", result, "")
                    continue
                points = len(ids) * len(NAMES) * steps  # tens of seconds past a few million: timed once
                raw = statistics.median(_raw_fetch_ms(factory, ids, 3 if points <= 2_000_000 else 1))
                out.add(f"GET /compare {size}, max_points=500", result, f"{raw / median:,.1f}x")
                out.add("raw fetch of the same points (baseline)", f"median {raw:.0f} ms", "")
        finally:
            engine.dispose()
    return out


# -- descent bench api ------------------------------------------------------------------------

TITLE = "API and store"
HELP = "metric ingest and GET /compare on a scratch PostgreSQL database, against naive baselines"
QUICK = {"ingest_points": 20_000, "batch": 5_000, "naive_points": 2_000, "experiments": 3, "steps": [5_000],
         "repeats": 3}
COLUMNS = ("measure", "result", "speed-up over the baseline")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--postgres-url", default=ADMIN_URL, help="admin url of the server (default: %(default)s)")
    p.add_argument("--ingest-points", type=int, default=500_000, help="points ingested in batches")
    p.add_argument("--batch", type=int, default=10_000, help="points per add_points call")
    p.add_argument("--naive-points", type=int, default=20_000, help="points of the one-INSERT-per-point baseline")
    p.add_argument("--experiments", type=int, default=20, help="experiments compared")
    p.add_argument("--steps", type=lambda t: [int(n) for n in t.split(",") if n.strip()],
                   default=[1_000, 20_000, 100_000, 1_000_000],
                   help="series lengths, comma-separated: steps of each of their 5 metrics (default: %(default)s)")
    p.add_argument("--rollups-only-from", type=int, default=1_000_000,
                   help="from this length on, write the series' blocks and summaries instead of ingesting "
                        "their points (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=30, help="timed /compare requests after a warm-up")


def measure(args: argparse.Namespace) -> list[Table]:
    return [run(args)]
