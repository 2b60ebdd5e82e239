"""``descent study`` without a server: the real parser, study files (and their ``file:line:col``
errors), what ``create`` sends and draws against a fake api (httpx's ``MockTransport``), and the
rendering of ``show``, ``ls`` and the progress line.  ``test_study_e2e.py`` runs it for real."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import httpx
import pytest
import yaml

from descent import cli
from descent.client import Client
from descent.commands import client_cmds, study
from descent.commands.specs import SpecFileError
from descent.commands.study import (
    StudyDisplay,
    describe,
    load_study,
    progress_line,
    sorted_trials,
)

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:8123"
BASE = {"name": "iris-mlp", "split": {"dataset": "iris", "seed": 0}, "architecture": {"name": "mlp"},
        "solver": {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 3}}
SEARCH = {"name": "lr search", "base": BASE,
          "space": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
          "objective": {"metric": "val/accuracy"}, "strategy": "random", "budget": {"max_trials": 3}}


def trial(number: int, status: str, value: float | None, label: str = "", epoch: int = 3) -> dict:
    return {"number": number, "experiment_id": 100 + number, "status": status, "params": {},
            "label": label or f"adam lr={number}", "value": value, "epoch": epoch}


def a_study(status: str = "done", trials: list[dict] | None = None, mode: str = "max", **extra) -> dict:
    trials = trials if trials is not None else [trial(0, "succeeded", 0.9), trial(1, "pruned", 0.5, epoch=1),
                                                trial(2, "succeeded", 0.97)]
    counts = {s: sum(t["status"] == s for t in trials)
              for s in ("queued", "running", "succeeded", "pruned", "failed", "cancelled")}
    with_values = [t for t in trials if t["value"] is not None and t["status"] == "succeeded"]
    best = (max if mode == "max" else min)(with_values, key=lambda t: t["value"]) if with_values else None
    return {
        "id": 7, "project_id": 1, "name": "iris solver tournament", "kind": "tournament", "status": status,
        "spec": {"objective": {"metric": "val/accuracy", "mode": mode, "use": "best"}, "strategy": "grid",
                 "pruner": {"name": "asha", "n_startup_trials": 5, "n_warmup_steps": 0, "min_resource": 1,
                            "reduction_factor": 3},
                 "budget": {"max_trials": 3, "parallel": 2, "max_minutes": None}},
        "split_id": 5, "created_at": "2026-12-02T20:00:00.123+00:00", "finished_at": None, "note": None,
        "counts": counts, "max_trials": 3, "trials": trials, "best": best, "importance": {}, **extra,
    }


class FakeApi:
    """Answers the routes ``descent study`` calls; ``studies`` are the answers of successive
    ``GET /studies/7`` (the last repeats); every request is kept in ``requests``."""

    def __init__(self, studies: list[dict] | None = None, refuse: tuple[int, object] | None = None):
        self.studies = studies or [a_study()]
        self.refuse = refuse
        self.requests: list[httpx.Request] = []
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api/v1")
        if request.method == "POST" and path == "/splits":
            return httpx.Response(201, json={"id": 5})
        if request.method == "POST" and path in ("/studies", "/studies/tournament"):
            if self.refuse:
                return httpx.Response(self.refuse[0], json={"detail": self.refuse[1]})
            return httpx.Response(201, json=a_study("running", trials=[]))
        if request.method == "GET" and path == "/studies/7":
            answer = self.studies[min(self.gets, len(self.studies) - 1)]
            self.gets += 1
            return httpx.Response(200, json=answer)
        if request.method == "GET" and path == "/studies":
            items = [{k: v for k, v in s.items() if k not in ("trials", "importance")} for s in self.studies]
            return httpx.Response(200, json={"items": items, "total": 5, "limit": 50, "offset": 0})
        if request.method == "POST" and path == "/studies/7/cancel":
            if self.refuse:
                return httpx.Response(self.refuse[0], json={"detail": self.refuse[1]})
            return httpx.Response(200, json=a_study("stopped"))
        return httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.url.path == "/api/v1" + path]


@pytest.fixture
def api(monkeypatch):
    """Install a ``FakeApi`` behind the commands' client; returns a function that makes it."""
    def install(**kwargs) -> FakeApi:
        fake = FakeApi(**kwargs)
        monkeypatch.setattr(client_cmds, "Client", functools.partial(Client, transport=httpx.MockTransport(fake)))
        return fake

    monkeypatch.setattr(study.time, "sleep", lambda s: None)
    return install


