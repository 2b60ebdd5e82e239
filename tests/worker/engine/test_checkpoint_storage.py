"""Checkpoint writes on disks that refuse them, for real (a full tmpfs, a read-only mount): the OS
error is named in words and by its errno name instead of torch's C++ text, a write is retried
exactly once, the previous file survives a failed write and no temporary file is left."""

from __future__ import annotations

import errno

import pytest
import torch

from tests.drills.disks import REFUSING, full_disk, temporary_files
from worker.engine import checkpoint

FOLDER = "DESCENT_DATA_DIR"


@pytest.mark.parametrize(("code", "described", "remedy"), [
    (errno.ENOSPC, "no space left on device (ENOSPC)", "free space in DESCENT_DATA_DIR"),
    (errno.EACCES, "permission denied (EACCES)", "let the worker's user write to DESCENT_DATA_DIR"),
    (errno.EROFS, "read-only file system (EROFS)", "mount DESCENT_DATA_DIR read-write"),
    (errno.EDQUOT, "disk quota exceeded (EDQUOT)",
     "free space in DESCENT_DATA_DIR or raise the quota of the worker's user"),
    (errno.EIO, "input/output error (EIO)", "check that DESCENT_DATA_DIR is writable and its disk healthy"),
    (4242, "unknown error 4242 (errno 4242)", "check that DESCENT_DATA_DIR is writable and its disk healthy"),
    (None, "an error the operating system did not name",
     "check that DESCENT_DATA_DIR is writable and its disk healthy"),
], ids=["ENOSPC", "EACCES", "EROFS", "EDQUOT", "EIO-not-in-the-table", "unknown-number", "none"])
def test_an_os_error_is_described_in_words_with_its_name_and_what_to_do(code, described, remedy):
    assert checkpoint.describe(code) == described
    assert checkpoint.remedy(code, FOLDER) == remedy


def test_the_errno_is_found_along_the_chain_torch_raises(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0") from None
    except RuntimeError as exc:
        wrapped = exc
    assert wrapped.__cause__ is None and checkpoint.error_code(wrapped, tmp_path) == errno.ENOSPC


@pytest.mark.parametrize("kind", list(REFUSING))
def test_without_an_errno_the_folder_itself_names_the_cause(kind, tmp_path):
    healthy = tmp_path / "healthy"
    bare = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert checkpoint.error_code(bare, healthy / "not" / "made" / "yet") is None
    with REFUSING[kind](tmp_path / kind) as disk:
        assert checkpoint.error_code(bare, disk.folder / "42") in disk.codes


@pytest.mark.parametrize("kind", list(REFUSING))
def test_a_refused_write_names_path_and_cause_keeps_the_previous_file_and_leaves_no_temporary(kind, tmp_path,
                                                                                             monkeypatch):
    pauses = []
    monkeypatch.setattr(checkpoint.time, "sleep", pauses.append)
    path = tmp_path / kind / "7" / "last.pt"
    with REFUSING[kind](path.parent) as disk:
        disk.restore()
        checkpoint.save(path, {"step": 1})
        disk.refuse()
        with pytest.raises(checkpoint.StorageError) as raised:
            checkpoint.save(path, {"step": 2, "weights": torch.zeros(10_000)})
        error = raised.value
        assert error.path == path and error.code in disk.codes
        assert str(error) == f"could not write {path}: {checkpoint.describe(error.code)}"
        assert "enforce fail" not in str(error)
        assert pauses == [checkpoint.RETRY_DELAY_S]  # tried twice, once after one pause
        assert checkpoint.load(path)["step"] == 1
        assert temporary_files(path.parent) == []


def test_a_write_refused_once_succeeds_on_its_retry(tmp_path, monkeypatch):
    path = tmp_path / "disk" / "final.pt"
    with full_disk(path.parent) as disk:
        # the pause between the two tries is when the space comes back (a cleanup, a log rotation)
        monkeypatch.setattr(checkpoint.time, "sleep", lambda _: disk.restore())
        checkpoint.write_atomically(path, {"w": torch.arange(20_000.0)})
        assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(20_000.0))
        assert temporary_files(path.parent) == []
