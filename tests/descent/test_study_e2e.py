"""``descent study`` for real: a ``descent up`` in a temporary folder, the shipped solver
tournament (3 solvers x 4 learning rates on iris) created through the CLI and followed to its end
by its one worker, then a longer search detached, cancelled while a trial runs, and refused a
second cancel."""

from __future__ import annotations

import json
import time

import pytest

from descent.client import Client
from tests.descent.running import ROOT, Up, free_port
from tests.descent.test_up_e2e import descent

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOURNAMENT = ROOT / "examples" / "studies" / "tournament.yaml"
# long enough that a cancel finds a trial running: hundreds of epochs per trial, many trials
LONG_SEARCH = {
    "name": "e2e long search",
    "base": {"name": "e2e-long", "split": {"dataset": "iris", "seed": 0}, "architecture": {"name": "mlp"},
             "solver": {"name": "sgd", "base_lr": 0.01}, "training": {"epochs": 500, "batch_size": 8}},
    "space": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    "objective": {"metric": "val/loss"},
    "strategy": "random",
    "budget": {"max_trials": 20, "parallel": 2},
}


def created_id(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("created study "))
    return int(line.split()[2])


def test_a_tournament_runs_to_its_end_and_a_long_search_is_cancelled(tmp_path):
    up = Up(tmp_path, free_port())
    try:
        up.wait_ready()
        created = descent("study", "create", str(TOURNAMENT), "--url", up.url, "--poll", "0.5", env=up.env,
                          timeout=420, cwd=tmp_path)
        assert created.returncode == 0, created.stdout + created.stderr + up.output()
        tournament = created_id(created.stdout)
        assert "best: trial " in created.stdout, created.stdout

        shown = descent("study", "show", str(tournament), "--json", "--url", up.url, env=up.env)
        assert shown.returncode == 0, shown.stderr
        study = json.loads(shown.stdout)
        assert study["kind"] == "tournament" and study["status"] != "running"
        assert len(study["trials"]) == 12 == study["max_trials"]
        assert {t["status"] for t in study["trials"]} <= {"succeeded", "pruned"}, study["trials"]
        assert sum(study["counts"].values()) == 12
        assert study["best"] is not None and study["best"]["value"] is not None
        assert {t["params"]["solver.name"] for t in study["trials"]} == {"adam", "sgd", "rmsprop"}
        text = descent("study", "show", str(tournament), "--url", up.url, env=up.env)
        assert text.returncode == 0 and "best: trial" in text.stdout and "asha" in text.stdout, text.stdout

        with Client(up.url, up.token) as client:
            trial = client.experiment(study["best"]["experiment_id"])
            assert trial["study_id"] == tournament and trial["trial_number"] == study["best"]["number"]

        (tmp_path / "long.json").write_text(json.dumps(LONG_SEARCH))
        detached = descent("study", "create", "long.json", "--detach", "--url", up.url, env=up.env, cwd=tmp_path)
        assert detached.returncode == 0, detached.stdout + detached.stderr
        long_id = created_id(detached.stdout)
        with Client(up.url, up.token) as client:
            deadline = time.monotonic() + 120
            while not client.study(long_id)["counts"].get("running"):
                assert time.monotonic() < deadline, up.output()
                time.sleep(0.2)

            cancelled = descent("study", "cancel", str(long_id), "--url", up.url, env=up.env)
            assert cancelled.returncode == 0, cancelled.stderr
            assert cancelled.stdout.startswith(f"study {long_id}: "), cancelled.stdout
            deadline = time.monotonic() + 60
            while True:
                after = client.study(long_id)
                counts = after["counts"]  # by status, the ones with trials
                if not counts.get("running") and not counts.get("queued"):
                    break
                assert time.monotonic() < deadline, after
                time.sleep(0.2)
        assert after["status"] != "running"
        assert counts.get("cancelled", 0) >= 1 and not counts.get("succeeded"), counts
        assert len(after["trials"]) < 20

        again = descent("study", "cancel", str(long_id), "--url", up.url, env=up.env)
        assert again.returncode == 1 and "409" in again.stderr and len(again.stderr.strip().splitlines()) == 1

        listed = descent("study", "ls", "--url", up.url, env=up.env)
        assert listed.returncode == 0 and "iris solver tournament" in listed.stdout and "e2e long search" in \
            listed.stdout, listed.stdout
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill()


def test_the_readme_runs_this_tournament():
    """The README's studies section creates the tournament this test follows."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Studies"):text.index("## Users, tokens")]
    commands = [line.split("  #", 1)[0].strip() for block in section.split("```bash\n")[1:]
                for line in block.split("```", 1)[0].splitlines()]
    assert commands[0] == f"descent study create {TOURNAMENT.relative_to(ROOT)}"
    assert {c.split()[2] for c in commands} == {"create", "show", "ls"}
