"""``descent up`` for real: a subprocess on a free port in a temporary folder, two experiments
submitted through the CLI and trained by its worker, the compare table checked against the raw
metric series, a clean stop on SIGINT, and a restart on the same folder that finds everything.

From an empty folder it needs no manual step: the CLI and the client find the token ``up``
saved (no ``--token``, no ``descent login``), and the printed one-time link signs a browser in."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from descent.client import Client
from tests.descent.running import ROOT, Up, free_port

pytestmark = pytest.mark.integration

EPOCHS = 3


def spec(name: str, solver: dict) -> dict:
    return {
        "name": name,
        "split": {"dataset": "iris", "seed": 0},
        "architecture": {"name": "mlp", "depth": 1, "width": 16},
        "solver": solver,
        "training": {"epochs": EPOCHS, "batch_size": 16, "seed": 0, "device": "cpu"},
        "tags": ["e2e"],
    }


def descent(*args: str, env: dict[str, str], timeout: float = 120, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """``descent ARGS`` in the environment of a person's shell (``Up.env``: no token given)."""
    return subprocess.run(
        [sys.executable, "-m", "descent.cli", *args], capture_output=True, text=True, timeout=timeout,
        cwd=cwd or ROOT, env=env,
    )


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_trains_compares_stops_and_restarts_with_its_data(tmp_path):
    port = free_port()
    (tmp_path / "adam.yaml").write_text(yaml.safe_dump(spec("e2e-adam", {"name": "adam", "base_lr": 0.01})))
    (tmp_path / "sgd.json").write_text(json.dumps(spec("e2e-sgd", {"name": "sgd", "base_lr": 0.05, "momentum": 0.9})))

    first = Up(tmp_path, port)
    try:
        first.wait_ready()
        for label in ("api", "docs", "dashboard"):
            printed = first.printed(label)
            assert printed.startswith(f"http://127.0.0.1:{port}/")
            if label == "docs":
                assert httpx.get(printed, timeout=10).status_code == 200
        check_login_link(first.printed("login"), first.url)
        check_secret_files(first)
        saved = first.token

        submitted = descent("submit", "adam.yaml", "sgd.json", "--url", first.url, "--poll", "0.2", cwd=tmp_path,
                            env=first.env, timeout=240)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr + first.output()
        ids = [int(line.split()[2]) for line in submitted.stdout.splitlines() if line.startswith("submitted experiment")]
        assert len(ids) == 2
        assert submitted.stdout.count("succeeded") >= 2

        with Client(first.url, first.token) as client:
            runs = {i: client.experiment(i) for i in ids}
            assert {r["status"] for r in runs.values()} == {"succeeded"}
            assert runs[ids[0]]["split_id"] == runs[ids[1]]["split_id"]  # one split made for both
            series = {i: client.metrics(i) for i in ids}
        for i in ids:
            assert series[i], f"experiment {i} recorded no metrics"

        compared = descent("compare", *map(str, ids), "--url", first.url, env=first.env)
        assert compared.returncode == 0, compared.stderr
        check_compare_table(compared.stdout, ids, series)

        listed = descent("ls", "--url", first.url, "--tag", "e2e", env=first.env)
        assert listed.returncode == 0 and all(f"e2e-{s}" in listed.stdout for s in ("adam", "sgd"))
        logs = descent("logs", str(ids[0]), "--url", first.url, env=first.env)
        assert logs.returncode == 0 and "succeeded" in logs.stdout and "STEP" in logs.stdout
        shown = descent("show", str(ids[1]), "--url", first.url, env=first.env)
        assert shown.returncode == 0 and "succeeded" in shown.stdout and "sgd" in shown.stdout, shown.stdout

        detach_then_cancel(tmp_path, first.url, first.env, first.token)

        assert first.interrupt() == 0, first.output()
    finally:
        first.kill()
    assert port_closed(port)
    assert (tmp_path / "data" / "descent.db").exists()

    second = Up(tmp_path, port)
    try:
        second.wait_ready()
        assert second.token == saved  # a token that still works is kept
        check_login_link(second.printed("login"), second.url)  # a new link on every start
        with Client(second.url, second.token) as client:
            again = {e["id"]: e for e in client.experiments(tag="e2e")}
            assert set(again) == set(ids)
            assert {e["status"] for e in again.values()} == {"succeeded"}
            for i in ids:
                assert client.metrics(i) == series[i]
        assert second.interrupt() == 0, second.output()
    finally:
        second.kill()


