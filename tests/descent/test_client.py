"""``descent.client`` against the real api (in process, over httpx's ASGI transport, with the
real migrations on SQLite), its SSE parser against the WHATWG examples, and the rule that the
client imports nothing of the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from descent.client import ApiError, Client, Event, NotSignedIn, format_detail, parse_sse

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("api", "store", "worker", "optim", "torch", "migrations", "sqlalchemy", "celery")


def test_client_and_commands_import_nothing_of_the_server():
    """Import the client side with the server's packages made unimportable."""
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {SERVER_PACKAGES!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Block())
        import descent.client, descent.credentials, descent.progress, descent.commands.client_cmds
        from descent.commands import client_cmds, login
        import argparse
        for name in client_cmds._COMMANDS:
            client_cmds.register(name, argparse.ArgumentParser())
        for name in ("login", "logout"):
            login.register(name, argparse.ArgumentParser())
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_the_blocker_really_blocks():
    """The isolation test would pass vacuously if its import hook did nothing."""
    code = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "store":
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Block())
        import store.db
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "blocked: store" in out.stderr


@pytest.mark.parametrize(
    "stream, events",
    [
        # WHATWG HTML "server-sent events" examples: multi-line data joins with \n; comments skip
        (["data: YHOO", "data: +2", "data: 10", ""], [Event("message", "YHOO\n+2\n10")]),
        ([": test stream", "", "data: first event", "id: 1", "", "data:second event", "id", "", "data:  third event", ""],
         [Event("message", "first event"), Event("message", "second event"), Event("message", " third event")]),
        (["event: add", "data: 73857293", "", "event: remove", "data: 2153", ""],
         [Event("add", 73857293), Event("remove", 2153)]),
        # JSON payloads decode; an event with no data dispatches nothing
        (['event: progress', 'data: {"epoch": 2, "status": "running"}', "", "event: ping", ""],
         [Event("progress", {"epoch": 2, "status": "running"})]),
        # an unterminated last event is not dispatched (the spec discards it at end of stream)
        (["data: a", "", "data: b"], [Event("message", "a")]),
    ],
)
def test_parse_sse(stream, events):
    assert list(parse_sse(stream)) == events


@pytest.mark.parametrize(
    "detail, text",
    [
        ([{"loc": ["body", "solver", "adam", "base_lr"], "msg": "Input should be greater than 0"}],
         "solver.adam.base_lr: Input should be greater than 0"),
        ([{"loc": ["query", "ids"], "msg": "bad"}, {"msg": "other"}], "query.ids: bad; other"),
        ("experiment 3 not found", "experiment 3 not found"),
        ({"message": "too many"}, "too many"),
    ],
)
def test_error_details_read_as_one_line_per_problem(detail, text):
    assert format_detail(detail) == text
    assert str(ApiError(422, detail, "POST", "http://x/api/v1/experiments")).endswith(text)


