"""The paper solvers' catalog entries agree with the constructors: same names and defaults, every
bound exactly where the constructor starts (or stops) raising, and Lookahead builds over each base."""

import inspect
import math

import pytest
import torch

from optim import Lookahead, catalog
from optim.catalog.solvers_paper import ENTRIES, LOOKAHEAD_BASES
from optim.factory import build_optimizer

# constructor arguments the service never sets, so the catalog leaves them out
NOT_IN_CATALOG = {"self", "params", "foreach", "maximize", "base_optimizer"}
# Lookahead's entry names the base solver and the hyperparameters the factory hands to it
HANDED_TO_BASE = {"base", "lr", "weight_decay"}
ENTRY_IDS = [e.name for e in ENTRIES]

EXPECTED = {  # name: (family, needs_closure, wraps)
    "lion": ("sign", False, False),
    "adabound": ("adaptive", False, False),
    "adaboundw": ("adaptive", False, False),
    "lamb": ("layerwise", False, False),
    "lars": ("layerwise", False, False),
    "lookahead": ("wrapper", False, True),
    "randomsearch": ("zeroth_order", True, False),
}


def _params():
    return [torch.zeros(2, requires_grad=True)]


def _constructors(entry, name):
    """Constructors that must accept or reject a value of hyperparameter ``name``, as callables."""
    if entry.name == "lookahead":
        if name in HANDED_TO_BASE:
            return [
                lambda value, base=base: catalog.load_class(catalog.solver(base))(_params(), **{name: value})
                for base in LOOKAHEAD_BASES
            ]
        return [lambda value: Lookahead(torch.optim.SGD(_params(), lr=0.1), **{name: value})]
    return [lambda value: catalog.load_class(entry)(_params(), **{name: value})]


def test_entries_are_the_paper_solvers():
    assert {e.name: (e.family, e.needs_closure, e.wraps) for e in ENTRIES} == EXPECTED
    for entry in ENTRIES:
        assert catalog.solver(entry.name) is entry
        cls = catalog.load_class(entry)
        assert cls.__name__.lower() == entry.name
        assert entry.class_path == f"optim.{cls.__name__}"
        assert issubclass(cls, torch.optim.Optimizer)


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_defaults_and_names_match_the_constructor(entry):
    ctor = inspect.signature(catalog.load_class(entry).__init__).parameters
    own = {h.name for h in entry.hyperparameters} - (HANDED_TO_BASE if entry.wraps else set())
    assert own == set(ctor) - NOT_IN_CATALOG
    for name in own:
        assert entry.hyperparameter(name).default == ctor[name].default, name
    build_optimizer(_params(), entry.name, {})  # the defaults themselves are accepted


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


BOUND_CASES = list(_bound_cases())


def test_every_numeric_hyperparameter_is_bounded():
    bounded = {(c.values[0].name, c.values[1].name) for c in BOUND_CASES}
    numeric = {(e.name, h.name) for e in ENTRIES for h in e.hyperparameters if h.type in ("float", "float_tuple", "int")}
    assert numeric == bounded


def _with_value(h, pos, value):
    if pos is None:
        return value
    items = list(h.default)
    items[pos] = value
    return tuple(items)


@pytest.mark.parametrize("entry, h, side, bound, exclusive, pos", BOUND_CASES)
def test_bound_is_where_the_constructor_starts_rejecting(entry, h, side, bound, exclusive, pos):
    outward = -math.inf if side == "minimum" else math.inf
    if h.type == "int":
        step = -1 if side == "minimum" else 1
        inside, outside = (int(bound) - step, int(bound)) if exclusive else (int(bound), int(bound) + step)
    else:
        inside = math.nextafter(bound, -outward) if exclusive else float(bound)
        outside = float(bound) if exclusive else math.nextafter(bound, outward)

    accepted = _with_value(h, pos, inside)
    assert entry.validate_params({h.name: accepted})[h.name] == accepted
    rejected = _with_value(h, pos, outside)
    with pytest.raises(ValueError, match=h.name):
        entry.validate_params({h.name: rejected})
    for construct in _constructors(entry, h.name):
        construct(accepted)
        with pytest.raises(ValueError, match=f"beta parameter at index {pos}" if h.name == "betas" else h.name):
            construct(rejected)


@pytest.mark.parametrize(
    "entry, name",
    [pytest.param(e, h.name, id=f"{e.name}-{h.name}") for e in ENTRIES for h in e.hyperparameters
     if h.type in ("float", "int") and h.maximum is None],
)
def test_unbounded_above_means_the_constructor_accepts_large_values(entry, name):
    value = 10**6 if entry.hyperparameter(name).type == "int" else 1e6
    entry.validate_params({name: value})
    for construct in _constructors(entry, name):
        construct(value)


def test_random_search_seed_may_be_null():
    entry = catalog.solver("randomsearch")
    assert entry.validate_params({"seed": None})["seed"] is None
    build_optimizer(_params(), "randomsearch", {"seed": None})


@pytest.mark.parametrize("base", LOOKAHEAD_BASES)
def test_lookahead_builds_over_each_base_and_hands_it_lr_and_weight_decay(base):
    base_entry = catalog.solver(base)
    assert not base_entry.wraps and not base_entry.needs_closure
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = build_optimizer([w], "lookahead", {"base": base, "lr": 0.05, "weight_decay": 1e-3, "k": 2, "alpha": 0.3})
    assert isinstance(opt, Lookahead) and (opt.k, opt.alpha) == (2, 0.3)
    assert type(opt.base_optimizer) is catalog.load_class(base_entry)
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]) == (0.05, 1e-3)
    before = (w**2).sum().item()
    for _ in range(4):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    assert (w**2).sum().item() < before


def test_lookahead_rejects_an_unknown_base():
    with pytest.raises(ValueError, match="base"):
        catalog.solver("lookahead").validate_params({"base": "lookahead"})
