"""Strings the database stores or compares: PostgreSQL text cannot hold NUL ("\\u0000"), so a
string with one is refused at validation, on every database alike, with a message naming it.

``NulFreeStr`` is ``str`` with that check, for model fields, FastAPI ``Query`` and ``Form``
parameters alike (their length bounds stay where they are)::

    name: NulFreeStr = Field(min_length=1, max_length=200)
    tag: Annotated[NulFreeStr | None, Query(max_length=64)] = None
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

NUL_MESSAGE = "must not contain NUL characters"


def reject_nul(value: Any) -> Any:
    """``value`` unchanged, or a validation error (type ``string_nul``) when it is a string with NUL."""
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("string_nul", NUL_MESSAGE, {"position": value.index("\x00")})
    return value


NulFreeStr = Annotated[str, AfterValidator(reject_nul)]

__all__ = ["NUL_MESSAGE", "NulFreeStr", "reject_nul"]
