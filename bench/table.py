"""The one table every benchmark prints: a line describing the run, then the rows, aligned for a
terminal or as the Markdown table docs/benchmarks.md holds, then notes (solvers not timed, ...).

``parse_markdown`` reads such a table back, so a run's numbers can be compared with another's."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    head: str  # one line: what was measured, on what, with which settings
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines printed under the table

    def add(self, *cells) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, the table {len(self.columns)} columns: {cells}")
        self.rows.append(tuple(str(c) for c in cells))


def ratio(x: float | None) -> str:
    """A ratio to the baseline as the tables write it: ``1.08x``, or ``-`` when there is none."""
    return "-" if x is None else f"{x:.2f}x"


def render(table: Table, markdown: bool = False) -> str:
    """``head``, a blank line, the rows (aligned, or a Markdown table), then the notes."""
    columns, body = table.columns, table.rows
    lines = [table.head, ""]
    if markdown:
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(c) for c in col) for col in zip(columns, *body)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in (columns, *body)]
    if table.notes:
        lines += ["", *table.notes]
    return "\n".join(lines)


def render_all(tables: list[Table], markdown: bool = False) -> str:
    return "\n\n".join(render(t, markdown) for t in tables)


def parse_markdown(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text``, each as a list of {column: cell} rows."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables.append([])
        elif not all(set(c) <= set("-:") and c for c in cells):
            tables[-1].append(dict(zip(header, cells)))
    return tables
