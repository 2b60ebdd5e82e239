"""Disks that refuse writes, made for real: a small tmpfs filled to the last byte (ENOSPC) and a
read-only bind mount (EROFS).  Mounting needs root with the privilege to mount, which CI may
lack: a read-only folder then falls back to ``chmod 500`` (refused with EACCES for a user other
than root) or ``chattr +i`` (EPERM); where nothing works the one test that needs it is skipped
with the reason, never the whole file.  Each gives its writes back (``restore()``) and takes
them again (``refuse()``), and is undone on exit."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class RefusingDisk:
    """``folder`` refuses writes with one of ``codes`` (made by ``how``)."""

    folder: Path
    codes: tuple[int, ...]
    how: str
    refuse: Callable[[], None]
    restore: Callable[[], None]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(errno.errorcode[c] for c in self.codes)


def _run(*command: str) -> str | None:
    """None when ``command`` succeeded, else why it did not."""
    if shutil.which(command[0]) is None:
        return f"`{command[0]}` is not installed"
    done = subprocess.run(command, capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip() or f"exit {done.returncode}"


def _must(why: str | None) -> None:
    assert why is None, why


def _remount(folder: Path, mode: str) -> None:
    _must(_run("mount", "-o", f"remount,{mode},bind", str(folder)))


def _unmount(folder: Path) -> None:
    if _run("umount", str(folder)) is not None:
        _run("umount", "-l", str(folder))  # something still holds it open: detach now, free later


def _fill(folder: Path) -> None:
    """Write ``folder``'s disk full (its files named ``.filler-*``)."""
    filler = folder / f".filler-{uuid.uuid4().hex}"
    chunk = b"\0" * 65536
    with contextlib.suppress(OSError), open(filler, "wb") as file:  # closing flushes into the full disk too
        while True:
            file.write(chunk)
            file.flush()
    with contextlib.suppress(OSError), open(filler, "ab") as file:  # the last partial page
        while True:
            file.write(b"\0")
            file.flush()
    assert os.statvfs(folder).f_bavail == 0, "the disk did not fill"


def _empty(folder: Path) -> None:
    for filler in folder.glob(".filler-*"):
        filler.unlink()


@contextlib.contextmanager
def full_disk(folder: Path, size: str = "1m") -> Iterator[RefusingDisk]:
    """``folder`` (made if missing, must be empty) on a tmpfs of ``size`` with no byte free;
    ``restore()`` deletes the filler."""
    folder.mkdir(parents=True, exist_ok=True)
    why = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    if why is not None:
        pytest.skip(f"cannot mount a small tmpfs to fill ({why}); run the drills as root with the privilege to mount")
    try:
        _fill(folder)
        yield RefusingDisk(folder, (errno.ENOSPC,), "a full tmpfs", lambda: _fill(folder), lambda: _empty(folder))
    finally:
        _unmount(folder)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[RefusingDisk]:
    """``folder`` (made if missing) refusing writes: a read-only bind mount of itself, else
    (no privilege to mount) ``chmod 500`` for a user other than root, else ``chattr +i``."""
    folder.mkdir(parents=True, exist_ok=True)
    tried = []
    why = _run("mount", "--bind", str(folder), str(folder))
    if why is None:
        try:
            why = _run("mount", "-o", "remount,ro,bind", str(folder))
            if why is None:
                yield RefusingDisk(folder, (errno.EROFS,), "a read-only bind mount",
                                   lambda: _remount(folder, "ro"), lambda: _remount(folder, "rw"))
                return
        finally:
            _unmount(folder)
    tried.append(f"read-only bind mount: {why}")
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield RefusingDisk(folder, (errno.EACCES,), "chmod 500", lambda: folder.chmod(0o500),
                               lambda: folder.chmod(0o700))
        finally:
            folder.chmod(0o700)
        return
    tried.append("chmod 500: root writes regardless")
    why = _run("chattr", "+i", str(folder))
    if why is None:
        try:
            yield RefusingDisk(folder, (errno.EPERM, errno.EACCES), "chattr +i",
                               lambda: _must(_run("chattr", "+i", str(folder))),
                               lambda: _must(_run("chattr", "-i", str(folder))))
        finally:
            _run("chattr", "-i", str(folder))
        return
    tried.append(f"chattr +i: {why}")
    pytest.skip("cannot make a folder refuse writes here: " + "; ".join(tried))


REFUSING = {"full": full_disk, "read-only": read_only}


def temporary_files(folder: Path) -> list[Path]:
    """The ``.tmp`` files left anywhere under ``folder`` (should be none)."""
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))
