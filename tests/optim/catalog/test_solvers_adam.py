"""The Adam family's catalog entries agree with the constructors: same defaults, and every bound
is exactly where the constructor starts (or stops) raising."""

import inspect
import math

import pytest
import torch

from optim import catalog
from optim.catalog.solvers_adam import ENTRIES

# constructor arguments the service never sets, so the catalog leaves them out
NOT_IN_CATALOG = {"self", "params", "foreach", "maximize", "capturable", "differentiable", "fused"}
ENTRY_IDS = [e.name for e in ENTRIES]


def _constructor(entry):
    return inspect.signature(catalog.load_class(entry).__init__).parameters


def _build(entry, **values):
    return catalog.load_class(entry)([torch.zeros(2, requires_grad=True)], **values)


def test_entries_are_the_adam_family():
    assert ENTRY_IDS == ["adam", "adamw", "adamax", "nadam", "radam"]
    for entry in ENTRIES:
        assert entry.family == "adaptive"
        assert catalog.solver(entry.name) is entry
        assert catalog.load_class(entry).__name__.lower() == entry.name
        assert entry.class_path == f"optim.{catalog.load_class(entry).__name__}"


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_defaults_and_names_match_the_constructor(entry):
    ctor = _constructor(entry)
    assert {h.name for h in entry.hyperparameters} == set(ctor) - NOT_IN_CATALOG
    for h in entry.hyperparameters:
        assert h.default == ctor[h.name].default, h.name
    _build(entry, **entry.defaults())  # the defaults themselves are accepted


def _bound_cases():
    for entry in ENTRIES:
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
                    yield pytest.param(entry, h, side, bound, exclusive, pos, id=f"{entry.name}-{where}-{side}")


def _with_value(h, pos, value):
    if pos is None:
        return value
    items = list(h.default)
    items[pos] = value
    return tuple(items)


@pytest.mark.parametrize("entry, h, side, bound, exclusive, pos", list(_bound_cases()))
def test_bound_is_where_the_constructor_starts_rejecting(entry, h, side, bound, exclusive, pos):
    outward = -math.inf if side == "minimum" else math.inf
    inside = math.nextafter(bound, -outward) if exclusive else float(bound)
    outside = float(bound) if exclusive else math.nextafter(bound, outward)

    accepted = _with_value(h, pos, inside)
    assert entry.validate_params({h.name: accepted})[h.name] == accepted
    _build(entry, **{h.name: accepted})

    rejected = _with_value(h, pos, outside)
    with pytest.raises(ValueError, match=h.name):
        entry.validate_params({h.name: rejected})
    with pytest.raises(ValueError, match=h.name):
        _build(entry, **{h.name: rejected})


@pytest.mark.parametrize(
    "entry, name",
    [pytest.param(e, h.name, id=f"{e.name}-{h.name}") for e in ENTRIES for h in e.hyperparameters
     if h.type == "float" and h.maximum is None],
)
def test_unbounded_above_means_the_constructor_accepts_large_values(entry, name):
    entry.validate_params({name: 1e6})
    _build(entry, **{name: 1e6})
