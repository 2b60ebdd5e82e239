"""``--write``: a run replaces its own block of docs/benchmarks.md and nothing else."""

from __future__ import annotations

import datetime
import os
import platform

import pytest

from bench.docs import block, machine, markers, write_section
from bench.table import Table, parse_markdown

DOC = """# Benchmarks

## Optimizer step

Prose that explains the table.

{optim}

Reading it: more prose.

## Broker

{broker}
"""


def _block(name: str, value: str) -> str:
    t = Table(f"{name} run", ("measure", "value"), rows=[("x", value)])
    return block(name, f"descent bench {name}", [t], today=datetime.date(2026, 12, 2))


def test_write_replaces_only_its_own_block(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC.format(optim=_block("optim", "1"), broker=_block("broker", "2")))
    write_section(path, "optim", "Optimizer step", _block("optim", "99"))
    text = path.read_text()
    assert [rows[0]["value"] for rows in parse_markdown(text)] == ["99", "2"]
    assert text == DOC.format(optim=_block("optim", "99"), broker=_block("broker", "2"))


def test_a_benchmark_without_a_block_gets_a_section_at_the_end(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC.format(optim=_block("optim", "1"), broker=_block("broker", "2")))
    write_section(path, "api", "API and store", _block("api", "3"))
    write_section(path, "api", "API and store", _block("api", "4"))  # the second run replaces the first
    text = path.read_text()
    assert text.count("## API and store") == 1
    assert text.index("## Broker") < text.index("## API and store")
    assert [rows[0]["value"] for rows in parse_markdown(text)] == ["1", "2", "4"]


def test_a_missing_file_is_created(tmp_path):
    path = tmp_path / "docs" / "benchmarks.md"
    write_section(path, "broker", "Broker", _block("broker", "5"))
    assert path.read_text().startswith("# Benchmarks\n\n## Broker\n")


def test_an_unclosed_block_is_an_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# B\n\n{markers('optim')[0]}\nold\n")
    with pytest.raises(ValueError, match="end"):
        write_section(path, "optim", "Optimizer step", _block("optim", "1"))
    assert path.read_text() == f"# B\n\n{markers('optim')[0]}\nold\n"


def test_the_block_says_what_ran_when_and_where():
    text = _block("optim", "1")
    assert "`descent bench optim`, measured 2026-12-02 on " in text
    on = text.split("measured 2026-12-02 on ", 1)[1].split("\n", 1)[0]
    assert on.split(", load average")[0] == machine().split(", load average")[0]  # the load moves
    assert f"{os.cpu_count()} cores" in on and platform.python_version() in on