def descent(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--url", URL, "--token", "dsc_test"])
    out, err = capsys.readouterr()
    return code, out, err


# -- parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["study", "create", "s.yaml", "--detach"], {"action": "create", "file": Path("s.yaml"), "detach": True}),
    (["study", "ls", "--json"], {"action": "ls", "json": True, "limit": 50}),
    (["study", "show", "3"], {"action": "show", "id": 3, "json": False}),
    (["study", "cancel", "4", "--url", URL], {"action": "cancel", "id": 4, "url": URL}),
])
def test_real_parser_reads_each_study_action(argv, expected):
    args = cli.build_parser().parse_args(argv)
    assert args.command == "study" and cli.COMMANDS["study"][0] == "descent.commands.client_cmds"
    for key, value in expected.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize("argv", [["study"], ["study", "show", "x"], ["study", "create"], ["study", "rm", "1"]])
def test_real_parser_rejects_bad_study_arguments(argv):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_a_tournament_file_loses_its_kind_and_a_search_file_has_none(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"kind": "tournament", "base": BASE, "solvers": ["adam"]}))
    (tmp_path / "s.json").write_text(json.dumps(SEARCH))
    assert load_study(tmp_path / "t.yaml") == ("tournament", {"base": BASE, "solvers": ["adam"]})
    assert load_study(tmp_path / "s.json") == ("search", SEARCH)


@pytest.mark.parametrize("name, text, message", [
    ("bad.yaml", "name: x\nbase: [1, 2\n", r"bad.yaml:3:1: "),
    ("bad.json", '{"name": "x",\n  "base": }', r"bad.json:2:11: Expecting value"),
    ("two.yaml", "- {base: {}}\n- {base: {}}\n", "one study, not a list of 2"),
    ("kind.yaml", "kind: sweep\nbase: {}\n", "kind must be one of search, tournament, got 'sweep'"),
    ("nobase.yaml", "name: x\n", "needs a `base:` mapping"),
])
def test_a_bad_study_file_is_one_line_naming_where(tmp_path, capsys, api, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(SpecFileError, match=message):
        load_study(tmp_path / name)
    fake = api()
    code, out, err = descent(capsys, "study", "create", str(tmp_path / name))
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(tmp_path / name) in err
    assert not fake.requests  # nothing sent


def test_the_example_tournament_is_a_valid_twelve_trial_grid():
    from core.spec import ExperimentSpec
    from core.studies.grid import grid_size
    from core.studies.tournament import tournament

    kind, body = load_study(ROOT / "examples" / "studies" / "tournament.yaml")
    assert kind == "tournament" and body["base"]["split"]["dataset"] == "iris"
    base = {k: v for k, v in body.pop("base").items() if k != "split"} | {"split_id": 1}
    ExperimentSpec.model_validate(base)
    spec = tournament(base, **body)
    assert (grid_size(spec.space), spec.budget.max_trials, spec.pruner.name) == (12, 12, "asha")
    assert spec.objective.metric == "val/accuracy" and spec.objective.mode == "max"


# -- create ---------------------------------------------------------------------------------

def test_create_a_tournament_makes_the_split_sends_the_rest_and_follows_to_the_end(tmp_path, capsys, api):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"kind": "tournament", "base": BASE, "solvers": ["adam", "sgd"],
                                                     "points": 3}))
    running = a_study("running", trials=[trial(0, "running", None), trial(1, "succeeded", 0.9)])
    fake = api(studies=[running, running, a_study()])
    code, out, err = descent(capsys, "study", "create", str(tmp_path / "t.yaml"))
    assert code == 0, err
    assert fake.bodies("/splits") == [{"dataset": "iris", "seed": 0}]
    (sent,) = fake.bodies("/studies/tournament")
    assert sent == {"base": {**{k: v for k, v in BASE.items() if k != "split"}, "split_id": 5},
                    "solvers": ["adam", "sgd"], "points": 3}
    assert all(r.headers.get("Idempotency-Key") for r in fake.requests if r.method == "POST")
    lines = out.splitlines()
    assert lines[0] == "created study 7 (iris solver tournament): 3 trials, 2 at a time"
    # a log gets a line per change, not per poll
    progress = [line for line in lines if line.startswith("study 7 ")]
    assert progress == [
        "study 7 iris solver tournament  1/3 trials  running 1, succeeded 1  best 0.9 val/accuracy ↑ (adam lr=1)",
        "study 7 iris solver tournament  3/3 trials  succeeded 2, pruned 1  "
        "best 0.97 val/accuracy ↑ (adam lr=2)  done",
    ]
    assert "best: trial 2 (experiment 102) adam lr=2: val/accuracy 0.97 at epoch 3" in lines
    assert fake.gets == 3


