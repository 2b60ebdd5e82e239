"""The pieces of the client commands that need no server: argument parsing through the real
``descent`` parser, spec files, the compare table's winner, the progress display, and
``descent up``'s environment and port checks."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
import yaml

from core.metrics import higher_is_better
from descent import cli
from descent.commands import client_cmds, up
from descent.commands.compare import render_compare
from descent.commands.formatting import table
from descent.commands.listing import best_text
from descent.commands.specs import load_specs
from descent.progress import LiveDisplay, RunState, format_line, format_metric

CLIENT_COMMANDS = ("submit", "ls", "show", "compare", "cancel", "logs", "queue")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["submit", "a.yaml", "b.json", "--detach"], {"specs": [Path("a.yaml"), Path("b.json")], "detach": True}),
        (["submit", "a.yaml", "--split", "3"], {"split": 3, "detach": False}),
        (["ls", "--status", "running", "--tag", "x"], {"status": "running", "tag": "x", "json": False}),
        (["show", "7", "--json"], {"id": 7, "json": True}),
        (["compare", "1", "2", "3", "--metric", "val_loss"], {"ids": [1, 2, 3], "metrics": ["val_loss"]}),
        (["cancel", "4", "5"], {"ids": [4, 5]}),
        (["logs", "9", "--max-points", "10"], {"id": 9, "max_points": 10}),
        (["queue", "--limit", "5", "--json"], {"limit": 5, "json": True}),
        (["ls", "--url", "http://h:1"], {"url": "http://h:1"}),
        (["up", "--port", "8123", "--data-dir", "d"], {"port": 8123, "data_dir": Path("d"), "host": "127.0.0.1"}),
    ],
)
def test_real_parser_reads_each_subcommand(argv, expected):
    args = cli.build_parser().parse_args(argv)
    assert args.command == argv[0]
    for key, value in expected.items():
        assert getattr(args, key) == value


@pytest.mark.parametrize("argv", [["ls", "--status", "done"], ["show", "x"], ["compare"], ["submit"]])
def test_real_parser_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_every_client_command_is_served_by_the_one_module():
    for name in CLIENT_COMMANDS:
        assert cli.COMMANDS[name][0] == "descent.commands.client_cmds"
        assert name in client_cmds._COMMANDS and name in client_cmds._ARGUMENTS


SPEC = {"name": "a", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "adam", "base_lr": 0.001}}


@pytest.mark.parametrize(
    "filename, dump, content, expected",
    [
        ("one.yaml", yaml.safe_dump, SPEC, [SPEC]),
        ("one.yml", yaml.safe_dump, SPEC, [SPEC]),
        ("one.json", json.dumps, SPEC, [SPEC]),
        ("two.yaml", yaml.safe_dump, [SPEC, {**SPEC, "name": "b"}], [SPEC, {**SPEC, "name": "b"}]),
    ],
)
def test_load_specs(tmp_path, filename, dump, content, expected):
    path = tmp_path / filename
    path.write_text(dump(content))
    assert load_specs(path) == expected


def test_load_specs_rejects_a_list_of_non_mappings(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="not a mapping"):
        load_specs(path)


def test_examples_are_valid_experiment_specs():
    """The shipped examples validate against the api's own spec model once the split is filled."""
    from core.spec import ExperimentSpec

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.y*ml"))
    examples += sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))
    assert len(examples) >= 2
    for path in examples:
        for spec in load_specs(path):
            assert "dataset" in spec["split"]
            ExperimentSpec.model_validate({**{k: v for k, v in spec.items() if k != "split"}, "split_id": 1})


def test_the_tour_examples_differ_only_in_their_solver():
    """The README's tour compares two solvers; anything else that differed would confound it."""
    folder = Path(__file__).resolve().parents[2] / "examples"
    (adam,), (sgd,) = load_specs(folder / "iris-adam.yaml"), load_specs(folder / "iris-sgd.json")
    differing = {k for k in adam.keys() | sgd.keys() if adam.get(k) != sgd.get(k)}
    assert differing == {"name", "description", "solver"}


def _row(eid, name, best, final, step=1, higher=None):
    """A summary row as the api sends it, its direction from the rule the api applies."""
    return {"experiment_id": eid, "name": name, "best_value": best, "best_step": step, "final_value": final,
            "higher_is_better": higher_is_better(name) if higher is None else higher}


