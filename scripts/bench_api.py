"""Benchmark the store and api on a real PostgreSQL: metric ingest (batched vs one row per
statement) and ``GET /compare`` for 20 experiments × 5 metrics × 100,000 steps at
max_points=500 (against reading the raw points as the baseline).

    python scripts/bench_api.py [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

It creates and drops a scratch database; the url is an admin url.  Prints a table."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from api.app import create_app  # noqa: E402
from core.settings import Settings  # noqa: E402
from store.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Metric, Split  # noqa: E402
from store.repositories import experiments, metrics  # noqa: E402
from tests.db_fixtures import scratch_postgres_url  # noqa: E402

NAMES = ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr")


def _experiment(factory, split_id: int, name: str) -> int:
    with session_scope(factory) as s:
        return experiments.create(s, name=name, spec={}, solver="sgd", tags=[], split_id=split_id, queue="cpu").id


def _points(name: str, start: int, n: int, rng) -> list[tuple]:
    steps = np.arange(start, start + n)
    values = np.cumsum(rng.normal(size=n)).tolist()
    now = time.time()
    return [(name, int(s), int(s) // 1000, v, now) for s, v in zip(steps.tolist(), values)]


def bench_ingest(factory, split_id: int, total: int, batch: int) -> float:
    eid = _experiment(factory, split_id, "ingest")
    rng = np.random.default_rng(0)
    batches = [_points(NAMES[i % len(NAMES)], (i // len(NAMES)) * batch, batch, rng) for i in range(total // batch)]
    start = time.perf_counter()
    for points in batches:
        with session_scope(factory) as s:
            metrics.add_points(s, eid, points)
    return total / (time.perf_counter() - start)


def bench_naive_ingest(factory, split_id: int, total: int) -> float:
    """The baseline: one INSERT per point, committed per batch of 1000."""
    eid = _experiment(factory, split_id, "naive")
    points = _points("train/loss", 0, total, np.random.default_rng(1))
    start = time.perf_counter()
    for i in range(0, total, 1000):
        with session_scope(factory) as s:
            for name, step, epoch, value, wall in points[i:i + 1000]:
                s.execute(insert(Metric).values(experiment_id=eid, name=name, step=step, epoch=epoch, value=value,
                                                wall_time=wall))
    return total / (time.perf_counter() - start)


def fill_compare(factory, split_id: int, n_experiments: int, steps: int) -> list[int]:
    ids = []
    rng = np.random.default_rng(2)
    for i in range(n_experiments):
        eid = _experiment(factory, split_id, f"compare-{i}")
        for name in NAMES:
            for start in range(0, steps, 50_000):
                with session_scope(factory) as s:
                    metrics.add_points(s, eid, _points(name, start, min(50_000, steps - start), rng))
        ids.append(eid)
    return ids


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm caches and connections
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get(
        "DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--ingest-points", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--naive-points", type=int, default=20_000)
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    url, drop = scratch_postgres_url(args.postgres_url)
    try:
        upgrade(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with session_scope(factory) as s:
            split = Split(builtin="iris", strategy="random", fractions={"train": 1.0}, seed=0,
                          train_indices=list(range(150)), val_indices=[], test_indices=[], summary={})
            s.add(split)
            s.flush()
            split_id = split.id
        rows = []
        batched = bench_ingest(factory, split_id, args.ingest_points, args.batch)
        rows.append((f"ingest, batches of {args.batch:,}", f"{batched:,.0f} points/s"))
        naive = bench_naive_ingest(factory, split_id, args.naive_points)
        rows.append(("ingest, one INSERT per point (baseline)", f"{naive:,.0f} points/s"))

        print(f"filling {args.experiments} × {len(NAMES)} × {args.steps:,} points ...", file=sys.stderr)
        ids = fill_compare(factory, split_id, args.experiments, args.steps)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        app = create_app(Settings(database_url=url), session_factory=factory, enqueuer=lambda *a: None,
                         reconcile_interval_s=0, broker_check=lambda: None)
        with TestClient(app) as client:
            params = {"ids": ",".join(map(str, ids)), "names": ",".join(NAMES), "max_points": 500}

            def compare():
                r = client.get("/api/v1/compare", params=params)
                assert r.status_code == 200, r.text
                data = r.json()
                assert all(len(s["steps"]) <= 500 for e in data["experiments"] for s in e["series"].values())

            ms = timed(compare, args.repeats)

        def raw_fetch():
            with factory() as s:
                s.execute(select(Metric.experiment_id, Metric.name, Metric.step, Metric.value)
                          .where(Metric.experiment_id.in_(ids))).all()

        raw_ms = timed(raw_fetch, 3)
        p95 = np.percentile(ms, 95)
        rows.append((f"GET /compare {args.experiments}×{len(NAMES)}×{args.steps:,}, max_points=500",
                     f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms"))
        rows.append(("raw fetch of the same points (baseline)", f"median {statistics.median(raw_ms):.0f} ms"))
        engine.dispose()
    finally:
        drop()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)} | result")
    print(f"{'-' * width}-|-{'-' * 32}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
