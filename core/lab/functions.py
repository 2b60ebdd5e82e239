"""The race's 2-D test functions as data: name, title, formula, default start, plotting bounds and
known minima.  The api validates a race against it, the dashboard draws it (``GET /races/functions``)
and the worker (``worker.lab.functions``, the formulas in torch) computes on it.

The functions and their minima are the standard ones of the optimization test-function
literature: Rosenbrock (1960), Beale (1958), Himmelblau (1972), Booth, Rastrigin (1974); see
Jamil & Yang, "A literature survey of benchmark functions for global optimization problems"
(2013), and Surjanovic & Bingham's Virtual Library of Simulation Experiments (sfu.ca/~ssurjano).
Himmelblau's three non-trivial minima are the roots of its gradient to six decimals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.choices import choice


@dataclass(frozen=True)
class Minimum:
    """A known minimum ``(x, y)`` and the function's value there."""

    x: float
    y: float
    value: float


@dataclass(frozen=True)
class TestFunction:
    """One 2-D test function.  ``bounds`` are ``(x_min, x_max, y_min, y_max)`` of its contour plot;
    ``minima`` its known minima (every global one; ``global_minima`` False when the list holds
    the local minima of a function without a global one, or is empty because it is unbounded
    below); ``saddles`` its known saddle points."""

    name: str
    title: str
    formula: str
    start: tuple[float, float]
    bounds: tuple[float, float, float, float]
    minima: tuple[Minimum, ...]
    global_minima: bool = True
    saddles: tuple[tuple[float, float], ...] = ()
    note: str = ""

    def public(self) -> dict[str, Any]:
        return asdict(self)


FUNCTIONS: dict[str, TestFunction] = {f.name: f for f in (
    TestFunction(
        "rosenbrock", "Rosenbrock", "(1 − x)² + 100 (y − x²)²", (-1.5, 2.0), (-2.0, 2.0, -1.0, 3.0),
        (Minimum(1.0, 1.0, 0.0),),
        note="A curved, flat-bottomed valley: finding it is easy, following it to (1, 1) is not.",
    ),
    TestFunction(
        "beale", "Beale", "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", (1.0, 1.5),
        (-4.5, 4.5, -4.5, 4.5), (Minimum(3.0, 0.5, 0.0),),
        note="Sharp ridges at the corners and a flat plateau; steps that are too large fly off.",
    ),
    TestFunction(
        "himmelblau", "Himmelblau", "(x² + y − 11)² + (x + y² − 7)²", (0.0, 0.0), (-5.0, 5.0, -5.0, 5.0),
        (Minimum(3.0, 2.0, 0.0), Minimum(-2.805118, 3.131312, 0.0), Minimum(-3.779310, -3.283186, 0.0),
         Minimum(3.584428, -1.848126, 0.0)),
        note="Four equal minima: which one a solver reaches depends on its path.",
    ),
    TestFunction(
        "booth", "Booth", "(x + 2y − 7)² + (2x + y − 5)²", (-8.0, -8.0), (-10.0, 10.0, -10.0, 10.0),
        (Minimum(1.0, 3.0, 0.0),),
        note="A convex quadratic bowl, mildly tilted: every solver should get there.",
    ),
    TestFunction(
        "saddle", "Saddle", "x² − y²", (-1.0, 0.001), (-2.0, 2.0, -2.0, 2.0), (), global_minima=False,
        saddles=((0.0, 0.0),),
        note="Unbounded below; started near the x-axis, a solver must escape the saddle at the origin.",
    ),
    TestFunction(
        "ill_conditioned", "Ill-conditioned quadratic", "(x² + 100 y²) / 2", (-9.0, 2.0),
        (-10.0, 10.0, -3.0, 3.0), (Minimum(0.0, 0.0, 0.0),),
        note="Condition number 100: plain gradient descent zig-zags across the narrow axis.",
    ),
    TestFunction(
        "rastrigin", "Rastrigin", "20 + x² − 10 cos 2πx + y² − 10 cos 2πy", (3.2, -2.6),
        (-5.12, 5.12, -5.12, 5.12), (Minimum(0.0, 0.0, 0.0),),
        note="A grid of local minima around the global one at the origin.",
    ),
    TestFunction(
        "quadratic", "x² − 4x + 3, in 2-D", "(x² − 4x + 3) + (y² − 4y + 3)", (-0.5, 4.5), (-1.0, 5.0, -1.0, 5.0),
        (Minimum(2.0, 2.0, -2.0),),
        note="SGD's worked example (optim.SGD's docstring) in each coordinate: minimum −2 at (2, 2).",
    ),
)}

FunctionName = choice("TestFunctionName", tuple(FUNCTIONS),
                      "A 2-D test function of the race (GET /races/functions lists them with their formulas).")


def function(name: str) -> TestFunction:
    """The entry for ``name``, or ``KeyError`` listing the known names."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise KeyError(f"unknown test function {name!r}; known: {sorted(FUNCTIONS)}") from None
