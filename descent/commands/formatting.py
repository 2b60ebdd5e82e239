"""Plain-text output shared by the client commands: aligned tables (laid out by rich) and short
renderings of numbers, times, spec sections and the api's metric direction."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# wide enough that no cell is ever wrapped or cut: a table is as wide as its content, so a
# terminal folds its long lines and a pipe keeps them whole (for grep and cut)
_UNBOUNDED_WIDTH = 100_000


def table(header: list[str] | None, rows: list[list[str]]) -> str:
    """Columns two spaces apart, each as wide as its widest cell, under ``header`` (a name may take
    two lines: ``"#1 adam\nbest"``) or none.  Cells are plain text (no rich markup) and the result
    has no ANSI codes, on a terminal or not."""
    grid = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="", expand=False,
                 show_header=header is not None)
    for name in header or [""] * max(map(len, rows), default=0):
        grid.add_column(Text(str(name)), no_wrap=True)
    for row in rows:
        grid.add_row(*(Text(str(c)) for c in row))
    out = io.StringIO()
    Console(file=out, width=_UNBOUNDED_WIDTH, color_system=None, force_terminal=False, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


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
    if not name:  # a section without a name (training) is its settings alone
        return rest
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
