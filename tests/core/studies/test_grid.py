"""The grid: each parameter's points (hand-computed), the trials as a cartesian product
(``itertools.product`` as the oracle), a `when` subspace multiplying only its own value, and the
size counted without enumerating."""

import itertools

import pytest

from core.studies.grid import enumerate_grid, grid_points, grid_size
from core.studies.space import FloatParam, IntParam, parse_space


@pytest.mark.parametrize("param, points", [
    ({"type": "float", "low": 0.0, "high": 1.0, "points": 5}, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ({"type": "float", "low": 1e-4, "high": 1.0, "log": True, "points": 5}, [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    ({"type": "float", "low": 1e-5, "high": 1.0, "log": True, "points": 2}, [1e-5, 1.0]),
    ({"type": "int", "low": 1, "high": 4}, [1, 2, 3, 4]),
    ({"type": "int", "low": 16, "high": 64, "step": 16}, [16, 32, 48, 64]),
    ({"type": "int", "low": 0, "high": 10, "points": 3}, [0, 5, 10]),
    ({"type": "int", "low": 1, "high": 1000, "log": True, "points": 4}, [1, 10, 100, 1000]),
    ({"type": "int", "low": 1, "high": 3, "points": 9}, [1, 2, 3]),  # repeats after rounding dropped
    ({"type": "int", "low": 0, "high": 12, "step": 4, "points": 3}, [0, 8, 12]),  # 6 rounds to the step: 8
])
def test_grid_points(param, points):
    model = FloatParam(**param) if param["type"] == "float" else IntParam(**param)
    got = grid_points(model)
    assert got == pytest.approx(points, rel=1e-12)
    assert (got[0], got[-1]) == (points[0], points[-1])  # endpoints exact


def test_a_flat_grid_is_the_cartesian_product_in_space_order():
    space = parse_space({
        "architecture.width": {"type": "int", "low": 32, "high": 96, "step": 32},
        "architecture.activation": {"type": "categorical", "values": ["relu", "tanh"]},
        "solver.base_lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True, "points": 3},
    })
    expected = [{"architecture.width": w, "architecture.activation": a, "solver.base_lr": lr}
                for w, a, lr in itertools.product([32, 64, 96], ["relu", "tanh"], [0.01, 0.1, 1.0])]
    got = enumerate_grid(space)
    assert [list(g) for g in got] == [list(e) for e in expected]
    assert [(g["architecture.width"], g["architecture.activation"]) for g in got] == \
        [(e["architecture.width"], e["architecture.activation"]) for e in expected]
    assert [g["solver.base_lr"] for g in got] == pytest.approx([e["solver.base_lr"] for e in expected])
    assert grid_size(space) == 18


CONDITIONAL = {
    "solver.name": {"type": "categorical", "values": ["adam", "sgd", "lion"], "when": {
        "adam": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "points": 3}},
        "sgd": {"solver.base_lr": {"type": "float", "low": 1e-2, "high": 1.0, "log": True, "points": 2},
                "solver.nesterov": {"type": "categorical", "values": [False, True]}},
    }},
    "training.batch_size": {"type": "int", "low": 32, "high": 64, "step": 32},
}


def test_a_when_subspace_multiplies_only_its_own_value():
    got = enumerate_grid(parse_space(CONDITIONAL))
    # adam 3 rates + sgd 2 rates x 2 nesterov + lion alone = 8 solver settings, x 2 batch sizes
    assert len(got) == grid_size(parse_space(CONDITIONAL)) == 16
    adam = [g for g in got if g["solver.name"] == "adam"]
    sgd = [g for g in got if g["solver.name"] == "sgd"]
    lion = [g for g in got if g["solver.name"] == "lion"]
    assert (len(adam), len(sgd), len(lion)) == (6, 8, 2)
    assert all(set(g) == {"solver.name", "solver.base_lr", "training.batch_size"} for g in adam)
    assert all(set(g) == {"solver.name", "solver.base_lr", "solver.nesterov", "training.batch_size"} for g in sgd)
    assert all(set(g) == {"solver.name", "training.batch_size"} for g in lion)
    assert sorted(g["solver.base_lr"] for g in sgd) == pytest.approx([0.01] * 4 + [1.0] * 4)
    assert len({tuple(sorted(g.items())) for g in got}) == 16  # no trial twice
    assert got == enumerate_grid(parse_space(CONDITIONAL))  # deterministic
    assert got[0] == {"solver.name": "adam", "solver.base_lr": 1e-4, "training.batch_size": 32}


@pytest.mark.parametrize("space, size", [
    ({"a": {"type": "int", "low": 1, "high": 1_000_000_000}}, 1_000_000_000),
    ({"a": {"type": "categorical", "values": ["x", "y"],
            "when": {"x": {"b": {"type": "categorical", "values": [1, 2, 3],
                                 "when": {"1": {"c": {"type": "int", "low": 0, "high": 4}}}}}}}}, 1 * (5 + 2) + 1),
])
def test_grid_size_counts_without_enumerating(space, size):
    assert grid_size(parse_space(space)) == size
