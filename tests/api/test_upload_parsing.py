"""api/datasets/parsing.py: an upload is parsed and stored by a child process, with the same
result and the same errors as parsing it in-process (the oracle), and a child that dies is
replaced."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from api.datasets import parsing
from core.datasets.storage import arrays_digest
from core.datasets.uploads import UploadError, UploadTooLarge, parse_upload

CSV = b"a,b,label\n" + b"".join(f"{i},{i % 7},{'cat' if i % 3 else 'dog'}\n".encode() for i in range(50))


def test_the_child_stores_what_an_in_process_parse_gives(tmp_path):
    stored = parsing.parse_and_store_in_child(tmp_path, "t.csv", CSV, "label", None, 10**6)
    oracle = parse_upload("t.csv", CSV, "label")
    assert stored.digest == arrays_digest(oracle.x, oracle.y)
    assert (stored.n_samples, stored.feature_shape, stored.task) == (len(oracle.x), [2], oracle.task)
    assert stored.class_counts == oracle.class_counts and stored.n_classes == len(oracle.classes)
    with np.load(tmp_path / stored.path_name) as arrays:
        np.testing.assert_array_equal(arrays["x"], oracle.x)
        np.testing.assert_array_equal(arrays["y"], oracle.y)


@pytest.mark.parametrize("filename, data, target, error, field", [
    ("t.csv", CSV, "missing", UploadError, "target"),
    ("t.csv", b"", "label", UploadError, "file"),
    ("t.txt", CSV, "label", UploadError, "file"),
])
def test_errors_cross_the_process_boundary_with_their_field(tmp_path, filename, data, target, error, field):
    with pytest.raises(error) as in_process:
        parse_upload(filename, data, target)
    with pytest.raises(error) as in_child:
        parsing.parse_and_store_in_child(tmp_path, filename, data, target, None, 10**6)
    assert type(in_child.value) is type(in_process.value)
    assert (str(in_child.value), in_child.value.field) == (str(in_process.value), in_process.value.field) == (
        str(in_process.value), field)
    assert not isinstance(in_child.value, UploadTooLarge)


def test_a_child_that_dies_fails_that_upload_clearly_and_the_next_one_works(tmp_path):
    rows = 1_000_000
    big = b"a,b,c,d,label\n" + b"".join(b"%d,%d,%d,%d,%d\n" % (i, i, i, i, i % 2) for i in range(rows))
    parsing.parse_and_store_in_child(tmp_path, "warm.csv", CSV, "label", None, 10**6)  # the child exists
    pool = parsing._executor()
    (pid,) = list(pool._processes)
    outcome: list[BaseException | object] = []

    def upload():
        try:
            outcome.append(parsing.parse_and_store_in_child(tmp_path, "big.csv", big, "label", None, 10**9))
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcome.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.3)  # the parse of ~25 MB takes seconds
    os.kill(pid, signal.SIGKILL)
    thread.join(60)
    (result,) = outcome
    assert isinstance(result, UploadError) and "stopped before it finished" in str(result), result
    again = parsing.parse_and_store_in_child(tmp_path, "t.csv", CSV, "label", None, 10**6)
    assert again.n_samples == 50


def test_the_parsing_process_ends_when_the_api_process_is_killed(tmp_path):
    """uvicorn re-raises SIGTERM after shutting down, so the api may die without its exit hooks:
    its parsing process must not outlive it."""
    import subprocess
    import sys

    script = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from api.datasets import parsing\n"
        f"parsing.parse_and_store_in_child(Path({str(tmp_path)!r}), 't.csv', {CSV!r}, 'label', None, 10**6)\n"
        "print(list(parsing._executor()._processes)[0], flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
