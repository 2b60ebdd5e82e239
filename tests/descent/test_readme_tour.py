"""The README's tour, command by command as written there, against a real ``descent up`` with its
one worker: every ``descent …`` line of the tour's shell blocks is read from README.md itself and
run as a person would (in the repository, the token ``up`` saved, ``DESCENT_URL`` naming the
test's port), so the tour cannot drift from what the CLI does.  What the text around the
commands promises is checked too: the second iris run waits for the one worker and says why,
the detached run can still be cancelled, and both iris runs train to a convincing accuracy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from descent.client import Client
from tests.descent.running import ROOT, Up, free_port

pytestmark = pytest.mark.integration


def tour_commands() -> list[str]:
    """The ``descent`` lines of the shell blocks between "## A tour" and "### From Python"."""
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A tour"):text.index("### From Python")]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith("descent ") and not command.startswith("descent up"):
                lines.append(command)
    return lines


def python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### From Python"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_tour_lists_the_commands_it_explains():
    commands = tour_commands()
    assert commands[0] == "descent submit examples/iris-adam.yaml examples/iris-sgd.json"
    assert {c.split()[1] for c in commands} >= {"submit", "ls", "show", "compare", "logs", "queue", "cancel", "rm",
                                                 "datasets", "splits"}


def test_the_readme_tour_works_as_written(tmp_path):
    up = Up(tmp_path, free_port())
    try:
        up.wait_ready()
        env = {**up.env, "DESCENT_URL": up.url}
        outputs = {}
        for command in tour_commands():
            ran = subprocess.run([sys.executable, "-m", "descent.cli", *shlex.split(command)[1:]], cwd=ROOT,
                                 env=env, capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}\n{up.output()[-3000:]}"
            outputs[command] = ran.stdout

        submitted = outputs["descent submit examples/iris-adam.yaml examples/iris-sgd.json"]
        assert submitted.splitlines()[:2] == ["submitted experiment 1 (iris-adam-cosine)",
                                             "submitted experiment 2 (iris-sgd-cosine)"]
        # one worker: the second run waited, and its line said why
        assert "#2 iris-sgd-cosine" in submitted and "queued: the one worker on the 'cpu' queue is busy" in submitted
        with Client(up.url, up.token) as client:
            first = client.experiment(1)
            assert first["status"] == "succeeded" and first["name"] == "iris-adam-baseline"
            assert "baseline" in first["tags"] and first["spec"]["description"] == "lr sweep baseline"
            accuracy = client.metrics(1, names=["test/accuracy"])["test/accuracy"]
            assert accuracy.values[-1] >= 0.9
            assert sorted(e["id"] for e in client.experiments()) == [1, 3]  # 2 removed by the tour's last line
            cancelled = client.wait(3, timeout=60)  # the detached run, cancelled while it trained or queued
            assert cancelled["status"] == "cancelled"
            assert any(d["name"] == "flowers" for d in client.datasets())
            assert any(s["dataset"] != "iris" for s in client.splits())
        example = python_example().replace('"http://gpu-box:8000"', repr(up.url))
        ran = subprocess.run([sys.executable, "-c", example], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{up.output()[-3000:]}"
        status, _, _, accuracy = ran.stdout.splitlines()[-1].split()
        assert status == "succeeded" and float(accuracy) >= 0.9  # the README says ~0.94

        # the detached run was still live when cancelled
        assert outputs["descent cancel 3"] in ("experiment 3: cancelled\n",
                                               "experiment 3: running (the worker stops it at the next step, "
                                               "within about 0.25 s)\n")
    finally:
        up.kill()
