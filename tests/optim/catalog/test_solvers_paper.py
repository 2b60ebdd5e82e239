"""The paper solvers' catalog entries: which they are, their flags, the class each names, every
numeric field bounded, and Lookahead over each base.  Defaults and bounds against the
constructors are in test_solver_constructors.py."""

import pytest
import torch

import optim
from optim import Lookahead, catalog
from optim.catalog.solvers_paper import ENTRIES, LOOKAHEAD_BASES
from optim.factory import build_optimizer
from tests.optim.catalog.constructors import bound_cases, params

EXPECTED = {  # name: (family, needs_closure, wraps)
    "lion": ("sign", False, False),
    "adabound": ("adaptive", False, False),
    "adaboundw": ("adaptive", False, False),
    "lamb": ("layerwise", False, False),
    "lars": ("layerwise", False, False),
    "lookahead": ("wrapper", False, True),
    "randomsearch": ("zeroth_order", True, False),
}


# written out, not derived from the names: the classes the service builds, from the optim package
CLASS_PATHS = {
    "lion": "optim.Lion", "adabound": "optim.AdaBound", "adaboundw": "optim.AdaBoundW", "lamb": "optim.LAMB",
    "lars": "optim.LARS", "lookahead": "optim.Lookahead", "randomsearch": "optim.RandomSearch",
}


def test_entries_are_the_paper_solvers():
    assert {e.name: (e.family, e.needs_closure, e.wraps) for e in ENTRIES} == EXPECTED
    for entry in ENTRIES:
        assert catalog.solver(entry.name) is entry
        assert entry.class_path == CLASS_PATHS[entry.name]
        cls = catalog.load_class(entry)
        assert cls is getattr(optim, CLASS_PATHS[entry.name].removeprefix("optim."))
        assert issubclass(cls, torch.optim.Optimizer)


def test_every_numeric_hyperparameter_is_bounded():
    bounded = {(c.values[0].name, c.values[1].name) for c in bound_cases(ENTRIES)}
    numeric = {(e.name, h.name) for e in ENTRIES for h in e.hyperparameters if h.type in ("float", "float_tuple", "int")}
    assert numeric == bounded


def test_random_search_seed_may_be_null():
    entry = catalog.solver("randomsearch")
    assert entry.validate_params({"seed": None})["seed"] is None
    build_optimizer(params(), "randomsearch", {"seed": None})


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
