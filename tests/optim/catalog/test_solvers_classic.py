"""The classic solvers' catalog entries: which they are, the class each names, the numeric fields
left unbounded, and the cross-field constraints the constructors enforce.  Defaults and bounds
against the constructors are in test_solver_constructors.py."""

import math

import pytest
import torch

import optim
from optim import catalog
from optim.catalog.solvers_classic import ENTRIES
from tests.optim.catalog.constructors import bound_cases, build

# written out, not derived from the names: the classes the service builds, from the optim package
CLASS_PATHS = {
    "sgd": "optim.SGD", "adagrad": "optim.Adagrad", "adadelta": "optim.Adadelta", "asgd": "optim.ASGD",
    "rprop": "optim.Rprop", "rmsprop": "optim.RMSprop",
}


def test_entries_are_the_classic_solvers():
    assert [e.name for e in ENTRIES] == list(CLASS_PATHS)
    for entry in ENTRIES:
        assert entry.family in ("sgd", "adaptive")
        assert catalog.solver(entry.name) is entry
        assert entry.class_path == CLASS_PATHS[entry.name]
        cls = catalog.load_class(entry)
        assert cls is getattr(optim, CLASS_PATHS[entry.name].removeprefix("optim."))
        assert issubclass(cls, torch.optim.Optimizer) and cls.__name__ == getattr(torch.optim, cls.__name__).__name__


def test_every_numeric_hyperparameter_but_etas_is_bounded():
    bounded = {(c.values[0].name, c.values[1].name) for c in bound_cases(ENTRIES)}
    numeric = {
        (e.name, h.name) for e in ENTRIES for h in e.hyperparameters if h.type in ("float", "float_tuple")
    }
    assert numeric - bounded == {("rprop", "etas")}


# Constraints the schema's bounds cannot express; the descriptions state them and the
# constructor enforces them.
@pytest.mark.parametrize(
    "name, values, ok",
    [
        ("sgd", {"nesterov": True, "momentum": 0.9}, True),
        ("sgd", {"nesterov": True}, False),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, False),
        ("rprop", {"etas": (math.nextafter(0.0, 1.0), math.nextafter(1.0, 2.0))}, True),
        ("rprop", {"etas": (0.0, 1.2)}, False),
        ("rprop", {"etas": (1.0, 1.2)}, False),
        ("rprop", {"etas": (0.5, 1.0)}, False),
    ],
)
def test_cross_constraints_stated_in_descriptions_are_enforced_by_the_constructor(name, values, ok):
    entry = catalog.solver(name)
    checked = entry.validate_params(values)
    if ok:
        build(entry, **checked)
    else:
        first = next(iter(values))
        with pytest.raises(ValueError, match=first):
            build(entry, **checked)
