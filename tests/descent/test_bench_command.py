"""``descent bench optim`` end to end through the CLI parser, on a tiny size."""

from __future__ import annotations

import pytest

from descent.cli import main


def test_bench_optim_prints_a_markdown_table(capsys):
    code = main(["bench", "optim", "--device", "cpu", "--params", "5000", "--tensors", "3", "--repeats", "2",
                 "--only", "sgd,lion", "--threads", "1", "--markdown"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("device cpu (1 threads), 5,000 float32 params in 3 tensors")
    assert out[2].startswith("| optimizer | implementation | ms/step |")
    rows = [line for line in out[4:] if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["sgd"] * 5 + ["lion"] * 2
    assert all(r.split("|")[7].strip() in ("torch sgd", "torch adam") for r in rows)


def test_bench_requires_a_benchmark_name(capsys):
    with pytest.raises(SystemExit):
        main(["bench"])


def test_unknown_solver_is_an_error():
    with pytest.raises(ValueError, match="only"):
        main(["bench", "optim", "--device", "cpu", "--params", "100", "--tensors", "2", "--repeats", "1",
              "--only", "nosuch"])
