"""The race's 2-D test functions in torch (their names, starts, bounds and minima are
``core.lab.functions``): each formula written once as ``f(x, y)`` on tensors, elementwise, so the
same code gives a scalar loss whose gradient autograd takes and a whole grid for the contour plot.

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


def rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 − x)² + 100 (y − x²)²."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def himmelblau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² + y − 11)² + (x + y² − 7)²."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def booth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x + 2y − 7)² + (2x + y − 5)²."""
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def saddle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x² − y²."""
    return x**2 - y**2


def ill_conditioned(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² + 100 y²) / 2: Hessian diag(1, 100), condition number 100."""
    return (x**2 + 100 * y**2) / 2


def rastrigin(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """20 + x² − 10 cos 2πx + y² − 10 cos 2πy (A = 10, n = 2)."""
    return 20 + x**2 - 10 * torch.cos(2 * math.pi * x) + y**2 - 10 * torch.cos(2 * math.pi * y)


def quadratic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x² − 4x + 3) + (y² − 4y + 3): the one-dimensional parabola in each coordinate."""
    return (x**2 - 4 * x + 3) + (y**2 - 4 * y + 3)


FORMULAS: dict[str, Formula] = {f.__name__: f for f in (
    rosenbrock, beale, himmelblau, booth, saddle, ill_conditioned, rastrigin, quadratic,
)}
if set(FORMULAS) != set(FUNCTIONS):  # pragma: no cover - a catalogue entry without its formula, or the reverse
    raise RuntimeError(f"formulas {sorted(FORMULAS)} do not match the catalogue {sorted(FUNCTIONS)}")


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
