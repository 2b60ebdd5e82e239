"""What the real ``descent`` command says when something is wrong (no api, a spec file it cannot
read, a closed pipe), that ``submit`` submits all of its specs or none, and ``rm``, ``tag``,
``note`` and ``rename`` against a real api (uvicorn in a thread, SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from descent import cli
from descent.client import Client
from tests.descent.running import ROOT, free_port
from tests.descent.test_client import served  # noqa: F401 - the fixture

SPEC = {"name": "ok", "architecture": {"name": "linear"}, "solver": {"name": "sgd"}, "training": {"epochs": 1}}


def descent(*args: str, cwd=ROOT, **popen) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env.update(PYTHONPATH=str(ROOT), **popen.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "descent.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env, **popen)


@pytest.fixture
def api(served):  # noqa: F811 - the imported fixture
    url, _, _, token = served
    with Client(url, token) as client:
        yield url, token, client


@pytest.fixture(scope="module")
def split_id(served):  # noqa: F811
    with Client(served[0], served[3]) as client:
        return client.create_split("iris", seed=14)["id"]


def test_no_api_is_one_line_saying_what_to_run():
    url = f"http://127.0.0.1:{free_port()}"
    out = descent("ls", "--url", url)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == f'no Descent api at {url} — is "descent up" running? use --url or DESCENT_URL\n'


def test_no_api_at_the_address_from_the_environment_names_that_address():
    url = f"http://127.0.0.1:{free_port()}"
    out = descent("show", "1", env={"DESCENT_URL": url})
    assert out.stderr == f'no Descent api at {url} — is "descent up" running? use --url or DESCENT_URL\n'


# (file name, its text, what descent says: the file, line and column of the problem)
BAD_FILES = [
    ("x.yaml", "name: a\nsolver:\n  name: adam\n    base_lr: 1\n", "x.yaml:4:12: mapping values are not allowed here\n"),
    ("x.yml", "name: [a\n", "x.yml:2:1: expected ',' or ']', but got '<stream end>' "
                             "(while parsing a flow sequence)\n"),
    ("x.json", '{"name": "a",\n "x": 1,,}', "x.json:2:9: Expecting property name enclosed in double quotes\n"),
    ("x.json", '{"name": "a"', "x.json:1:13: Expecting ',' delimiter\n"),
    ("x.yaml", "- 1\n- 2\n", "x.yaml: experiment 0 is not a mapping of spec fields (name, split_id, solver, ...)\n"),
]


@pytest.mark.parametrize("name, text, said", BAD_FILES)
def test_a_spec_file_it_cannot_read_is_named_with_line_and_column(tmp_path, name, text, said):
    (tmp_path / name).write_text(text)
    # no api at this address: the files are read before anything is sent
    out = descent("submit", name, "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (1, said)


def test_a_closed_pipe_ends_quietly(api):
    url, token, _ = api
    read, write = os.pipe()
    os.close(read)  # the reader (`head`) has gone before descent writes
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
        out = subprocess.run([sys.executable, "-m", "descent.cli", "ls", "--url", url, "--token", token],
                             stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT,
                             env={**env, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


def test_submit_submits_nothing_when_any_spec_is_refused(tmp_path, api, split_id):
    url, token, client = api
    before = client.experiments_page()["total"]
    (tmp_path / "a.json").write_text(json.dumps({**SPEC, "split_id": split_id}))
    (tmp_path / "typo.yaml").write_text(f"name: typo\nsplit_id: {split_id}\narchitecture: {{name: linear}}\n"
                                        "solver: {name: adma}\ntraining: {epoch: 1}\n")
    out = descent("submit", "a.json", "typo.yaml", "--detach", "--url", url, "--token", token, cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    first, last = out.stderr.splitlines()
    assert first.startswith("typo.yaml: typo: solver: no solver named 'adma'")
    assert "did you mean 'adam'?" in first and "training.epoch: Extra inputs are not permitted; did you mean 'epochs'?" in first
    assert last == "nothing submitted: 1 of 2 specs refused"
    assert client.experiments_page()["total"] == before

    (tmp_path / "b.yaml").write_text(f"name: b\nsplit_id: {split_id}\narchitecture: {{name: linear}}\n"
                                     "solver: {name: adam}\n")
    out = descent("submit", "a.json", "b.yaml", "--detach", "--url", url, "--token", token, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(" (")[1] for line in lines if line.startswith("submitted experiment")] == ["ok)", "b)"]
    # no worker beats in this api's database: each run says so, with the command that starts one
    assert [line.startswith("  warning: no worker serving the 'cpu' queue has been seen") for line in lines] == \
        [False, True, False, True]
    assert client.experiments_page()["total"] == before + 2


def run_cli(capsys, api, *argv: str) -> tuple[int, str, str]:
    url, token, _ = api
    code = cli.main([*argv, "--url", url, "--token", token])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tag_note_and_rename_change_the_run(capsys, api, split_id):
    _, _, client = api
    e = client.submit({**SPEC, "split_id": split_id, "tags": ["old", "keep"]})
    eid = str(e["id"])
    assert run_cli(capsys, api, "tag", eid, "new", "keep", "--remove", "old") == (
        0, f"experiment {eid}: tags keep, new\n", "")
    assert run_cli(capsys, api, "note", eid, "a baseline") == (0, f"experiment {eid}: description set\n", "")
    assert run_cli(capsys, api, "rename", eid, "baseline") == (0, f"experiment {eid}: renamed to baseline\n", "")
    got = client.experiment(e["id"])
    assert (got["name"], got["tags"]) == ("baseline", ["keep", "new"])
    assert (got["spec"]["name"], got["spec"]["tags"], got["spec"]["description"]) == (
        "baseline", ["keep", "new"], "a baseline")


@pytest.mark.parametrize("argv, said", [
    (["tag", "{id}"], "error: name a tag to add, or --remove TAG\n"),
    (["rename", "{id}", ""], "error: PATCH {url}/api/v1/experiments/{id} -> 422: name: String should have at "
                             "least 1 character\n"),
    (["tag", "999999", "x"], "error: GET {url}/api/v1/experiments/999999 -> 404: experiment 999999 does not exist\n"),
])
def test_a_bad_edit_is_one_line(capsys, api, split_id, argv, said):
    url, _, client = api
    eid = str(client.submit({**SPEC, "split_id": split_id})["id"])
    code, out, err = run_cli(capsys, api, *[a.format(id=eid) for a in argv])
    assert (code, out, err) == (1, "", said.format(id=eid, url=url))


def test_rm_deletes_finished_runs_and_says_to_cancel_a_live_one(capsys, api, split_id):
    _, _, client = api
    live = client.submit({**SPEC, "split_id": split_id})["id"]
    done = client.submit({**SPEC, "split_id": split_id})["id"]
    client.cancel(done)
    code, out, err = run_cli(capsys, api, "rm", str(live), str(done))
    assert (code, out) == (1, f"experiment {done}: deleted\n")
    assert err == (f"experiment {live}: not deleted: experiment {live} is queued: cancel it before deleting; "
                   f"stop it with `descent cancel {live}`, then `descent rm {live}` again\n")
    assert {e["id"] for e in client.experiments(limit=500)} & {live, done} == {live}
