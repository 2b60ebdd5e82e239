"""The catalog against the classes it describes: names, JSON Schema, no torch at import, defaults
equal to the constructors' and bounds that reject exactly what the constructors reject."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
import warnings

import pytest
import torch

import optim
from optim import catalog
from optim.catalog.schema import Hyperparameter

ENTRIES = [*catalog.SOLVERS.values(), *catalog.SCHEDULERS.values()]
# constructor arguments the service never sets (and so the catalog leaves out)
NOT_USER_FACING = {
    "params", "model", "optimizer", "base_optimizer", "foreach", "maximize", "capturable", "differentiable",
    "fused", "max_params", "last_epoch",
}


def _ids(entries):
    return [e.name for e in entries]


def _solver_classes_exported() -> set[str]:
    """Lowercased optimizer classes that ``optim`` exports (schedulers and gradient tools aside)."""
    return {
        name.lower() for name, module in optim._EXPORTS.items()
        if name[0].isupper() and module not in ("optim.schedulers", "optim.grad_tools")
    }


def test_catalog_has_every_exported_solver():
    missing = _solver_classes_exported() - set(catalog.SOLVERS)
    assert not missing, f"optim exports solvers the catalog lacks: {sorted(missing)}"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_name_is_the_lowercase_class_name(entry):
    cls = catalog.load_class(entry)
    assert entry.name == cls.__name__.lower()
    if entry in catalog.SOLVERS.values():
        assert issubclass(cls, torch.optim.Optimizer)
        assert entry.class_path == f"optim.{cls.__name__}", "solvers are imported from the optim package"


def _schema_validator(schema):
    """A validator from a JSON Schema library when one is installed, else None (structural checks only)."""
    try:
        import jsonschema_rs

        jsonschema_rs.meta.validate(schema)
        return jsonschema_rs.validator_for(schema).is_valid
    except ImportError:
        pass
    try:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema).is_valid
    except ImportError:
        return None


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_json_schema_is_valid_and_agrees_with_validate_params(entry):
    schema = json.loads(json.dumps(entry.json_schema()))  # JSON-serialisable as it stands
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {h.name for h in entry.hyperparameters}
    for name in schema["required"]:
        assert entry.hyperparameter(name).required
    is_valid = _schema_validator(schema)
    if is_valid is None:  # structural checks: every property has a type, an enum or a union
        for prop in schema["properties"].values():
            assert {"type", "enum", "anyOf"} & set(prop), prop
        return
    good = _valid_example(entry)
    assert is_valid({k: _json_value(v) for k, v in good.items()})
    assert not is_valid({**good, "no_such_field": 1})
    for h, bad in _outside_values(entry):
        assert not is_valid({**good, h.name: _json_value(bad)}), f"{h.name}={bad} passes the schema"


# -- no torch -------------------------------------------------------------------------------------

def test_catalog_and_factory_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from optim import catalog, factory\n"
        "e = catalog.scheduler('cosineannealinglr')\n"
        "print(factory.derive_scheduler_params(e, {}, epochs=9, steps_per_epoch=4)['T_max'])\n"
        "print(len(catalog.SOLVERS), 'torch' in sys.modules and sys.modules['torch'] is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    t_max, line = out.stdout.split("\n")[:2]
    assert t_max == "9"
    assert line.split() == [str(len(catalog.SOLVERS)), "False"]


# -- defaults -------------------------------------------------------------------------------------

def _signature_defaults(entry) -> dict:
    """Constructor defaults for an entry; a wrapper's shared fields come from its default base."""
    params = dict(inspect.signature(catalog.load_class(entry)).parameters)
    if getattr(entry, "wraps", False):
        base = catalog.solver(entry.hyperparameter("base").default)
        for name, p in inspect.signature(catalog.load_class(base)).parameters.items():
            params.setdefault(name, p)
    return params


SOLVERS = list(catalog.SOLVERS.values())


@pytest.mark.parametrize("entry", SOLVERS, ids=_ids(SOLVERS))
def test_solver_defaults_are_the_constructor_defaults(entry):
    params = _signature_defaults(entry)
    for h in entry.hyperparameters:
        if entry.wraps and h.name == "base":
            assert h.default in catalog.SOLVERS
            continue
        assert h.name in params, f"{entry.name}.{h.name} is not a constructor argument"
        default = params[h.name].default
        if h.required:
            assert default is inspect.Parameter.empty
        else:
            assert _same(h.default, default), f"{entry.name}.{h.name}: catalog {h.default!r} != {default!r}"