# -- against the real api, served by uvicorn in a thread on an SQLite database with the real migrations,
# -- called with an admin's token --


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import threading

    import uvicorn

    from api.app import create_app
    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from tests.identity import admin_token

    folder = tmp_path_factory.mktemp("api")
    settings = Settings(_env_file=None, data_dir=folder, database_url=None, broker_url=None)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    token = admin_token(make_sessionmaker(engine))
    engine.dispose()
    sent: list[tuple[int, str]] = []
    app = create_app(settings, enqueuer=lambda i, q: sent.append((i, q)), reconcile_interval_s=0,
                     broker_check=lambda: None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, settings, sent, token
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def client(served):
    with Client(served[0], served[3]) as c:
        yield c


def test_without_a_token_the_api_says_only_to_sign_in(served):
    with Client(served[0]) as anonymous:
        assert anonymous.token is None
        with pytest.raises(NotSignedIn) as exc:
            anonymous.experiments()
    assert exc.value.status_code == 401


def _spec(split_id: int, name: str = "adam-run", solver: dict | None = None, tags=("t",)) -> dict:
    return {"name": name, "split_id": split_id, "architecture": {"name": "mlp", "width": 8},
            "solver": solver or {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 2}, "tags": list(tags)}


def test_health_and_catalogs(client):
    assert client.health()["status"] == "ok"
    assert {"adam", "sgd"} <= {s["name"] for s in client.solvers()}
    assert "constant" in {s["name"] for s in client.schedulers()}
    assert "mlp" in {a["name"] for a in client.architectures()}
    iris = next(d for d in client.datasets() if d["name"] == "iris")
    assert iris["n_samples"] == 150  # scikit-learn's iris


def test_split_sizes_follow_the_fractions(client):
    split = client.create_split("iris", strategy="stratified", fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert split["sizes"] == {"train": 90, "val": 30, "test": 30}
    assert client.split(split["id"])["sizes"] == split["sizes"]
    assert [s for s in client.splits() if s["id"] == split["id"]] == [split]


def test_submit_list_filter_cancel_clone_delete(client, served):
    _, _, sent, _ = served
    split = client.create_split("iris", seed=0)
    adam = client.submit(_spec(split["id"], "adam-run", tags=("lr-sweep",)))
    sgd = client.submit(_spec(split["id"], "sgd-run", {"name": "sgd", "base_lr": 0.1}, tags=("other",)))
    assert adam["status"] == sgd["status"] == "queued"
    assert (adam["id"], adam["queue"]) in sent  # enqueued once the record was committed

    assert [e["id"] for e in client.experiments(tag="lr-sweep")] == [adam["id"]]
    assert [e["id"] for e in client.experiments(solver="sgd", split_id=split["id"])] == [sgd["id"]]
    page = client.experiments_page(split_id=split["id"], limit=1)
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["id"] == sgd["id"]  # newest first

    assert client.cancel(adam["id"])["status"] == "cancelled"  # queued: cancelled at once
    with pytest.raises(ApiError) as conflict:
        client.cancel(adam["id"])
    assert conflict.value.status_code == 409

    clone = client.clone(sgd["id"], {"solver": {"base_lr": 0.02}})
    assert clone["id"] not in (adam["id"], sgd["id"])
    assert clone["spec"]["solver"]["base_lr"] == 0.02 and clone["spec"]["solver"]["name"] == "sgd"

    client.delete(adam["id"])
    with pytest.raises(ApiError) as missing:
        client.experiment(adam["id"])
    assert missing.value.status_code == 404


def test_invalid_spec_is_a_422_naming_the_field(client):
    split = client.create_split("iris", seed=0)
    with pytest.raises(ApiError) as exc:
        client.submit(_spec(split["id"], solver={"name": "adam", "base_lr": -1.0}))
    assert exc.value.status_code == 422
    assert "base_lr" in str(exc.value)


def _cli_reads_the_apis_direction(url, token, losses, accuracy, capsys):
    """``descent compare`` names the run with the smallest best loss / largest best accuracy
    (computed here from the points posted), ``descent ls`` each run's best with its arrow."""
    from descent import cli

    ids = [str(i) for i in losses]
    for metric, values, pick in (("val/loss", losses, min), ("val/accuracy", accuracy, max)):
        assert cli.main(["compare", *ids, "--by", metric, "--url", url, "--token", token]) == 0
        winner = pick(values, key=lambda i: pick(values[i]))
        assert capsys.readouterr().out.splitlines()[-1].startswith(f"winner: #{winner} ")
    assert cli.main(["ls", "--best", "val/accuracy", "--url", url, "--limit", "500", "--token", token]) == 0
    lines = capsys.readouterr().out.splitlines()
    for eid in accuracy:
        line = next(x for x in lines if x.split()[0] == str(eid))
        assert f"{max(accuracy[eid]):.4g} val/accuracy ↑" in line


def test_metrics_compare_stream_and_checkpoint(client, served, capsys):
    url, settings, _, token = served
    split = client.create_split("iris", seed=0)
    a, b = (client.submit(_spec(split["id"], n)) for n in ("a", "b"))
    losses = {a["id"]: [1.0, 0.5, 0.7], b["id"]: [0.9, 0.8, 0.6]}
    accuracy = {a["id"]: [0.5, 0.9, 0.8], b["id"]: [0.6, 0.7, 0.95]}
    for eid in losses:
        points = [{"name": "val/loss", "step": s, "epoch": s, "value": v, "wall_time": 1000.0 + s}
                  for s, v in enumerate(losses[eid], 1)]
        points += [{"name": "val/accuracy", "step": s, "epoch": s, "value": v, "wall_time": 1000.0 + s}
                   for s, v in enumerate(accuracy[eid], 1)]
        assert httpx.post(f"{url}/api/v1/experiments/{eid}/metrics", json={"points": points},
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200

    series = client.metrics(a["id"])
    assert series["val/loss"].steps == [1, 2, 3] and series["val/loss"].values == losses[a["id"]]
    assert (series["val/loss"].higher_is_better, series["val/accuracy"].higher_is_better) == (False, True)
    assert client.metrics(a["id"], names=["val/accuracy"]).keys() == {"val/accuracy"}

    summary = {(r["experiment_id"], r["name"]): r for r in client.compare([a["id"], b["id"]])["summary"]}
    for eid in losses:
        loss, acc = summary[(eid, "val/loss")], summary[(eid, "val/accuracy")]
        assert loss["best_value"] == min(losses[eid]) and loss["final_value"] == losses[eid][-1]
        assert acc["best_value"] == max(accuracy[eid])
        assert loss["best_step"] == losses[eid].index(min(losses[eid])) + 1
        assert (loss["higher_is_better"], acc["higher_is_better"]) == (False, True)
    listed = {e["id"]: e["best"] for e in client.experiments(best=["val/accuracy"], limit=500)}
    for eid in accuracy:
        assert listed[eid] == {"name": "val/accuracy", "value": max(accuracy[eid]),
                               "step": accuracy[eid].index(max(accuracy[eid])) + 1, "higher_is_better": True}
    _cli_reads_the_apis_direction(url, token, losses, accuracy, capsys)

    client.cancel(a["id"])  # the stream ends when the run has
    events = list(client.stream(a["id"], timeout=30))
    streamed = {n: s for e in events if e.event == "metrics" for n, s in e.data.items()}
    assert streamed["val/loss"]["values"] == losses[a["id"]]
    assert events[-1].event == "status" and events[-1].data["status"] == "cancelled"

    with pytest.raises(ApiError) as none_yet:
        client.checkpoint(a["id"])
    assert none_yet.value.status_code == 404
    final = settings.checkpoint_path(a["id"], "final")
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"\x80\x02weights")
    assert client.checkpoint(a["id"]) == b"\x80\x02weights"
    assert client.model(a["id"], format="state_dict") == b"\x80\x02weights"
    with pytest.raises(ApiError) as no_program:
        client.model(a["id"])
    assert no_program.value.status_code == 404
    settings.model_path(a["id"]).write_bytes(b"program")
    assert client.model(a["id"]) == b"program"


def test_queue_says_why_a_run_waits_and_the_cli_prints_it(client, served, capsys):
    """No worker beats in this api's database, so a queued cpu run waits for one, and ``descent
    queue`` prints the api's sentence naming the command that starts one, under a row per queue,
    the lab's among them."""
    import json

    from descent import cli

    url, _, _, token = served
    split = client.create_split("iris", seed=0)
    run = client.submit({**_spec(split["id"], "waits"), "training": {"epochs": 1, "device": "cpu"}})
    body = client.queue()
    [mine] = [w for w in body["waiting"] if w["id"] == run["id"]]
    queued = sum(w["queue"] == "cpu" for w in body["waiting"])  # the admin sees every project's runs
    assert body["queues"]["cpu"]["queued"] == queued and body["queues"]["cpu"]["workers"] == 0
    assert mine["cause"] == "no_worker" and "descent worker --queue cpu" in mine["reason"]

    assert cli.main(["queue", "--url", url, "--token", token]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["QUEUE", "QUEUED", "RUNNING", "WORKERS", "IDLE", "OLDEST"]
    lab = body["queues"]["lab"]
    assert next(x for x in lines if x.split()[:1] == ["lab"]).split()[1:5] == [
        str(lab[k]) for k in ("queued", "running", "workers", "idle_workers")]
    line = next(x for x in lines if x.split()[:1] == [str(run["id"])])
    assert line.endswith(mine["reason"])
    assert cli.main(["queue", "--json", "--url", url, "--token", token]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [w["id"] for w in printed["waiting"]] == [w["id"] for w in body["waiting"]]


def test_upload_dataset(client, tmp_path):
    csv = tmp_path / "xor.csv"
    rows = [(x1, x2, int(x1 != x2)) for x1 in (0, 1) for x2 in (0, 1)] * 5
    csv.write_text("x1,x2,target\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    uploaded = client.upload_dataset(csv, name="xor", target="target")
    assert uploaded["n_samples"] == 20
    assert client.dataset(uploaded["id"])["name"] == "xor"


def test_a_dashboard_session_makes_a_token_and_ends(served):
    """What ``descent login`` does: sign in (cookie + CSRF token kept by the client), create a
    token, sign out; the token works on its own, the session does not any more."""
    from tests.identity import PASSWORD

    url = served[0]
    with Client(url, token="") as session:
        me = session.login("admin", PASSWORD)
        assert me["username"] == "admin" and me["csrf_token"]
        created = session.create_token("from a session", expires_in_days=1)
        assert created["token"].startswith("dsc_") and created["prefix"] == created["token"][:12]
        session.logout()
        with pytest.raises(NotSignedIn):
            session.me()
    with Client(url, created["token"]) as by_token:
        assert by_token.me()["username"] == "admin"
        listed = {t["id"]: t for t in by_token.tokens()}
        assert "token" not in listed[created["id"]] and listed[created["id"]]["expires_at"]
        by_token.revoke_token(created["id"])
        with pytest.raises(NotSignedIn):
            by_token.tokens()
