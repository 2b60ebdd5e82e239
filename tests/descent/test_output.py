"""What ``descent show``, ``compare`` and the live progress print: against the real api (in
process, on a migrated SQLite file) where it matters what the api sends, and offline for layout.
Captured output is never a terminal, so none of it may hold an ANSI code."""

from __future__ import annotations

import argparse
import io
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from core.metrics import is_diagnostic
from descent.client import Client
from descent.commands import compare, show
from descent.commands.submit import follow
from descent.progress import LiveDisplay, RunState, format_line, waiting_reasons


@pytest.mark.parametrize("name, diagnostic", [
    ("lr", True), ("grad_norm", True), ("update_ratio", True), ("epoch_time", True), ("train/learning_rate", True),
    ("train/loss", False), ("val/loss", False), ("train/epoch_loss", False), ("val/accuracy", False),
    ("val/top1_acc", False), ("train/mse", False), ("val/r2", False), ("test/error_rate", False),
])
def test_which_metrics_are_diagnostics(name, diagnostic):
    assert is_diagnostic(name) is diagnostic


@pytest.fixture
def api(tmp_path):
    """A client of the real api on a fresh database (no worker: submitted runs stay queued), and a
    function that posts points to a run."""
    from api.app import create_app
    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from tests.identity import TEST_HOSTS, admin_token

    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=None, broker_url=None,
                        allowed_hosts=TEST_HOSTS)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    app = create_app(settings, session_factory=sessions, enqueuer=lambda *a: None, reconcile_interval_s=0,
                     broker_check=lambda: None)
    token = admin_token(sessions)
    with TestClient(app) as http, Client("http://testserver", token, transport=http._transport) as client:
        def post(eid: int, name: str, values: list[float]) -> None:
            points = [{"name": name, "step": s, "epoch": s, "value": v, "wall_time": 1000.0 + s}
                      for s, v in enumerate(values, 1)]
            answer = http.post(f"/api/v1/experiments/{eid}/metrics", json={"points": points},
                               headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text

        yield client, post
    engine.dispose()


SPEC = {"architecture": {"name": "mlp", "width": 8}, "solver": {"name": "adam", "base_lr": 0.01},
        "scheduler": {"name": "constant"}, "training": {"epochs": 2, "device": "cpu"}}
POINTS = {"train/loss": [1.0, 0.4, 0.6], "val/accuracy": [0.5, 0.9, 0.8], "lr": [0.01, 0.005, 0.0],
          "grad_norm": [3.0, 2.0, 0.5]}


def _run(client, post, name: str, points=POINTS) -> int:
    split = client.create_split("iris", seed=0)
    eid = client.submit({**SPEC, "name": name, "split_id": split["id"]})["id"]
    for metric, values in points.items():
        post(eid, metric, values)
    return eid


def _command(module_arguments, command, client, argv: list[str], capsys) -> str:
    parser = argparse.ArgumentParser()
    module_arguments(parser)
    capsys.readouterr()
    assert command(client, parser.parse_args(argv)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out  # piped: no ANSI codes
    return out


def test_show_lists_the_spec_aligned_and_a_best_only_for_losses_and_scores(api, capsys):
    client, post = api
    eid = _run(client, post, "iris-adam-cosine")
    lines = _command(show.show_arguments, show.show, client, [str(eid)], capsys).splitlines()
    assert f"id:          {eid}" in lines and "status:      queued" in lines
    spec = lines[lines.index("spec:") + 1:lines.index("spec:") + 5]  # with the defaults the api filled in
    assert [line.split()[:2] for line in spec] == [["architecture", "mlp"], ["solver", "adam"],
                                                   ["scheduler", "constant"], ["training", "epochs=2,"]]
    assert {line.index(line.split()[1]) for line in spec} == {len("  architecture  ")}
    assert "width=8" in spec[0] and "base_lr=0.01" in spec[1] and "device=cpu" in spec[3]
    table = lines[lines.index("") + 1:]
    assert table[0].split() == ["METRIC", "FINAL", "BEST", "BEST", "STEP"]
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert rows == {
        "train/loss": ["↓", "0.6", "0.4", "2"], "val/accuracy": ["↑", "0.8", "0.9", "2"],
        "grad_norm": ["0.5"], "lr": ["0"],  # diagnostics: their final value, no direction and no best
    }
    assert [line.split()[0] for line in table[1:]] == ["train/loss", "val/accuracy", "grad_norm", "lr"]


def test_compare_json_is_one_summary_per_run_unless_series_are_asked_for(api, capsys):
    client, post = api
    a = _run(client, post, "a")
    b = _run(client, post, "b", {"train/loss": [0.9, 0.8, 0.7, 0.65, 0.6, 0.5], "lr": [0.1] * 6})
    summary = json.loads(_command(compare.arguments, compare.compare, client, [str(b), str(a), "--json"], capsys))
    assert [(r["id"], r["name"], r["status"]) for r in summary] == [(b, "b", "queued"), (a, "a", "queued")]
    assert summary[1]["solver"].items() >= SPEC["solver"].items() and summary[1]["scheduler"]["name"] == "constant"
    assert summary[0]["metrics"]["train/loss"] == {"latest": 0.5, "latest_step": 6, "best": 0.5, "best_step": 6,
                                                   "higher_is_better": False}
    assert summary[1]["metrics"]["val/accuracy"] == {"latest": 0.8, "latest_step": 3, "best": 0.9, "best_step": 2,
                                                     "higher_is_better": True}
    assert summary[1]["metrics"]["lr"] == {"latest": 0.0, "latest_step": 3, "best": None, "best_step": None,
                                           "higher_is_better": None}
    full = json.loads(_command(compare.arguments, compare.compare, client, [str(b), "--json", "--series"], capsys))
    assert full["experiments"][0]["series"]["train/loss"]["values"] == [0.9, 0.8, 0.7, 0.65, 0.6, 0.5]


def test_compare_table_names_each_run_whole_over_its_best_and_final(api, capsys):
    client, post = api
    a = _run(client, post, "iris-adam-cosine-warmup")
    b = _run(client, post, "iris-sgd", {"train/loss": [0.3], "val/accuracy": [0.95], "lr": [0.1]})
    out = _command(compare.arguments, compare.compare, client, [str(a), str(b), "--all"], capsys)
    names, columns, *rows, winner = out.splitlines()
    assert names.split() == [f"#{a}", "iris-adam-cosine-warmup", f"#{b}", "iris-sgd"]
    assert columns.split() == ["METRIC", "best", "final", "best", "final"]
    # "best" stands under the run's id, "final" after it
    assert columns.index("best") == names.index(f"#{a}") and columns.rindex("best") == names.index(f"#{b}")
    assert [r.split()[0] for r in rows] == ["train/loss", "val/accuracy", "grad_norm", "lr"]
    lr = next(r for r in rows if r.startswith("lr"))
    assert lr.split() == ["lr", "0", "0.1"]  # finals only, no star
    assert winner.startswith(f"winner: #{b} iris-sgd (best val/accuracy 0.95 ")


def test_a_queued_run_says_why_it_waits_until_it_ends(api):
    """``follow`` (what ``descent submit`` runs) prints the api's reason for a queued run; here no
    worker serves the cpu queue, and the run is cancelled after the first line."""
    client, post = api
    eid = _run(client, post, "waits", {})
    [reason] = [w["reason"] for w in client.queue()["waiting"] if w["id"] == eid]
    out = io.StringIO()
    display = LiveDisplay(out)  # not a terminal: a plain line per change

    class CancelAfterFirst(LiveDisplay):
        def update(self, runs):
            display.update(runs)
            if runs[0].status == "queued":
                client.cancel(eid)

    assert follow(client, [eid], poll_s=0, display=CancelAfterFirst(io.StringIO())) == 1
    first, last = out.getvalue().splitlines()
    assert "descent worker --queue cpu" in reason
    assert first.startswith(f"#{eid} waits") and first.endswith(f"queued: {reason}")
    assert last.endswith("cancelled") and "\x1b" not in out.getvalue()


def test_an_api_without_a_queue_leaves_a_run_just_queued():
    refuse = httpx.MockTransport(lambda request: httpx.Response(404, json={"detail": "Not Found"}))
    with Client("http://h", "dsc_x", transport=refuse) as client:
        [run] = waiting_reasons(client, [RunState(1, "a")])
    assert run.waiting is None and format_line(run).endswith("  queued")


@pytest.mark.parametrize("metrics, shown", [
    ({}, []),
    ({"train/loss": 0.5, "lr": 0.1, "grad_norm": 2.0, "epoch_time": 1.0}, ["train/loss"]),
    ({"val/accuracy": 0.9, "train/loss": 0.5, "val/loss": 0.3, "train/accuracy": 0.8, "test/r2": 0.1},
     ["train/loss", "val/loss", "val/accuracy", "test/r2"]),
])
def test_the_progress_line_shows_train_loss_then_val_then_test_metrics(metrics, shown):
    line = format_line(RunState(3, "r", "running", epoch=1, epochs=4, step=30, progress=0.25, metrics=metrics))
    assert line.startswith("#3 r   25%  epoch 1/4  step 30") and line.endswith("  running")
    assert [w for w in line.split() if "/" in w and not w[0].isdigit()] == shown



def test_show_of_a_range_test_prints_its_suggested_base_lr(api, capsys):
    client, post = api
    eid = _run(client, post, "range", {"train/loss": [1.0, 0.5, 3.0], "range/suggested_lr": [0.003],
                                       "range/steepest_lr": [0.003], "range/min_loss_lr": [0.05]})
    lines = _command(show.show_arguments, show.show, client, [str(eid)], capsys).splitlines()
    assert lines[-1] == ("suggested base_lr: 0.003 (steepest descent of the smoothed loss; minimum at 0.05, "
                         "0.05/10 = 0.005)")
    plain = _command(show.show_arguments, show.show, client, [str(_run(client, post, "plain"))], capsys)
    assert "suggested base_lr" not in plain
