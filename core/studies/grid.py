"""The grid strategy: every combination of every parameter's grid points, once.

A float's grid is ``points`` values from low to high, evenly spaced or, with ``log``, evenly in
log(value) (``numpy.geomspace``), the endpoints exactly low and high.  An int's is every
``step`` from low to high, or with ``points`` that many values rounded to the step (repeats
dropped).  A categorical's is its values, each followed by the grid of its ``when`` subspace:
a subspace multiplies only the trials that pick its value.  At each level the grids combine as a
cartesian product (``itertools.product``) in the space's order, so the list is deterministic."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from core.studies.space import CategoricalParam, FloatParam, IntParam, Param, Space


def grid_points(param: FloatParam | IntParam, path: str = "") -> list[Any]:
    """The grid values of a numeric parameter, ascending; ``ValueError`` naming ``path`` for a
    float without ``points``."""
    if isinstance(param, FloatParam):
        if param.points is None:
            raise ValueError(f"{path or 'a float parameter'}: the grid strategy needs `points`")
        spaced = np.geomspace if param.log else np.linspace
        values = [float(v) for v in spaced(param.low, param.high, param.points)]
        values[0], values[-1] = param.low, param.high
        return values
    if param.points is None:
        return list(range(param.low, param.high + 1, param.step))
    spaced = np.geomspace if param.log else np.linspace
    raw = spaced(param.low, param.high, param.points)
    snapped = (param.low + param.step * round((v - param.low) / param.step) for v in raw)
    return sorted({int(min(max(v, param.low), param.high)) for v in snapped})


def _options(path: str, param: Param) -> list[dict[str, Any]]:
    """The partial trials one parameter contributes: its value, plus its subspace's grid."""
    if not isinstance(param, CategoricalParam):
        return [{path: v} for v in grid_points(param, path)]
    return [{path: value, **sub} for value in param.values for sub in enumerate_grid(param.subspace(value))]


def enumerate_grid(space: Space) -> list[dict[str, Any]]:
    """Every trial of a grid over ``space``, as {path: value}, in a deterministic order (an
    empty space has one trial: no parameters)."""
    per_param = [_options(path, param) for path, param in space.items()]
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*per_param)]


def _count(path: str, param: Param) -> int:
    if isinstance(param, IntParam) and param.points is None:
        return (param.high - param.low) // param.step + 1
    if not isinstance(param, CategoricalParam):
        return len(grid_points(param, path))
    return sum(grid_size(param.subspace(value)) for value in param.values)


def grid_size(space: Space) -> int:
    """``len(enumerate_grid(space))``, without enumerating."""
    return math.prod(_count(path, param) for path, param in space.items())
