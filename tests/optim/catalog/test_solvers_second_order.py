"""The second-order entries: which they are, the class each names, max_params and choices as the
constructors have them, and needs_closure / needs_model as the classes require.  Defaults and
bounds against the constructors are in test_solver_constructors.py."""

import pytest
import torch
from torch import nn

import optim
from optim import catalog
from optim.catalog.solvers_second_order import ENTRIES
from optim.factory import build_optimizer
from tests.optim.catalog.constructors import build, constructor_parameters
from tests.optim.catalog.constructors import model as small_model

ENTRY_IDS = [e.name for e in ENTRIES]
# written out, not derived from the names: the classes the service builds, from the optim package
CLASS_PATHS = {
    "lbfgs": "optim.LBFGS", "bfgs": "optim.BFGS", "newton": "optim.Newton", "hessianfree": "optim.HessianFree",
    "naturalgradient": "optim.NaturalGradient", "kfac": "optim.KFAC", "shampoo": "optim.Shampoo",
}


def test_entries_are_the_second_order_solvers():
    assert ENTRY_IDS == list(CLASS_PATHS)
    for entry in ENTRIES:
        assert entry.family == "second_order"
        assert catalog.solver(entry.name) is entry
        assert entry.class_path == CLASS_PATHS[entry.name]
        assert catalog.load_class(entry) is getattr(optim, CLASS_PATHS[entry.name].removeprefix("optim."))


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_max_params_is_the_constructors_limit(entry):
    ctor = constructor_parameters(entry)
    expected = ctor["max_params"].default if "max_params" in ctor else None
    assert entry.max_params == expected


@pytest.mark.parametrize(
    "entry, name",
    [pytest.param(e, h.name, id=f"{e.name}-{h.name}") for e in ENTRIES for h in e.hyperparameters if h.type == "choice"],
)
def test_choices_are_exactly_what_the_constructor_accepts(entry, name):
    h = entry.hyperparameter(name)
    for choice in h.choices + ((None,) if h.nullable else ()):
        build(entry, **{name: choice})
    with pytest.raises(ValueError, match=name):
        entry.validate_params({name: "not-a-choice"})
    with pytest.raises(ValueError, match=name):
        build(entry, **{name: "not-a-choice"})


def _engine_step(opt, entry, model, x, y):
    """What the training engine does for an entry: a closure when needs_closure, else the plain loop."""

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()

    if entry.needs_closure:
        opt.step(closure)
    else:
        closure()
        opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_flags_say_how_the_engine_drives_each_solver(entry):
    torch.manual_seed(0)
    model = small_model()
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    start = nn.functional.cross_entropy(model(x), y).item()
    opt = build_optimizer(model.parameters(), entry.name, {}, model=model)
    for _ in range(5):
        _engine_step(opt, entry, model, x, y)
    assert nn.functional.cross_entropy(model(x), y).item() < start

    if entry.needs_closure:  # a closure-driven solver refuses the plain loop's step()
        with pytest.raises((TypeError, ValueError)):
            opt.step()
    if entry.needs_model:
        with pytest.raises(ValueError, match="model"):
            build_optimizer(small_model().parameters(), entry.name, {})
        with pytest.raises(TypeError):
            catalog.load_class(entry)(small_model().parameters())
