"""The race's test functions: the closed-form value and gradient the race steps on against the
torch formula and autograd's gradient of it (at points across the plot, and past overflow, where
both give ∞ or NaN rather than raise), the catalogue's minima against the formulas (the value
listed, a zero gradient, a positive definite Hessian), the saddle's saddle, and the contour grid's
orientation."""

import math

import pytest
import torch

from core.lab.functions import FUNCTIONS
from worker.lab.functions import FORMULAS, VALUE_AND_GRAD, grid, value_at


def closed_form_gradient(name: str, x: float, y: float) -> tuple[float, float]:
    _, fx, fy = VALUE_AND_GRAD[name](x, y)
    return fx, fy


def autograd_gradient(name: str, x: float, y: float) -> torch.Tensor:
    point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    value_at(name, point).backward()
    return point.grad


def hessian(name: str, x: float, y: float) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda p: value_at(name, p), torch.tensor([x, y], dtype=torch.float64))


def test_every_catalogued_function_has_its_formula_and_closed_form():
    assert set(FORMULAS) == set(VALUE_AND_GRAD) == set(FUNCTIONS)


def points_across(name: str, n: int = 200) -> list[tuple[float, float]]:
    """``n`` random points over the function's plot, twice its extent each way (a racer wanders)."""
    x_min, x_max, y_min, y_max = FUNCTIONS[name].bounds
    u = torch.rand(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4 - 1.5
    return [(x_min + a * (x_max - x_min), y_min + b * (y_max - y_min)) for a, b in u.tolist()]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_closed_form_value_and_gradient_equal_the_formula_and_autograd(name):
    for x, y in points_across(name):
        value, fx, fy = VALUE_AND_GRAD[name](x, y)
        point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
        expected = value_at(name, point)
        expected.backward()
        torch.testing.assert_close(torch.tensor(value, dtype=torch.float64), expected.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(torch.tensor([fx, fy], dtype=torch.float64), point.grad, rtol=1e-12, atol=1e-9)


OVERFLOWING = [(1e200, 1e200), (-1e200, 3.0), (math.inf, 0.5), (0.5, -math.inf), (math.nan, 1.0)]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize(("x", "y"), OVERFLOWING)
def test_past_overflow_the_closed_form_is_the_formulas_and_nothing_raises(name, x, y):
    """Both overflow alike: the same value, and each gradient coordinate equal to autograd's or,
    like it, not finite (the order of the operations decides between ∞ and NaN)."""
    value, fx, fy = VALUE_AND_GRAD[name](x, y)
    point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    expected = value_at(name, point)
    expected.backward()
    assert value == expected.item() or (math.isnan(value) and math.isnan(expected.item()))
    for ours, autograd in zip((fx, fy), point.grad.tolist(), strict=True):
        assert ours == autograd or not (math.isfinite(ours) or math.isfinite(autograd))


MINIMA = [(name, m) for name, f in sorted(FUNCTIONS.items()) for m in f.minima]


@pytest.mark.parametrize(("name", "minimum"), MINIMA, ids=[f"{n}-{m.x}-{m.y}" for n, m in MINIMA])
def test_each_known_minimum_is_one(name, minimum):
    point = torch.tensor([minimum.x, minimum.y], dtype=torch.float64)
    # Himmelblau's irrational minima are listed to six decimals
    assert float(value_at(name, point)) == pytest.approx(minimum.value, abs=1e-9)
    assert max(abs(g) for g in closed_form_gradient(name, minimum.x, minimum.y)) < 1e-4
    assert bool((torch.linalg.eigvalsh(hessian(name, minimum.x, minimum.y)) > 0).all())


@pytest.mark.parametrize("name", sorted(n for n, f in FUNCTIONS.items() if f.global_minima))
def test_no_grid_point_is_below_the_global_minimum(name):
    lowest = min(m.value for m in FUNCTIONS[name].minima)
    assert min(min(row) for row in grid(name, 121)["values"]) >= lowest - 1e-12


def test_the_saddle_is_a_stationary_point_with_an_indefinite_hessian():
    (x, y), = FUNCTIONS["saddle"].saddles
    assert closed_form_gradient("saddle", x, y) == (0.0, 0.0)
    low, high = torch.linalg.eigvalsh(hessian("saddle", x, y)).tolist()
    assert low < 0 < high


def test_the_grid_spans_the_bounds_row_by_y():
    name = "beale"
    g = grid(name, 7)
    x_min, x_max, y_min, y_max = FUNCTIONS[name].bounds
    assert (g["xs"][0], g["xs"][-1], g["ys"][0], g["ys"][-1]) == (x_min, x_max, y_min, y_max)
    x, y = g["xs"][2], g["ys"][5]
    assert g["values"][5][2] == float(value_at(name, torch.tensor([x, y], dtype=torch.float64)))