def test_create_a_search_posts_the_study_spec(tmp_path, capsys, api):
    (tmp_path / "s.json").write_text(json.dumps({**SEARCH, "kind": "search"}))
    fake = api()
    code, out, _ = descent(capsys, "study", "create", str(tmp_path / "s.json"), "--detach")
    assert code == 0
    (sent,) = fake.bodies("/studies")
    assert sent["base"]["split_id"] == 5 and "split" not in sent["base"] and "kind" not in sent
    assert out.splitlines()[-1] == "follow it: descent study show 7"
    assert fake.gets == 0


def test_create_json_prints_the_finished_study(tmp_path, capsys, api):
    (tmp_path / "s.json").write_text(json.dumps(SEARCH))
    api(studies=[a_study("stopped")])
    code, out, _ = descent(capsys, "study", "create", str(tmp_path / "s.json"), "--json")
    assert code == 1  # stopped, not done
    assert json.loads(out[out.index("{"):])["status"] == "stopped"


def test_a_refused_study_is_one_line_naming_the_file(tmp_path, capsys, api):
    (tmp_path / "s.json").write_text(json.dumps(SEARCH))
    api(refuse=(422, [{"loc": ["body", "space"], "msg": "the search space is empty"}]))
    code, out, err = descent(capsys, "study", "create", str(tmp_path / "s.json"))
    assert (code, err) == (1, f"{tmp_path / 's.json'}: space: the search space is empty\n")


def test_ctrl_c_leaves_the_study_running_and_says_how_to_follow_or_cancel(tmp_path, capsys, api, monkeypatch):
    (tmp_path / "s.json").write_text(json.dumps(SEARCH))
    api(studies=[a_study("running", trials=[trial(0, "running", None)])])

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(study.time, "sleep", interrupt)
    code, out, _ = descent(capsys, "study", "create", str(tmp_path / "s.json"))
    assert code == 130
    assert out.splitlines()[-1] == ("detached; study 7 goes on. Follow it: descent study show 7; "
                                    "stop it: descent study cancel 7")


# -- show, ls, cancel -----------------------------------------------------------------------

def test_trials_sort_best_first_with_the_pruned_and_failed_after():
    trials = [trial(0, "failed", None), trial(1, "pruned", 0.99), trial(2, "succeeded", 0.8),
              trial(3, "running", None), trial(4, "succeeded", 0.95), trial(5, "cancelled", 0.7),
              trial(6, "running", 0.9)]
    assert [t["number"] for t in sorted_trials(trials, "max")] == [4, 6, 2, 3, 1, 0, 5]
    assert [t["number"] for t in sorted_trials(trials, "min")] == [2, 6, 4, 3, 1, 0, 5]


