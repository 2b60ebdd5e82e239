"""``descent bench solvers`` on a tiny size: every catalogued solver is timed or
skipped with its reason, each is stepped the way the engine steps it, and the ratios are the
measured times' ratios."""

from __future__ import annotations

import math

import pytest
import torch

from bench.solvers import make_problem, run_solver_benchmark, table
from bench.table import parse_markdown, render
from descent.cli import main
from optim import catalog


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


def test_the_table_reads_back_as_the_measured_numbers(result):
    (rows,) = parse_markdown(render(table(result), markdown=True))
    assert [cells["solver"] for cells in rows] == [r.solver for r in result.rows]
    for cells, row in zip(rows, result.rows):
        assert int(cells["steps"]) == row.steps
        assert float(cells["ms/step"]) == pytest.approx(row.ms, abs=5e-4)
        assert float(cells["vs adam"].rstrip("x")) == pytest.approx(row.vs_adam, abs=5e-3)
        assert float(cells["evals/step"]) == pytest.approx(row.evals_per_step, abs=5e-3)


def test_cli_prints_one_table_per_hidden_size(capsys):
    code = main(["bench", "solvers", "--only", "sgd,newton", "--hidden", "4,40", "--batch", "20", "--steps", "1",
                 "--rounds", "1", "--threads", "1", "--markdown"])
    out = capsys.readouterr().out
    assert code == 0
    small, large = parse_markdown(out)
    assert [r["solver"] for r in small] == ["sgd", "newton"]  # 310 parameters: within Newton's max_params
    assert [r["solver"] for r in large] == ["sgd"]
    assert "MLP with 310 parameters" in out and "MLP with 3,010 parameters" in out
    assert "not timed: newton (model has 3010 parameters, max_params is" in out