@pytest.mark.parametrize(
    "rows, by, winners, champion",
    [
        # losses: the smaller best wins; accuracy and r2: the larger
        ([_row(1, "val/loss", 0.5, 0.6), _row(2, "val/loss", 0.4, 0.7)], None, {"val/loss": 2}, 2),
        ([_row(1, "val/accuracy", 0.9, 0.9), _row(2, "val/accuracy", 0.8, 0.95)], None, {"val/accuracy": 1}, 1),
        ([_row(1, "val/r2", -1.0, 0.0), _row(2, "val/r2", 0.3, 0.2)], None, {"val/r2": 2}, 2),
        # a tie goes to the lower id
        ([_row(2, "train/loss", 0.1, 0.1), _row(1, "train/loss", 0.1, 0.2)], None, {"train/loss": 1}, 1),
        # val/loss decides over more metrics won elsewhere; --by overrides it
        ([_row(1, "val/loss", 0.3, 0.3), _row(2, "val/loss", 0.2, 0.2),
          _row(1, "train/loss", 0.1, 0.1), _row(2, "train/loss", 0.2, 0.2),
          _row(1, "val/accuracy", 0.9, 0.9), _row(2, "val/accuracy", 0.8, 0.8)],
         None, {"val/loss": 2, "train/loss": 1, "val/accuracy": 1}, 2),
        ([_row(1, "val/loss", 0.3, 0.3), _row(2, "val/loss", 0.2, 0.2),
          _row(1, "val/accuracy", 0.9, 0.9), _row(2, "val/accuracy", 0.8, 0.8)],
         "val/accuracy", {"val/loss": 2, "val/accuracy": 1}, 1),
        # a metric one run lacks is starred among the others but cannot decide
        ([_row(1, "val/loss", 0.3, 0.3), _row(2, "test/loss", 0.2, 0.2), _row(1, "train/loss", 0.5, 0.5),
          _row(2, "train/loss", 0.4, 0.4)], None, {"val/loss": 1, "test/loss": 2, "train/loss": 2}, 2),
    ],
)
def test_compare_table_marks_each_metrics_winner(rows, by, winners, champion):
    experiments = {1: {"name": "adam"}, 2: {"name": "sgd"}}
    text = render_compare(rows, experiments, by=by)
    header, _best_final, *lines = text.splitlines()  # each run's id and name, then "best  final" under it
    columns = [header.index("#1 adam"), header.index("#2 sgd")]
    starred = {}
    for line in lines[:-1]:
        cells = [line[columns[0]:columns[1]], line[columns[1]:]]
        starred[line.split()[0]] = [i for i, cell in zip((1, 2), cells) if "*" in cell]
    assert starred == {m: [w] for m, w in winners.items()}
    assert lines[-1].startswith(f"winner: #{champion} ")


@pytest.mark.parametrize("higher, winner", [(True, 2), (False, 1)])
def test_compare_winner_follows_the_apis_direction_not_the_name(higher, winner):
    rows = [_row(1, "val/score", 0.2, 0.2, higher=higher), _row(2, "val/score", 0.8, 0.8, higher=higher)]
    text = render_compare(rows, {1: {"name": "a"}, 2: {"name": "b"}}, by="val/score")
    assert text.splitlines()[-1].startswith(f"winner: #{winner} ")
    assert text.splitlines()[2].startswith("val/score " + ("↑" if higher else "↓"))


@pytest.mark.parametrize("best, text", [
    (None, "-"),
    ({"name": "val/accuracy", "value": 0.95, "step": 3, "higher_is_better": True}, "0.95 val/accuracy ↑"),
    ({"name": "val/loss", "value": 0.125, "step": 9, "higher_is_better": False}, "0.125 val/loss ↓"),
])
def test_ls_shows_the_apis_best_and_its_direction(best, text):
    assert best_text({"best": best}) == text


def test_compare_leaves_diagnostics_out_unless_asked_and_never_stars_them():
    rows = [_row(1, "lr", 0.1, 0.1), _row(2, "lr", 0.01, 0.01), _row(1, "val/loss", 1.0, 1.0),
            _row(2, "val/loss", 2.0, 2.0)]
    experiments = {1: {"name": "adam"}, 2: {"name": "sgd"}}
    assert "\nlr " not in render_compare(rows, experiments)
    full = render_compare(rows, experiments, diagnostics=True)
    lr_line = next(line for line in full.splitlines() if line.startswith("lr "))
    assert "*" not in lr_line


def test_table_aligns_columns():
    text = table(["A", "LONGER"], [["1", "x"], ["12345", "y"]])
    lines = text.splitlines()
    assert [line.index(c) for line, c in zip(lines, ("LONGER", "x", "y"))] == [7, 7, 7]


