"""Plain-text output shared by the client commands: aligned tables and short renderings of
numbers, times, spec sections and the api's metric direction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def direction(higher_is_better: bool | None) -> str:
    """The arrow for the api's ``higher_is_better`` (nothing when the api sent none)."""
    return {True: "↑", False: "↓"}.get(higher_is_better, "")


def inline(section: Mapping[str, Any]) -> str:
    name = section.get("name", "")
    rest = ", ".join(f"{k}={v}" for k, v in section.items() if k != "name" and v is not None)
    return f"{name} ({rest})" if rest else str(name)


def short_time(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def error_line(text: str | None) -> str | None:
    """The last line of an error (where a traceback says what went wrong), cut to 120 characters."""
    return text.strip().splitlines()[-1][:120] if text and text.strip() else None


def spec_get(e: Mapping[str, Any], *path: str) -> Any:
    node: Any = e.get("spec") or {}
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node
