"""Every solver catalog module's entries agree with their constructors: the same names and
defaults, every bound exactly where the constructor starts (or stops) raising, and a field
without a maximum accepting a large value.  The rows are in constructors.py."""

import pytest

from tests.optim.catalog.constructors import (
    HANDED_TO_BASE,
    MODULES,
    bound_cases,
    constructor_parameters,
    constructors,
    inside_and_outside,
    with_value,
)


def _per_entry(cases):
    return [pytest.param(m, *values, id=tag) for m in MODULES for values, tag in cases(m)]


@pytest.mark.parametrize("m, entry", _per_entry(lambda m: (((e,), e.name) for e in m.entries)))
def test_defaults_and_names_match_the_constructor(m, entry):
    ctor = constructor_parameters(entry)
    own = {h.name for h in entry.hyperparameters} - (HANDED_TO_BASE if entry.wraps else set())
    assert own == set(ctor) - m.not_in_catalog
    for name in own:
        assert entry.hyperparameter(name).default == ctor[name].default, name
    m.accepts_defaults(entry)  # the defaults themselves are accepted


@pytest.mark.parametrize(
    "m, entry, h, side, bound, exclusive, pos", _per_entry(lambda m: ((c.values, c.id) for c in bound_cases(m.entries)))
)
def test_bound_is_where_the_constructor_starts_rejecting(m, entry, h, side, bound, exclusive, pos):
    inside, outside = inside_and_outside(h, side, bound, exclusive)
    accepted = with_value(h, pos, inside)
    assert entry.validate_params({h.name: accepted})[h.name] == accepted
    rejected = with_value(h, pos, outside)
    with pytest.raises(ValueError, match=h.name):
        entry.validate_params({h.name: rejected})
    for construct in constructors(entry, h.name):
        construct(accepted)
        with pytest.raises(ValueError, match=m.rejected_message(h, pos)):
            construct(rejected)


@pytest.mark.parametrize("m, entry, name", _per_entry(lambda m: (
    ((e, h.name), f"{e.name}-{h.name}") for e in m.entries for h in e.hyperparameters
    if h.type in m.unbounded_types and h.maximum is None
)))
def test_unbounded_above_means_the_constructor_accepts_large_values(m, entry, name):
    value = 10**6 if entry.hyperparameter(name).type == "int" else 1e6
    entry.validate_params({name: value})
    for construct in constructors(entry, name):
        construct(value)