@pytest.mark.parametrize("value, text", [(0.41234, "0.4123"), (float("nan"), "nan"), (1234567.0, "1.235e+06"), (0.0, "0")])
def test_format_metric(value, text):
    assert format_metric(value) == text


def test_format_line_fits_the_width_and_keeps_the_status():
    run = RunState(7, "adam-iris", "running", epoch=3, epochs=5, progress=0.6,
                   metrics={"val/accuracy": 0.93, "train/loss": 0.41, "z/loss": 1.0, "a/loss": 2.0, "epoch_time": 3.0})
    wide = format_line(run, 200)
    assert wide.startswith("#7 adam-iris") and "epoch 3/5" in wide and wide.endswith("running")
    assert wide.index("train/loss") < wide.index("val/accuracy")
    assert "epoch_time" not in wide and "a/loss" not in wide  # neither train/loss nor a val/ or test/ metric
    narrow = format_line(run, 50)
    assert len(narrow) <= 50 and narrow.endswith("running") and "val/accuracy" not in narrow


def test_display_in_a_log_prints_only_changes():
    out = io.StringIO()
    display = LiveDisplay(out, interactive=False)
    run = RunState(1, "a", "running", epoch=1, epochs=3)
    display.update([run])
    display.update([run])  # nothing new
    run.epoch = 2
    display.update([run])
    run.status = "succeeded"
    display.update([run])
    assert len(out.getvalue().splitlines()) == 3
    assert "\x1b" not in out.getvalue()


def test_display_on_a_terminal_redraws_in_place():
    out = io.StringIO()
    display = LiveDisplay(out, interactive=True)
    runs = [RunState(1, "a"), RunState(2, "b")]
    display.update(runs)
    first = out.getvalue()
    display.update(runs)
    second = out.getvalue()[len(first):]
    display.close()
    assert "\x1b[1A" not in first and "#1 a" in first and "#2 b" in first
    assert second.count("\x1b[1A") == 1 and second.count("#1 a") == 1  # up over the first frame, drawn anew


def test_up_pins_database_and_broker_to_the_data_folder(tmp_path, monkeypatch):
    import sqlite3

    from kombu import Connection
    from sqlalchemy import create_engine

    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path)
    env = up.embedded_environment(Path("d"), {"DESCENT_DATABASE_URL": "postgresql://prod/db", "KEEP": "1"})
    monkeypatch.chdir(tmp_path / "d")  # a child working elsewhere still opens the same two files
    engine = create_engine(env["DESCENT_DATABASE_URL"])
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    engine.dispose()
    with Connection(env["DESCENT_BROKER_URL"]) as connection:
        queue = connection.SimpleQueue("probe")
        queue.put({"sent": 1})
        queue.close()
    assert sorted(p.name for p in (tmp_path / "d").iterdir() if p.suffix == ".db") == ["broker.db", "descent.db"]
    with sqlite3.connect(tmp_path / "d" / "descent.db") as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("probe",)]
    with sqlite3.connect(tmp_path / "d" / "broker.db") as db:
        assert db.execute("SELECT count(*) FROM kombu_message").fetchone() == (1,)
    assert env["DESCENT_BROKER_POLL_INTERVAL"] == "0.1"
    assert up.embedded_environment(tmp_path, {"DESCENT_BROKER_POLL_INTERVAL": "0.5"})["DESCENT_BROKER_POLL_INTERVAL"] == "0.5"
    assert env["DESCENT_DATA_DIR"] == str((tmp_path / "d").resolve())
    assert env["KEEP"] == "1"


def test_up_sees_a_taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not up.port_is_free("127.0.0.1", port)
    assert up.port_is_free("127.0.0.1", port)


def test_up_refuses_a_taken_port(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        args = cli.build_parser().parse_args(["up", "--port", str(s.getsockname()[1]), "--data-dir", str(tmp_path)])
        assert up.run(args) == 1
    assert "is taken" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["submit", "a.yaml"], ["ls"], ["show", "1"], ["compare", "1", "2"], ["cancel", "1"],
                                  ["logs", "1"], ["queue"], ["login"], ["logout"]])
def test_every_command_that_talks_to_the_api_takes_its_address_and_a_token(argv):
    args = cli.build_parser().parse_args([*argv, "--url", "http://h:1"]
                                         + (["--token", "dsc_x"] if argv[0] in CLIENT_COMMANDS else []))
    assert args.url == "http://h:1"
    if argv[0] in CLIENT_COMMANDS:
        assert args.token == "dsc_x"


