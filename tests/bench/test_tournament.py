"""``descent bench tournament`` in its quick mode: every trial of the grid runs once per arm, the
ASHA arm trains no more epochs than the arm without pruning, and the tables have their shape
(timings are not asserted)."""

from __future__ import annotations

import pytest

from bench.table import parse_markdown, render_all
from bench.tournament import QUICK, parse_arm, run_tournament, tables
from descent.cli import main

SOLVERS, POINTS, EPOCHS = QUICK["solvers"], QUICK["points"], QUICK["epochs"]


@pytest.fixture(scope="module")
def arms():
    return run_tournament(["none", "asha"], SOLVERS, POINTS, EPOCHS, threads=1)


def test_every_trial_of_the_grid_runs_once_per_arm(arms):
    from core.studies.grid import enumerate_grid

    grid = [(p["solver.name"], p["solver.base_lr"]) for p in enumerate_grid(arms[0].study.space)]
    assert len(grid) == len(SOLVERS) * POINTS
    for arm in arms:
        assert [(t.solver, t.lr) for t in arm.trials] == grid
        assert [t.number for t in arm.trials] == list(range(len(grid)))
        assert [r.number for r in arm.records] == list(range(len(grid)))


def test_no_pruning_trains_every_epoch_and_asha_no_more(arms):
    none, asha = arms
    assert none.study.pruner.name == "none" and asha.study.pruner.name == "asha"
    assert none.count("pruned") == 0
    assert all(t.epochs == EPOCHS for t in none.trials if t.status == "succeeded")
    assert asha.epochs <= none.epochs
    for ours, theirs in zip(asha.trials, none.trials):  # same seed: a pruned trial is a prefix of its twin
        assert ours.epochs <= theirs.epochs
        if ours.status == "pruned":
            assert 1 <= ours.epochs < EPOCHS
            assert ours.by_epoch == {e: v for e, v in theirs.by_epoch.items() if e <= ours.epochs}
        else:
            assert ours.status == theirs.status and ours.by_epoch == theirs.by_epoch


def test_the_tables_have_their_shape(arms):
    comparison, lrs, *per_arm = parse_markdown(render_all(tables(arms), markdown=True))
    assert [row["arm"] for row in comparison] == ["none", "asha"]
    assert comparison[0]["goal met"] == "(baseline)" and comparison[1]["goal met"] in ("yes", "no")
    assert comparison[0]["vs none"] == "1.00x"
    assert int(comparison[1]["epochs trained"]) == arms[1].epochs
    assert int(comparison[1]["trials pruned"]) == arms[1].count("pruned")
    assert [row["solver"] for row in lrs] == SOLVERS
    assert set(lrs[0]) == {"solver", "best lr (none)", "val/accuracy (none)", "best lr (asha)",
                           "val/accuracy (asha)", "same lr"}
    assert len(per_arm) == 2
    for rows, arm in zip(per_arm, arms):
        assert [row["solver"] for row in rows] == [*SOLVERS, "all"]
        assert int(rows[-1]["trials"]) == len(arm.trials)
        assert int(rows[-1]["epochs trained"]) == arm.epochs
        assert sum(int(rows[-1][k]) for k in ("complete", "pruned", "failed")) == len(arm.trials)


def test_arms_name_asha_settings():
    assert parse_arm("asha:rf=4:min=2") == ("asha:rf=4:min=2",
                                           {"name": "asha", "reduction_factor": 4, "min_resource": 2})
    assert parse_arm("none") == ("none", {"name": "none"})
    with pytest.raises(ValueError, match="rf=N"):
        parse_arm("asha:eta=3")


def test_cli_quick_run(capsys):
    assert main(["bench", "tournament", "--quick", "--markdown", "--quiet", "--arms", "none,asha:rf=2"]) == 0
    captured = capsys.readouterr()
    comparison = parse_markdown(captured.out)[0]
    assert [row["arm"] for row in comparison] == ["none", "asha:rf=2"]
    assert captured.err == ""
