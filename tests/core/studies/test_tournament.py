"""The solver tournament: the ten solvers of the seed document, each a catalog solver, each
grid point a valid experiment spec."""

import copy

import pytest

from core.spec import ExperimentSpec
from core.spec.experiment import EXAMPLE_SPEC
from core.studies import HASTY_SOLVERS, apply, enumerate_grid, grid_size, tournament
from optim import catalog


def test_the_ten_solvers_are_in_the_catalog():
    assert len(set(HASTY_SOLVERS)) == 10
    for name in HASTY_SOLVERS:
        catalog.solver(name)


@pytest.mark.parametrize("kw, size", [({}, 70), ({"points": 3}, 30), ({"solvers": ["adam", "sgd"], "points": 2}, 4)])
def test_the_tournament_is_a_grid_of_solvers_by_rates(kw, size):
    study = tournament(copy.deepcopy(EXAMPLE_SPEC), **kw)
    assert (study.strategy, study.pruner.name, study.budget.max_trials) == ("grid", "asha", size)
    assert grid_size(study.space) == size
    assert study.objective.mode == "min"


@pytest.mark.parametrize("solver", HASTY_SOLVERS)
def test_every_point_of_every_solver_is_a_valid_spec(solver):
    study = tournament(copy.deepcopy(EXAMPLE_SPEC))
    points = [p for p in enumerate_grid(study.space) if p["solver.name"] == solver]
    # 7 rates evenly spaced in log10 from -5 to 0
    assert [p["solver.base_lr"] for p in points] == pytest.approx([10 ** (-5 + 5 * i / 6) for i in range(7)])
    for p in points:
        spec = ExperimentSpec.model_validate(apply(study.base, p))
        assert (spec.solver.name, spec.solver.base_lr) == (solver, p["solver.base_lr"])
