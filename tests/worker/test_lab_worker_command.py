"""``descent worker --queue lab``: the optimizer lab's worker runs its short jobs in threads of one
process (one imported torch), where a training worker gets a process per training."""

import pytest

from descent.cli import main
from descent.commands.worker import celery_argv


def test_a_lab_worker_with_concurrency_uses_threads():
    argv = celery_argv("lab", 4, "lab@host", "INFO")
    assert argv[argv.index("-Q") + 1] == "lab"
    assert argv[argv.index("--pool"):argv.index("--pool") + 4] == ["--pool", "threads", "--concurrency", "4"]


def test_a_training_worker_with_concurrency_keeps_processes():
    argv = celery_argv("cpu", 4, "cpu@host", "INFO")
    assert argv[argv.index("--pool") + 1] == "prefork"


def test_the_cli_accepts_the_lab_queue_and_names_it_in_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["worker", "--help"])
    assert done.value.code == 0
    assert "{gpu,cpu,lab}" in capsys.readouterr().out
