"""Named choice types: a ``Literal`` of strings that the OpenAPI schema shows as one named enum
component (``Status``, ``Activation``), referenced wherever it is used, so a generated client
has one enum class per set of values instead of one per field.

``choice("Status", ("queued", ...), "…")`` returns a type alias usable in annotations like the
``Literal`` it wraps; asking twice for a name gives the same alias, and asking for a name with
other values is an error at import time (two enums may not share a name, nor a value set)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from typing_extensions import TypeAliasType

_BY_NAME: dict[str, tuple[tuple[Any, ...], Any]] = {}
_BY_VALUES: dict[tuple[Any, ...], str] = {}


def choice(name: str, values: tuple[Any, ...], description: str) -> Any:
    """The alias ``name`` for ``Literal[values]``, described by ``description``."""
    values = tuple(values)
    known = _BY_NAME.get(name)
    if known is not None:
        if known[0] != values:
            raise ValueError(f"choice type {name} is already {known[0]}, not {values}")
        return known[1]
    other = _BY_VALUES.get(tuple(sorted(map(str, values))))
    if other is not None:
        raise ValueError(f"choice type {name} has the same values as {other}: reuse {other}")
    alias = TypeAliasType(name, Annotated[Literal[values], Field(description=description)])  # type: ignore[valid-type]
    _BY_NAME[name] = (values, alias)
    _BY_VALUES[tuple(sorted(map(str, values)))] = name
    return alias


def values_of(alias: Any) -> tuple[Any, ...]:
    """The values a choice type admits, in their declared order."""
    return _BY_NAME[alias.__name__][0]