def test_show_prints_settings_trials_best_and_importance(capsys, api):
    api(studies=[a_study(importance={"solver.name": 0.25, "solver.base_lr": 0.75}, note="Traceback\nboom")])
    code, out, _ = descent(capsys, "study", "show", "7")
    assert code == 0
    lines = out.splitlines()
    assert lines[:11] == [
        "study:     7 iris solver tournament",
        "kind:      tournament",
        "status:    done",
        "objective: val/accuracy max (best epoch)",
        "strategy:  grid",
        "pruner:    asha (min_resource 1, reduction_factor 3)",
        "budget:    3 trials, 2 at a time, no time limit",
        "split:     5",
        "trials:    3/3 finished: succeeded 2, pruned 1",
        "created:   2026-12-02 20:00:00",
        "finished:  -",
    ]
    assert "note:      boom" in lines
    table = lines[lines.index("note:      boom") + 2:]
    assert table[0].split() == ["#", "EXPERIMENT", "STATUS", "LABEL", "VAL/ACCURACY", "EPOCH"]
    assert [row.split()[0] for row in table[1:4]] == ["2", "0", "1"]
    assert table[1].split() == ["2", "102", "succeeded", "adam", "lr=2", "0.97", "3"]
    assert "best: trial 2 (experiment 102) adam lr=2: val/accuracy 0.97 at epoch 3" in lines
    assert lines[-3:] == ["importance:", "solver.base_lr  0.75", "solver.name     0.25"]


def test_show_json_is_the_apis(capsys, api):
    api()
    code, out, _ = descent(capsys, "study", "show", "7", "--json")
    assert code == 0 and json.loads(out) == a_study()


def test_a_study_without_trials_shows_its_header_alone():
    text = describe(a_study("running", trials=[]))
    assert "trials:    0/3 finished" in text and "best:" not in text and "importance" not in text


def test_ls_is_a_table_with_trials_done_of_max_and_the_best(capsys, api):
    fake = api(studies=[a_study(), a_study("running", trials=[trial(0, "running", None)], id=8, name="lr search")])
    code, out, _ = descent(capsys, "study", "ls")
    assert code == 0
    rows = [line.split("  ") for line in out.splitlines()]
    assert out.splitlines()[0].split() == ["ID", "NAME", "KIND", "STATUS", "TRIALS", "BEST", "CREATED"]
    assert "3/3" in out.splitlines()[1] and "0.97 val/accuracy ↑ (adam lr=2)" in out.splitlines()[1]
    assert "0/3" in out.splitlines()[2] and " - " in out.splitlines()[2]
    assert out.splitlines()[-1] == "(2 of 5; --limit for more)"
    assert len(rows) == 4
    assert dict(fake.requests[0].url.params) == {"limit": "50", "offset": "0"}


def test_ls_json_prints_the_items(capsys, api):
    api()
    code, out, _ = descent(capsys, "study", "ls", "--json", "--project", "2")
    assert code == 0 and [s["id"] for s in json.loads(out)] == [7]


def test_cancel_says_the_new_status_and_a_finished_study_is_one_line(capsys, api):
    api()
    assert descent(capsys, "study", "cancel", "7") == (0, "study 7: stopped\n", "")
    api(refuse=(409, "study 7 has already finished"))
    code, out, err = descent(capsys, "study", "cancel", "7")
    assert code == 1 and err == f"error: POST {URL}/api/v1/studies/7/cancel -> 409: study 7 has already finished\n"


def test_a_401_is_one_line_naming_the_way_to_sign_in(capsys, monkeypatch):
    refuse = httpx.MockTransport(lambda request: httpx.Response(401, json={"detail": "sign in"}))
    monkeypatch.setattr(client_cmds, "Client", functools.partial(Client, transport=refuse))
    code, _, err = descent(capsys, "study", "ls")
    assert code == 1 and err.startswith(f"not signed in to {URL}")


# -- the progress line ----------------------------------------------------------------------

def test_a_log_gets_a_line_per_change():
    out = io.StringIO()
    display = StudyDisplay(out, interactive=False)
    running = a_study("running", trials=[trial(0, "running", None)])
    for state in (running, running, a_study()):
        display.update(state)
    display.close()
    assert out.getvalue().splitlines() == [progress_line(running), progress_line(a_study())]
    assert "\x1b" not in out.getvalue()


def test_a_terminal_redraws_one_line_with_a_bar():
    out = io.StringIO()
    display = StudyDisplay(out, interactive=True)
    display.update(a_study("running", trials=[trial(0, "running", None), trial(1, "succeeded", 0.9)]))
    display.update(a_study())
    display.close()
    text = out.getvalue()
    assert "\x1b" in text and "3/3 trials" in text and "0.97 val/accuracy" in text
