"""Every benchmark of Descent, one module each, run with ``descent bench NAME`` (``descent
bench --help`` lists them).  Each prints tables through ``bench.table`` (the format
docs/benchmarks.md uses) with ratios against a baseline timed in the same run, and ``--write``
puts them into docs/benchmarks.md (``bench.docs``).

A benchmark module has ``TITLE`` (its section in docs/benchmarks.md), ``HELP`` (one line),
``QUICK`` (the options of its smallest run, ``--quick``), ``add_arguments(parser)`` and
``measure(args) -> list[Table]``.  Importing one loads neither torch nor a database driver, so
``descent --help`` stays fast; they are imported by the CLI only (the api never imports bench).
"""

from __future__ import annotations

import os

# the PostgreSQL server (admin URL) on which ``api`` and ``engine`` make their scratch database
ADMIN_URL = os.environ.get("DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# descent bench NAME -> module
BENCHMARKS = {
    "optim": "bench.optim_step",
    "solvers": "bench.solvers",
    "engine": "bench.engine",
    "api": "bench.store_api",
    "broker": "bench.broker",
    "auth": "bench.auth",
    "streams": "bench.streams",
    "tournament": "bench.tournament",
    "landscape": "bench.landscape",
    "eightbit": "bench.eightbit",
    "race": "bench.race",
}
