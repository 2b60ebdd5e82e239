"""The per-solver training-step benchmark on a tiny size: every catalogued solver is timed or
skipped with its reason, each is stepped the way the engine steps it, and the ratios are the
measured times' ratios."""

from __future__ import annotations

import math

import pytest
import torch

from descent.cli import main
from optim import catalog
from optim.bench_solvers import format_solver_table, make_problem, run_solver_benchmark


@pytest.fixture(scope="module")
def result():
    return run_solver_benchmark(hidden=6, batch=40, steps=2, rounds=1, warmup=1, threads=1)


def test_every_solver_is_timed_or_skipped_with_a_reason(result):
    timed = {r.solver for r in result.rows}
    assert timed | set(result.skipped) == set(catalog.SOLVERS)
    assert not result.skipped  # 64*6+6+6*10+10 = 460 parameters: within every solver's max_params
    assert result.n_params == 460


def test_closure_solvers_evaluate_the_loss_as_often_as_they_need(result):
    by_name = {r.solver: r for r in result.rows}
    for name, row in by_name.items():
        if catalog.solver(name).needs_closure:
            assert row.evals_per_step >= 1, name
        else:
            assert row.evals_per_step == 1, name  # one forward/backward per step
    assert by_name["lbfgs"].evals_per_step > 1  # up to max_iter inner iterations per step


def test_ratio_is_the_measured_times_ratio(result):
    for row in result.rows:
        assert row.ms > 0 and row.adam_ms > 0
        assert row.vs_adam == pytest.approx(row.ms / row.adam_ms, rel=1e-12)


def test_the_timed_steps_train(result):
    """The steps are real training steps: Adam's batch loss after them is below the initial one."""
    x, y, build = make_problem(64, 6, 10, 40)
    initial = torch.nn.functional.cross_entropy(build()(x), y).item()
    adam = next(r for r in result.rows if r.solver == "adam")
    assert math.isfinite(adam.final_loss) and adam.final_loss < initial


def test_solvers_over_their_max_params_are_skipped():
    r = run_solver_benchmark(only=["newton", "adam"], hidden=40, batch=20, steps=1, rounds=1, warmup=0)
    assert [row.solver for row in r.rows] == ["adam"]
    assert "max_params" in r.skipped["newton"]


def test_unknown_solver_is_named():
    with pytest.raises(ValueError, match="only"):
        run_solver_benchmark(only=["nosuch"])


def test_cli_prints_one_row_per_solver(capsys):
    code = main(["bench", "solvers", "--only", "sgd,lbfgs", "--hidden", "4", "--batch", "20", "--steps", "1",
                 "--rounds", "1", "--threads", "1", "--markdown"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("MLP with 310 parameters, batch 20, 1 threads")
    rows = [line for line in out if line.startswith("| ") and not line.startswith("| solver")]
    assert [r.split("|")[1].strip() for r in rows] == ["sgd", "lbfgs"]
    assert format_solver_table(run_solver_benchmark(only=["sgd"], hidden=2, batch=4, steps=1, rounds=1))
