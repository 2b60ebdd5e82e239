"""The race's 2-D test functions in torch (their names, starts, bounds and minima are
``core.lab.functions``): each formula written once as ``f(x, y)`` on tensors, elementwise, so the
same code gives a scalar loss whose gradient autograd takes and a whole grid for the contour plot.
Beside each, its value and gradient in closed form on Python floats (``VALUE_AND_GRAD``), what a
race steps on: two coordinates through autograd cost about half of a race's step, the closed form
a microsecond.  They square by multiplying (a float's ``**`` raises on overflow where a tensor's
gives ∞), so a diverging racer's objective overflows to ∞ or NaN as the tensor formula's does.

References: Rosenbrock, "An automatic method for finding the greatest or least value of a function",
Comput. J. 3 (1960); Beale (1958); Himmelblau, *Applied Nonlinear Programming* (1972); Rastrigin
(1974); Jamil & Yang, "A literature survey of benchmark functions for global optimization
problems" (2013)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from core.lab.functions import FUNCTIONS

Formula = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (x, y) -> (f, ∂f/∂x, ∂f/∂y), on floats
ValueAndGrad = Callable[[float, float], tuple[float, float, float]]


def rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 − x)² + 100 (y − x²)²."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """With r = y − x²: ∂f/∂x = −2 (1 − x) − 400 x r, ∂f/∂y = 200 r."""
    r, s = y - x * x, 1 - x
    return s * s + 100 * r * r, -2 * s - 400 * x * r, 200 * r


def beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def beale_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """With a, b, c the three terms' insides (1.5 − x + xy, 2.25 − x + xy², 2.625 − x + xy³):
    ∂f/∂x = 2a (y − 1) + 2b (y² − 1) + 2c (y³ − 1), ∂f/∂y = 2a x + 4b xy + 6c xy²."""
    y2 = y * y
    y3 = y2 * y
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y3
    return (a * a + b * b + c * c, 2 * (a * (y - 1) + b * (y2 - 1) + c * (y3 - 1)),
            2 * x * (a + 2 * b * y + 3 * c * y2))


def himmelblau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² + y − 11)² + (x + y² − 7)²."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def himmelblau_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """With a = x² + y − 11, b = x + y² − 7: ∂f/∂x = 4x a + 2b, ∂f/∂y = 2a + 4y b."""
    a, b = x * x + y - 11, x + y * y - 7
    return a * a + b * b, 4 * x * a + 2 * b, 2 * a + 4 * y * b


def booth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x + 2y − 7)² + (2x + y − 5)²."""
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def booth_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """With a = x + 2y − 7, b = 2x + y − 5: ∂f/∂x = 2a + 4b, ∂f/∂y = 4a + 2b."""
    a, b = x + 2 * y - 7, 2 * x + y - 5
    return a * a + b * b, 2 * a + 4 * b, 4 * a + 2 * b


def saddle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x² − y²."""
    return x**2 - y**2


def saddle_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """∂f/∂x = 2x, ∂f/∂y = −2y."""
    return x * x - y * y, 2 * x, -2 * y


def ill_conditioned(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² + 100 y²) / 2: Hessian diag(1, 100), condition number 100."""
    return (x**2 + 100 * y**2) / 2


def ill_conditioned_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """∂f/∂x = x, ∂f/∂y = 100 y."""
    return (x * x + 100 * y * y) / 2, x, 100 * y


def rastrigin(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """20 + x² − 10 cos 2πx + y² − 10 cos 2πy (A = 10, n = 2)."""
    return 20 + x**2 - 10 * torch.cos(2 * math.pi * x) + y**2 - 10 * torch.cos(2 * math.pi * y)


def rastrigin_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """∂f/∂x = 2x + 20π sin 2πx, ∂f/∂y = 2y + 20π sin 2πy."""
    u, v = 2 * math.pi * x, 2 * math.pi * y
    return (20 + x * x - 10 * _cos(u) + y * y - 10 * _cos(v),
            2 * x + 20 * math.pi * _sin(u), 2 * y + 20 * math.pi * _sin(v))


def _cos(u: float) -> float:
    """cos u, NaN at ±∞ as torch's (``math.cos`` raises there)."""
    return math.cos(u) if math.isfinite(u) else math.nan


def _sin(u: float) -> float:
    """sin u, NaN at ±∞ as torch's (``math.sin`` raises there)."""
    return math.sin(u) if math.isfinite(u) else math.nan


def quadratic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² − 4x + 3) + (y² − 4y + 3): the one-dimensional parabola in each coordinate."""
    return (x**2 - 4 * x + 3) + (y**2 - 4 * y + 3)


def quadratic_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
    """∂f/∂x = 2x − 4, ∂f/∂y = 2y − 4."""
    return (x * x - 4 * x + 3) + (y * y - 4 * y + 3), 2 * x - 4, 2 * y - 4


FORMULAS: dict[str, Formula] = {f.__name__: f for f in (
    rosenbrock, beale, himmelblau, booth, saddle, ill_conditioned, rastrigin, quadratic,
)}
VALUE_AND_GRAD: dict[str, ValueAndGrad] = {f.__name__.removesuffix("_value_and_grad"): f for f in (
    rosenbrock_value_and_grad, beale_value_and_grad, himmelblau_value_and_grad, booth_value_and_grad,
    saddle_value_and_grad, ill_conditioned_value_and_grad, rastrigin_value_and_grad, quadratic_value_and_grad,
)}
if not set(FORMULAS) == set(VALUE_AND_GRAD) == set(FUNCTIONS):  # pragma: no cover - an entry without its formulas
    raise RuntimeError(f"formulas {sorted(FORMULAS)} and closed-form gradients {sorted(VALUE_AND_GRAD)} do not "
                       f"match the catalogue {sorted(FUNCTIONS)}")


def value_at(name: str, point: torch.Tensor) -> torch.Tensor:
    """The function ``name`` at ``point`` (a tensor of two coordinates): a scalar tensor."""
    return FORMULAS[name](point[0], point[1])


def grid(name: str, points: int, dtype: torch.dtype = torch.float64) -> dict[str, list]:
    """The function on a ``points`` × ``points`` grid over its plotting bounds: ``xs``, ``ys`` (the
    axes) and ``values`` (row ``j`` at ``ys[j]``, column ``i`` at ``xs[i]``)."""
    x_min, x_max, y_min, y_max = FUNCTIONS[name].bounds
    xs = torch.linspace(x_min, x_max, points, dtype=dtype)
    ys = torch.linspace(y_min, y_max, points, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    values = FORMULAS[name](xx, yy)
    return {"xs": xs.tolist(), "ys": ys.tolist(), "values": values.tolist()}
