"""The second-order entries agree with the constructors (defaults, bounds, choices, max_params) and
their needs_closure / needs_model flags are what the classes require."""

import inspect
import math

import pytest
import torch
from torch import nn

from optim import catalog
from optim.catalog.solvers_second_order import ENTRIES
from optim.factory import build_optimizer

# constructor arguments the catalog leaves out: the engine passes the model itself, never sets
# foreach, and enforces max_params from the entry's own field before building the solver
NOT_IN_CATALOG = {"self", "params", "model", "foreach", "max_params"}
ENTRY_IDS = [e.name for e in ENTRIES]


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _build(entry, **values):
    model = _model()
    extra = {"model": model} if entry.needs_model else {}
    return catalog.load_class(entry)(model.parameters(), **extra, **values)


def _constructor(entry):
    return inspect.signature(catalog.load_class(entry).__init__).parameters


def test_entries_are_the_second_order_solvers():
    assert ENTRY_IDS == ["lbfgs", "bfgs", "newton", "hessianfree", "naturalgradient", "kfac", "shampoo"]
    for entry in ENTRIES:
        assert entry.family == "second_order"
        assert catalog.solver(entry.name) is entry
        cls = catalog.load_class(entry)
        assert cls.__name__.lower() == entry.name
        assert entry.class_path == f"optim.{cls.__name__}"


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_defaults_and_names_match_the_constructor(entry):
    ctor = _constructor(entry)
    assert {h.name for h in entry.hyperparameters} == set(ctor) - NOT_IN_CATALOG
    for h in entry.hyperparameters:
        assert h.default == ctor[h.name].default, h.name
    _build(entry, **entry.defaults())


@pytest.mark.parametrize("entry", ENTRIES, ids=ENTRY_IDS)
def test_max_params_is_the_constructors_limit(entry):
    ctor = _constructor(entry)
    expected = ctor["max_params"].default if "max_params" in ctor else None
    assert entry.max_params == expected


def _bound_cases():
    for entry in ENTRIES:
        for h in entry.hyperparameters:
            positions = range(h.length) if h.type == "float_tuple" else [None]
            for side, bound, exclusive in (
                ("minimum", h.minimum, h.exclusive_minimum),
                ("maximum", h.maximum, h.exclusive_maximum),
            ):
                if bound is not None:
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
    outward = -1 if side == "minimum" else 1
    if h.type == "int":
        inside, outside = (int(bound) - outward, int(bound)) if exclusive else (int(bound), int(bound) + outward)
    else:
        step = math.inf * outward
        inside = math.nextafter(bound, -step) if exclusive else float(bound)
        outside = float(bound) if exclusive else math.nextafter(bound, step)

    accepted = _with_value(h, pos, inside)
    assert entry.validate_params({h.name: accepted})[h.name] == accepted
    _build(entry, **{h.name: accepted})

    rejected = _with_value(h, pos, outside)
    with pytest.raises(ValueError, match=h.name):
        entry.validate_params({h.name: rejected})
    with pytest.raises(ValueError, match=h.name if h.type != "float_tuple" else "beta"):
        _build(entry, **{h.name: rejected})


@pytest.mark.parametrize(
    "entry, name",
    [pytest.param(e, h.name, id=f"{e.name}-{h.name}") for e in ENTRIES for h in e.hyperparameters if h.type == "choice"],
)
def test_choices_are_exactly_what_the_constructor_accepts(entry, name):
    h = entry.hyperparameter(name)
    for choice in h.choices + ((None,) if h.nullable else ()):
        _build(entry, **{name: choice})
    with pytest.raises(ValueError, match=name):
        entry.validate_params({name: "not-a-choice"})
    with pytest.raises(ValueError, match=name):
        _build(entry, **{name: "not-a-choice"})


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
    model = _model()
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
            build_optimizer(_model().parameters(), entry.name, {})
        with pytest.raises(TypeError):
            catalog.load_class(entry)(_model().parameters())
