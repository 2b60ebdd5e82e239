"""The race's test functions in torch: autograd's gradient against the gradient derived by hand
from each formula, the catalogue's minima against the formulas (the value listed, a zero gradient,
a positive definite Hessian), the saddle's saddle, and the contour grid's orientation."""

import math

import pytest
import torch

from core.lab.functions import FUNCTIONS
from worker.lab.functions import FORMULAS, grid, value_at

PI = math.pi


def closed_form_gradient(name: str, x: float, y: float) -> tuple[float, float]:
    """∂f/∂x and ∂f/∂y, differentiated by hand."""
    if name == "rosenbrock":
        return -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)
    if name == "beale":
        a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
        return (2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1),
                2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2)
    if name == "himmelblau":
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * x * a + 2 * b, 2 * a + 4 * y * b
    if name == "booth":
        a, b = x + 2 * y - 7, 2 * x + y - 5
        return 2 * a + 4 * b, 4 * a + 2 * b
    if name == "saddle":
        return 2 * x, -2 * y
    if name == "ill_conditioned":
        return x, 100 * y
    if name == "rastrigin":
        return 2 * x + 20 * PI * math.sin(2 * PI * x), 2 * y + 20 * PI * math.sin(2 * PI * y)
    if name == "quadratic":
        return 2 * x - 4, 2 * y - 4
    raise AssertionError(f"no closed form for {name}")


def autograd_gradient(name: str, x: float, y: float) -> torch.Tensor:
    point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    value_at(name, point).backward()
    return point.grad


def hessian(name: str, x: float, y: float) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda p: value_at(name, p), torch.tensor([x, y], dtype=torch.float64))


def test_every_catalogued_function_has_its_formula():
    assert set(FORMULAS) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_autograd_gradient_equals_the_closed_form(name):
    x_min, x_max, y_min, y_max = FUNCTIONS[name].bounds
    points = torch.rand(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for u, v in points.tolist():
        x, y = x_min + u * (x_max - x_min), y_min + v * (y_max - y_min)
        expected = torch.tensor(closed_form_gradient(name, x, y), dtype=torch.float64)
        torch.testing.assert_close(autograd_gradient(name, x, y), expected, rtol=1e-12, atol=1e-9)


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