def check_login_link(link: str, url: str) -> None:
    """The printed link signs a browser-less client in once (303 to the dashboard with the
    session cookie, then ``/me`` answers); the same link a second time signs nobody in."""
    assert link.startswith(f"{url}/api/v1/auth/link?code=")
    with httpx.Client(timeout=10) as browser:
        assert browser.get(f"{url}/api/v1/me").status_code == 401
        first = browser.get(link)
        assert first.status_code == 303 and first.headers["location"] == "/", first.text
        assert "descent_session" in browser.cookies
        me = browser.get(f"{url}/api/v1/me")
        assert me.status_code == 200 and me.json()["username"] == "admin" and me.json()["is_admin"], me.text
    with httpx.Client(timeout=10) as other_browser:
        again = other_browser.get(link)
        assert again.status_code == 303 and again.headers["location"] != "/", again.headers
        assert "descent_session" not in other_browser.cookies
        assert other_browser.get(f"{url}/api/v1/me").status_code == 401


def check_secret_files(up: Up) -> None:
    """The token ``up`` saved is readable by its owner only, in the data folder and the token file."""
    for path in (up.data_dir / "admin.token", up.tokens_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert up.tokens_file.parent.stat().st_mode & 0o777 == 0o700
    assert (up.data_dir / "admin.token").read_text().strip() == up.token
    assert up.token.startswith("dsc_")


def detach_then_cancel(folder: Path, url: str, env: dict[str, str], token: str) -> None:
    """Ctrl-C in ``descent submit`` detaches: the command ends, the run goes on; then
    ``descent cancel`` stops it and the worker records it as cancelled."""
    long_run = spec("e2e-long", {"name": "sgd", "base_lr": 0.01})
    long_run["training"]["epochs"] = 100_000
    long_run["tags"] = ["e2e-long"]  # kept apart from the two runs the restart checks
    (folder / "long.json").write_text(json.dumps(long_run))
    follower = subprocess.Popen(
        [sys.executable, "-m", "descent.cli", "submit", "long.json", "--url", url, "--poll", "0.2"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    with Client(url, token) as client:
        deadline = time.monotonic() + 120
        long = None
        while time.monotonic() < deadline:
            long = next(iter(client.experiments(status="running")), None)
            if long is not None:
                break
            assert follower.poll() is None, follower.communicate()[0]
            time.sleep(0.2)
        assert long is not None and long["name"] == "e2e-long", "the long run never started"
        follower.send_signal(signal.SIGINT)
        out, _ = follower.communicate(timeout=30)
        assert follower.returncode == 130 and "detached; the run goes on" in out, out
        time.sleep(1.0)
        assert client.experiment(long["id"])["status"] == "running"  # detaching stopped nothing

        cancelled = descent("cancel", str(long["id"]), "--url", url, env=env)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        deadline = time.monotonic() + 60
        while client.experiment(long["id"])["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.experiment(long["id"])["status"] == "cancelled"


def check_compare_table(text: str, ids: list[int], series: dict) -> None:
    """Every metric row marks the run whose raw series holds the best value (the largest or the
    smallest as the api's ``higher_is_better`` for the series says), computed here from the
    points, not from the api's summary."""
    lines = text.strip().splitlines()
    header, rows = lines[0], [line for line in lines[1:] if not line.startswith("winner:")]
    assert lines[-1].startswith("winner: #")
    columns = [header.index(f"#{i} ") for i in ids]
    metrics = {m for m in set(series[ids[0]]) & set(series[ids[1]]) if m.rsplit("/", 1)[-1] in ("loss", "accuracy")}
    assert metrics
    seen = set()
    for row in rows:
        name = row.split()[0]
        if name not in metrics:
            continue
        higher = series[ids[0]][name].higher_is_better  # the api's direction, as the CLI reads it
        bests = {i: (max if higher else min)(v for v in series[i][name].values if v == v) for i in ids}
        target = (max if higher else min)(bests.values())
        expected = min(i for i in ids if bests[i] == target)
        cells = [row[c:(columns[k + 1] if k + 1 < len(columns) else None)] for k, c in enumerate(columns)]
        starred = [i for i, cell in zip(ids, cells) if "*" in cell]  # only a best cell carries the mark
        assert starred == [expected], (name, row, bests)
        seen.add(name)
    assert seen == metrics