@pytest.mark.parametrize("entry", SOLVERS, ids=_ids(SOLVERS))
def test_every_user_facing_constructor_argument_is_in_the_catalog(entry):
    names = {h.name for h in entry.hyperparameters}
    own = inspect.signature(catalog.load_class(entry)).parameters
    left_out = {n for n, p in own.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    left_out -= names | NOT_USER_FACING
    assert not left_out, f"{entry.name}: constructor arguments missing from the catalog: {sorted(left_out)}"


def _same(a, b) -> bool:
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        return list(a) == list(b)
    return a == b and type(a) is not bool or a is b


# -- bounds ---------------------------------------------------------------------------------------

def _step(h: Hyperparameter, at: float) -> float:
    return 1 if h.type in ("int", "int_list") else max(1e-9, abs(at) * 1e-9)


def _outside_values(entry):
    """(hyperparameter, value) just outside each numeric bound, one element at a time for tuples."""
    for h in entry.hyperparameters:
        if h.type not in ("float", "int", "float_tuple", "int_list"):
            continue
        for bound, exclusive, sign in ((h.minimum, h.exclusive_minimum, -1), (h.maximum, h.exclusive_maximum, 1)):
            if bound is None:
                continue
            value = bound if exclusive else bound + sign * _step(h, bound)
            yield h, _in_place(entry, h, value)


def _inside_values(entry):
    for h in entry.hyperparameters:
        if h.type not in ("float", "int", "float_tuple", "int_list"):
            continue
        for bound, exclusive, sign in ((h.minimum, h.exclusive_minimum, 1), (h.maximum, h.exclusive_maximum, -1)):
            if bound is None:
                continue
            value = bound + sign * _step(h, bound) if exclusive else bound
            yield h, _in_place(entry, h, value)


def _in_place(entry, h, value):
    if h.type in ("float", "int"):
        return int(value) if h.type == "int" else float(value)
    default = list(_valid_example(entry)[h.name])
    default[-1] = int(value) if h.type == "int_list" else float(value)
    return tuple(default) if h.type == "float_tuple" else default


def _valid_example(entry) -> dict:
    values = entry.defaults()
    for h in entry.hyperparameters:
        if h.name in values and values[h.name] is not None:
            continue
        if h.type == "int_list":
            values[h.name] = [2, 4]
        elif h.type == "int":
            values[h.name] = 3
        elif h.type == "float":
            values[h.name] = 0.1 if h.name != "max_lr" else 0.5
    return values


def build_solver(entry, values: dict):
    """The constructor call the factory makes, without the catalog's validation in front of it."""
    model = torch.nn.Linear(2, 3)
    params = list(model.parameters())
    kwargs = dict(values)
    cls = catalog.load_class(entry)
    if entry.needs_model:
        kwargs["model"] = model
    if entry.wraps:
        base = catalog.solver(kwargs.pop("base"))
        shared = {k: kwargs.pop(k) for k in ("lr", "weight_decay") if k in kwargs}
        return cls(catalog.load_class(base)(params, **shared), **kwargs)
    return cls(params, **kwargs)


SOLVER_BOUNDS = [
    pytest.param(entry, h, value, id=f"{entry.name}.{h.name}={value}")
    for entry in SOLVERS for h, value in _outside_values(entry)
]
SOLVER_INSIDE = [
    pytest.param(entry, h, value, id=f"{entry.name}.{h.name}={value}")
    for entry in SOLVERS for h, value in _inside_values(entry)
]


@pytest.mark.parametrize(("entry", "h", "value"), SOLVER_BOUNDS)
def test_value_just_outside_a_bound_fails_in_catalog_and_constructor(entry, h, value):
    with pytest.raises(ValueError, match=h.name):
        entry.validate_params({h.name: value})
    with pytest.raises(ValueError):
        build_solver(entry, {**entry.defaults(), h.name: value})


@pytest.mark.parametrize(("entry", "h", "value"), SOLVER_INSIDE)
def test_value_on_the_inner_side_of_a_bound_passes_both(entry, h, value):
    values = entry.validate_params({h.name: value})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_solver(entry, values)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_non_finite_numbers_are_rejected(entry):
    for h in entry.hyperparameters:
        if h.type in ("float", "int"):
            for bad in (math.nan, math.inf):
                with pytest.raises(ValueError, match=h.name):
                    entry.validate_params({**_valid_example(entry), h.name: bad})
