"""The one table renderer: what it prints reads back as the cells it was given, in both forms."""

from __future__ import annotations

import pytest

from bench.table import Table, parse_markdown, ratio, render, render_all


def _table() -> Table:
    t = Table("head line", ("name", "ms", "vs base"), notes=["not timed: x (why)"])
    t.add("alpha", 1.5, ratio(1.5 / 0.75))
    t.add("beta long name", "0.750", ratio(None))
    return t


def test_markdown_reads_back_as_the_cells():
    text = render(_table(), markdown=True)
    (rows,) = parse_markdown(text)
    assert rows == [{"name": "alpha", "ms": "1.5", "vs base": "2.00x"},
                    {"name": "beta long name", "ms": "0.750", "vs base": "-"}]
    lines = text.splitlines()
    assert lines[0] == "head line" and lines[-1] == "not timed: x (why)"


def test_text_columns_are_aligned():
    lines = render(_table()).splitlines()
    header, first, second = lines[2:5]
    for column in ("ms", "vs base"):
        at = header.index(column)
        assert first[at - 1] == " " and first[at] != " " and second[at] != " "


def test_several_tables_parse_separately():
    a, b = _table(), Table("other", ("k",), rows=[("v",)])
    assert [len(t) for t in parse_markdown(render_all([a, b], markdown=True))] == [2, 1]


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="3 columns"):
        _table().add("only", "two")
