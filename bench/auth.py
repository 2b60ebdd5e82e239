"""``descent bench auth``: what signing a request in costs.  ``GET /api/v1/experiments/{id}``
through the whole app in-process, with a Bearer token (the token's lookup by its hash, its
user, the user's roles, the project check), against the same request with the caller fixed
in advance (FastAPI's dependency override: the same route, no lookup) — the request as it was
before identity.  The two kinds alternate, so drift of the machine hits both alike.

Runs on a scratch PostgreSQL database (``--postgres-url``, an admin url) and on an SQLite file."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from bench import ADMIN_URL
from bench.identity import default_project_id, user_token
from bench.table import Table

TITLE = "Authentication cost"
HELP = "added latency of a token-authenticated request against the same request without the lookup"
QUICK = {"requests": 200}
COLUMNS = ("database", "request", "p50", "p99", "added by authentication (p50 / p99)")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _world(factory):
    """An editor of the default project, a token of theirs and one experiment they can read."""
    from store.db import session_scope
    from store.models import Split
    from store.repositories import experiments

    secret, user_id = user_token(factory, is_admin=False, role="editor")
    project_id = default_project_id(factory)
    with session_scope(factory) as s:
        split = Split(project_id=project_id, builtin="iris", strategy="random", fractions={"train": 1.0}, seed=0,
                      train_indices=list(range(150)), val_indices=[], test_indices=[], summary={})
        s.add(split)
        s.flush()
        eid = experiments.create(s, name="bench", spec={}, solver="sgd", tags=[], split_id=split.id, queue="cpu").id
    return eid, secret, user_id, project_id


def _time(url: str, factory, n: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``n`` signed-in requests and ``n`` with the caller fixed, alternating."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth.principal import Principal, _principal
    from core.settings import Settings

    eid, secret, user_id, project_id = _world(factory)
    # one token makes every request: a rate limit high enough never to refuse (its bookkeeping still runs)
    settings = Settings(database_url=url, allowed_hosts=["testserver"], requests_per_minute=10**9)
    signed = create_app(settings, session_factory=factory, enqueuer=lambda *a: None, reconcile_interval_s=0,
                        broker_check=lambda: None)
    fixed = create_app(settings, session_factory=factory, enqueuer=lambda *a: None, reconcile_interval_s=0,
                       broker_check=lambda: None)
    caller = Principal(kind="user", user_id=user_id, username="bench", roles={project_id: "editor"})
    fixed.dependency_overrides[_principal] = lambda: caller
    headers = {"Authorization": f"Bearer {secret}"}
    path = f"/api/v1/experiments/{eid}"
    out: tuple[list[float], list[float]] = ([], [])
    with TestClient(signed, headers=headers) as a, TestClient(fixed, headers=headers) as b:
        for _ in range(20):  # warm connections and caches
            a.get(path), b.get(path)
        for _ in range(n):
            for times, client in zip(out, (a, b)):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
    return out


def _rows(table: Table, database: str, signed: list[float], fixed: list[float]) -> None:
    p50s, p99s = (statistics.median(signed), statistics.median(fixed)), (_percentile(signed, 0.99),
                                                                         _percentile(fixed, 0.99))
    table.add(database, "with a Bearer token", f"{p50s[0]:.2f} ms", f"{p99s[0]:.2f} ms",
              f"{p50s[0] - p50s[1]:+.2f} ms / {p99s[0] - p99s[1]:+.2f} ms")
    table.add(database, "caller fixed (baseline)", f"{p50s[1]:.2f} ms", f"{p99s[1]:.2f} ms", "")


def measure(args: argparse.Namespace) -> list[Table]:
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from store.scratch import scratch_database

    table = Table(f"GET /api/v1/experiments/{{id}} in-process, {args.requests} requests of each kind, alternating",
                  COLUMNS)
    with scratch_database(args.postgres_url, prefix="descent_bench_auth") as url:
        engine = make_engine(url)
        try:
            _rows(table, "PostgreSQL", *_time(url, make_sessionmaker(engine), args.requests))
        finally:
            engine.dispose()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        try:
            _rows(table, "SQLite", *_time(url, make_sessionmaker(engine), args.requests))
        finally:
            engine.dispose()
    table.notes.append("The token's last use is written at most once a minute, so it is in the first request only.")
    return [table]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--postgres-url", default=ADMIN_URL, help="admin url of the server (default: %(default)s)")
    p.add_argument("--requests", type=int, default=2000, help="timed requests of each kind")
