"""Turn catalog entries into pydantic models, one per entry, joined as a discriminated union
on ``name``.  Pydantic then reports a bad value with its full path (``solver.adam.betas.0``)
and the OpenAPI schema shows every solver's own fields with their defaults and bounds.

A choice hyperparameter becomes a named enum (``core.choices``): named after the hyperparameter
alone where several entries share it (``Activation``), else after its entry
(``SchedulerCycliclrMode``), so no two enums share a name or a set of values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from core.choices import choice
from core.spec.text import NulFreeStr
from optim.catalog.schema import Hyperparameter

# the most items a list hyperparameter (MultiStepLR's milestones) may hold: a spec stays small
MAX_LIST_ITEMS = 1000


def _number(h: Hyperparameter, integer: bool) -> Any:
    constraints: dict[str, float] = {}
    if h.minimum is not None:
        constraints["gt" if h.exclusive_minimum else "ge"] = h.minimum
    if h.maximum is not None:
        constraints["lt" if h.exclusive_maximum else "le"] = h.maximum
    if h.service_maximum is not None and (h.maximum is None or h.service_maximum < h.maximum):
        constraints.pop("lt", None)
        constraints["le"] = h.service_maximum
    base = int if integer else float
    return Annotated[base, Field(allow_inf_nan=False, **constraints)] if not integer else Annotated[
        base, Field(**constraints)
    ]


def field_type(h: Hyperparameter, choice_name: str | None = None) -> Any:
    """The python/pydantic type of one hyperparameter (a choice is the named enum
    ``choice_name``, or an anonymous ``Literal`` without one)."""
    if h.type in ("float", "int"):
        t = _number(h, h.type == "int")
    elif h.type == "bool":
        t = StrictBool
    elif h.type == "str":
        t = NulFreeStr
    elif h.type == "choice":
        values = tuple(h.choices or ())
        t = choice(choice_name, values, h.description) if choice_name else Literal[values]  # type: ignore[misc]
    elif h.type == "float_tuple":
        item = _number(h, False)
        t = tuple[(item,) * h.length] if h.length else tuple[item, ...]  # type: ignore[misc]
    else:  # int_list
        t = Annotated[list[_number(h, True)], Field(max_length=MAX_LIST_ITEMS)]  # type: ignore[misc]
    if h.nullable or h.derived_from:
        t = t | None
    return t


def field_default(h: Hyperparameter) -> Any:
    if h.derived_from:
        return None  # filled by resolve_spec from the training section
    if h.required:
        return ...
    return h.default


def model_for_entry(
    entry: Any,
    *,
    prefix: str,
    renames: dict[str, str] | None = None,
    extra_fields: dict[str, tuple[Any, Any]] | None = None,
    shared_choices: frozenset[tuple[str, tuple[Any, ...]]] = frozenset(),
) -> type[BaseModel]:
    """One pydantic model for one catalog entry: ``name: Literal[entry.name]`` plus a field per
    hyperparameter (``renames`` maps catalog names to the names users write, e.g. lr→base_lr).
    ``shared_choices``: the (name, choices) pairs whose enum is named after the hyperparameter."""
    renames = renames or {}
    model_name = prefix + _camel(entry.name)
    fields: dict[str, Any] = {"name": (Literal[entry.name], Field(description=f"{prefix} {entry.name!r}."))}  # type: ignore[valid-type]
    for h in entry.hyperparameters:
        shared = (h.name, tuple(h.choices or ())) in shared_choices
        fields[renames.get(h.name, h.name)] = (
            field_type(h, _camel(h.name) if shared else model_name + _camel(h.name)),
            Field(field_default(h), description=h.description),
        )
    for key, spec in (extra_fields or {}).items():
        fields.setdefault(key, spec)
    return create_model(
        model_name,
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"{entry.summary}\n\nReference: {entry.reference}",
        **fields,
    )


def models_for_entries(
    entries: Iterable[Any],
    *,
    prefix: str,
    renames: dict[str, str] | None = None,
    extra_fields: Callable[[Any], dict[str, tuple[Any, Any]] | None] = lambda entry: None,
) -> list[type[BaseModel]]:
    """:func:`model_for_entry` for each of a catalog's entries, with the choices that several
    entries share named once."""
    entries = list(entries)
    uses = Counter((h.name, tuple(h.choices or ())) for e in entries for h in e.hyperparameters if h.type == "choice")
    shared = frozenset(key for key, n in uses.items() if n > 1)
    return [model_for_entry(e, prefix=prefix, renames=renames, extra_fields=extra_fields(e), shared_choices=shared)
            for e in entries]


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def union_of(models: list[type[BaseModel]]) -> Any:
    """A discriminated union on ``name`` (a single model when there is only one)."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="name")]  # noqa: UP007
