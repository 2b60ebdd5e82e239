"""``descent bench``: every benchmark is listed, runs in its quick mode and prints a table that
reads back; ``--write`` puts that table into the docs file; the parser stays torch-free."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import BENCHMARKS
from bench.table import parse_markdown
from descent.cli import main

ROOT = Path(__file__).resolve().parents[2]

# the first column of each benchmark's first table, as a quick run fills it
QUICK_ROWS = {
    "optim": ["sgd"] * 6 + ["adam"] * 6 + ["lion"] * 3,  # ours loop, foreach, fused; torch for-loop, foreach, fused
    "solvers": ["sgd", "lbfgs"],
    "engine": ["mlp 2×128, batch 64"],
    "api": ["ingest, batches of 5,000", "ingest, one INSERT per point (baseline)",
            "GET /compare 3×5×5,000, max_points=500", "raw fetch of the same points (baseline)"],
    "broker": ["filesystem", "sqla+sqlite"],
    "auth": ["PostgreSQL", "PostgreSQL", "SQLite", "SQLite"],
    "streams": ["this tree"] * 3,
    "tournament": ["none", "asha"],
    "landscape": ["9×9"],
    "race": ["8 first-order", "6 first-order + lbfgs + bfgs"],
    "eightbit": ["mlp 2×128", "mlp 2×128"],
}
EXTRA = {"optim": ["--device", "cpu", "--threads", "1"], "solvers": ["--threads", "1"],
         "engine": ["--threads", "1", "--skip-latency"], "landscape": ["--threads", "1"],
         "eightbit": ["--threads", "1"]}

EXTRA["race"] = ["--no-server"]  # the lab worker's compute alone: a quick run starts no `descent up`


def test_help_lists_every_benchmark(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert set(QUICK_ROWS) == set(BENCHMARKS)
    for name in BENCHMARKS:
        assert re.search(rf"^    {name}\b", out, re.M), name  # a long name has its help on the next line


def _marked(name: str):
    """The api, auth and landscape benchmarks need PostgreSQL."""
    return pytest.param(name, marks=pytest.mark.integration) if name in ("api", "auth", "landscape") else name


@pytest.mark.parametrize("name", [_marked(name) for name in sorted(BENCHMARKS)])
def test_quick_run_prints_a_table(name, capsys):
    assert main(["bench", name, "--quick", "--markdown", *EXTRA.get(name, [])]) == 0
    tables = parse_markdown(capsys.readouterr().out)
    first = [next(iter(row.values())) for row in tables[0]]
    assert first == QUICK_ROWS[name]


@pytest.mark.integration
@pytest.mark.slow
def test_queue_latency_quick_run(capsys):
    """The api, a worker, PostgreSQL and a redis-server of its own, as separate processes."""
    assert main(["bench", "engine", "--quick", "--skip-throughput", "--markdown"]) == 0
    (rows,) = parse_markdown(capsys.readouterr().out)
    assert rows[0]["measure"] == "POST /experiments → running, idle worker, 2 runs"
    assert float(rows[0]["result"].split()[1]) > 0  # "median N ms, ..."


def test_explicit_options_win_over_quick(capsys):
    main(["bench", "solvers", "--quick", "--hidden", "5", "--only", "sgd"])
    out = capsys.readouterr().out
    assert out.startswith("MLP with 385 parameters, batch 20,")  # 64*5+5 + 5*10+10; quick's batch


def test_write_replaces_the_benchmarks_block(tmp_path, capsys):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Broker\n\nkept\n")
    for _ in range(2):
        main(["bench", "solvers", "--quick", "--only", "sgd", "--write", str(path)])
    printed = capsys.readouterr().out
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\n## Broker\n\nkept\n\n## Every solver")
    assert text.count("descent bench solvers: begin") == 1
    assert "`descent bench solvers --only sgd --quick`, measured " in text
    assert [r["solver"] for r in parse_markdown(text)[0]] == ["sgd"]
    assert printed.count(f"wrote the solvers block of {path}") == 2
    assert printed.count("MLP with 310 parameters") == 2  # and printed their tables


def test_unknown_solver_is_an_error(capsys):
    assert main(["bench", "optim", "--device", "cpu", "--params", "100", "--tensors", "2", "--repeats", "1",
                 "--only", "nosuch"]) == 1
    assert capsys.readouterr().err.startswith("error: only: unknown solvers ['nosuch']; known: ")  # one line


def test_a_benchmark_name_is_required():
    with pytest.raises(SystemExit):
        main(["bench"])


def test_building_the_parser_loads_neither_torch_nor_a_database_driver():
    probe = ("import json, sys; from descent.cli import build_parser; build_parser(); "
             "print(json.dumps(sorted(m for m in ('torch', 'sqlalchemy', 'fastapi', 'kombu') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