@pytest.mark.parametrize("argv", [["ls"], ["show", "1"], ["compare", "1", "2"], ["cancel", "1"], ["logs", "1"],
                                  ["queue"], ["submit", "spec.json", "--detach"]])
@pytest.mark.parametrize("token", [None, "dsc_revoked_or_unknown_token"])
def test_a_401_is_one_line_naming_the_way_to_sign_in(tmp_path, monkeypatch, capsys, argv, token):
    import functools

    import httpx

    from descent.client import Client

    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    monkeypatch.chdir(tmp_path)
    refuse = httpx.MockTransport(lambda request: httpx.Response(
        401, json={"detail": "sign in"}, headers={"WWW-Authenticate": "Bearer"}))
    monkeypatch.setattr(client_cmds, "Client", functools.partial(Client, transport=refuse))
    url = "http://127.0.0.1:8123"
    assert cli.main([*argv, "--url", url, *(["--token", token] if token else [])]) == 1
    out = capsys.readouterr()
    assert out.err == (f"not signed in to {url}: run `descent login --url {url}` "
                       "(or pass --token / set DESCENT_TOKEN)\n")
    assert "Traceback" not in out.out


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("", False), ("192.168.1.5", False), ("gpu-box", False), ("::", False),
])
def test_loopback_addresses(host, loopback):
    from descent.commands.hosts import is_loopback

    assert is_loopback(host) is loopback


@pytest.mark.parametrize("argv, env", [
    (["up", "--host", "0.0.0.0"], {}),
    (["up", "--host", "192.168.1.5"], {"DESCENT_ALLOWED_HOSTS": " , "}),
    (["api", "--host", "0.0.0.0"], {}),
])
def test_a_network_address_needs_allowed_host_names(tmp_path, monkeypatch, capsys, argv, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert cli.main([*argv, "--port", "1"]) == 2
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1 and "not a loopback address" in line
    assert ("--allowed-host" if argv[0] == "up" else "DESCENT_ALLOWED_HOSTS") in line
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing started


def test_the_api_on_a_network_address_needs_a_user(tmp_path, monkeypatch, capsys):
    """With allowed host names set, ``descent api`` still refuses a database nobody can sign in
    to; once a user exists it serves (uvicorn replaced by a recorder here)."""
    import uvicorn

    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'descent.db'}"
    upgrade(url)
    monkeypatch.setenv("DESCENT_DATABASE_URL", url)
    monkeypatch.setenv("DESCENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DESCENT_ALLOWED_HOSTS", "gpu-box.example")
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.append(kw["host"]))
    assert cli.main(["api", "--host", "0.0.0.0"]) == 2
    assert "no user to sign in as" in capsys.readouterr().err and served == []
    monkeypatch.setenv("PW", "a good password")
    assert cli.main(["user", "create", "root", "--admin", "--password-env", "PW"]) == 0
    assert cli.main(["api", "--host", "0.0.0.0"]) == 0
    assert served == ["0.0.0.0"]


def test_up_passes_the_allowed_hosts_to_its_children():
    from descent.commands.hosts import allowed_hosts

    names = allowed_hosts(["gpu-box.example", "localhost", "10.0.0.7"]).split(",")
    assert names[:4] == ["127.0.0.1", "localhost", "::1", "[::1]"]  # core.settings.LOOPBACK_HOSTS first
    assert names[4:] == ["gpu-box.example", "10.0.0.7"]  # then the others, once each


@pytest.mark.parametrize("host, urls", [
    ("127.0.0.1", ["http://127.0.0.1:8000", "http://localhost:8000"]),
    ("0.0.0.0", ["http://127.0.0.1:8000", "http://localhost:8000"]),
    ("localhost", ["http://localhost:8000", "http://127.0.0.1:8000"]),
    ("192.168.1.5", ["http://192.168.1.5:8000"]),
    ("::1", ["http://[::1]:8000"]),
])
def test_up_saves_its_token_for_each_address_it_is_reached_by(host, urls):
    assert up.local_urls(host, 8000) == urls


@pytest.mark.parametrize("times, allowed", [
    ([0, 1, 2, 3, 4], [True] * 5),
    ([0, 1, 2, 3, 4, 5], [True] * 5 + [False]),  # a sixth exit within a minute: it is crashing
    ([0, 1, 2, 3, 4, 61], [True] * 6),  # the first left the window
])
def test_up_restarts_a_worker_unless_it_keeps_exiting(times, allowed):
    from descent.commands.up import WorkerRestarts

    restarts = WorkerRestarts(limit=5, window_s=60)
    assert [restarts.allow(t) for t in times] == allowed
