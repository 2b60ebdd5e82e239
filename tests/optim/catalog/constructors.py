"""How the catalog's solver entries are held to their constructors: one row per catalog module
(what its entries leave out, how a constructor is called, what message a rejected tuple
element gets), and the bound cases: each bound of each numeric field (each position of a tuple)
with the value just inside and the value just outside it."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from optim import Lookahead, catalog
from optim.catalog import solvers_adam, solvers_classic, solvers_paper, solvers_second_order
from optim.factory import build_optimizer

# Lookahead's entry names the base solver and the hyperparameters the factory hands to it
HANDED_TO_BASE = {"base", "lr", "weight_decay"}


def params():
    return [torch.zeros(2, requires_grad=True)]


def model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def build(entry, **values):
    """The entry's class over two zeros (over a small model's parameters, with the model where
    the solver needs it, for the second-order solvers)."""
    cls = catalog.load_class(entry)
    if entry.family != "second_order":
        return cls(params(), **values)
    net = model()
    return cls(net.parameters(), **({"model": net} if entry.needs_model else {}), **values)


def constructors(entry, name):
    """Constructors that must accept or reject a value of hyperparameter ``name``, as callables:
    Lookahead hands lr and weight_decay to each base it can wrap."""
    if entry.name == "lookahead":
        if name in HANDED_TO_BASE:
            return [
                lambda value, base=base: catalog.load_class(catalog.solver(base))(params(), **{name: value})
                for base in solvers_paper.LOOKAHEAD_BASES
            ]
        return [lambda value: Lookahead(torch.optim.SGD(params(), lr=0.1), **{name: value})]
    return [lambda value: build(entry, **{name: value})]


def constructor_parameters(entry):
    return inspect.signature(catalog.load_class(entry).__init__).parameters


@dataclass(frozen=True)
class Module:
    entries: list
    not_in_catalog: set  # constructor arguments the service never sets, so the catalog leaves out
    accepts_defaults: Callable  # entry -> builds it from what the catalog fills in
    rejected_message: Callable = lambda h, pos: h.name  # what a refused value's error names
    unbounded_types: tuple = ()  # field types whose lack of a maximum is checked with a large value


def _build_defaults(entry):
    build(entry, **entry.defaults())


def _build_defaults_and_validated(entry):
    build(entry, **entry.defaults())
    build(entry, **entry.validate_params({}))  # and so is what validation fills in


TORCH_OPTIONS = {"self", "params", "foreach", "maximize", "capturable", "differentiable", "fused"}
MODULES = [
    Module(solvers_adam.ENTRIES, TORCH_OPTIONS, _build_defaults, unbounded_types=("float",)),
    Module(solvers_classic.ENTRIES, TORCH_OPTIONS, _build_defaults_and_validated, unbounded_types=("float",)),
    Module(
        solvers_paper.ENTRIES, {"self", "params", "foreach", "fused", "maximize", "base_optimizer"},
        lambda entry: build_optimizer(params(), entry.name, {}),
        lambda h, pos: f"beta parameter at index {pos}" if h.name == "betas" else h.name,
        unbounded_types=("float", "int"),
    ),
    # the engine passes the model itself, never sets foreach, and enforces max_params from the
    # entry's own field before building the solver
    Module(
        solvers_second_order.ENTRIES, {"self", "params", "model", "foreach", "max_params"}, _build_defaults,
        lambda h, pos: "beta" if h.type == "float_tuple" else h.name,
    ),
]


def bound_cases(entries) -> list:
    """pytest.params (entry, h, side, bound, exclusive, pos) for every bound in ``entries``."""
    cases = []
    for entry in entries:
        for h in entry.hyperparameters:
            positions = range(h.length) if h.type == "float_tuple" else [None]
            for side, bound, exclusive in (
                ("minimum", h.minimum, h.exclusive_minimum),
                ("maximum", h.maximum, h.exclusive_maximum),
            ):
                if bound is None:
                    continue
                for pos in positions:
                    where = h.name if pos is None else f"{h.name}[{pos}]"
                    cases.append(pytest.param(entry, h, side, bound, exclusive, pos, id=f"{entry.name}-{where}-{side}"))
    return cases


def inside_and_outside(h, side, bound, exclusive):
    """The values just inside and just outside a bound: the next integer for an int field, the
    next float (math.nextafter) for a float."""
    outward = -1 if side == "minimum" else 1
    if h.type == "int":
        return (int(bound) - outward, int(bound)) if exclusive else (int(bound), int(bound) + outward)
    step = math.inf * outward
    inside = math.nextafter(bound, -step) if exclusive else float(bound)
    outside = float(bound) if exclusive else math.nextafter(bound, step)
    return inside, outside


def with_value(h, pos, value):
    """``value`` for the field, or the field's default tuple with ``value`` at ``pos``."""
    if pos is None:
        return value
    items = list(h.default)
    items[pos] = value
    return tuple(items)
