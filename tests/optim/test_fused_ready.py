"""``optim._fused.ready`` never waits for a compiler: true once the extension is loaded here or
sits built on disk (then loaded), false while it is not built, built with other flags, older
than its source, being built (another process holding the build lock, or this process's
thread); a lock a killed process left is no lock (the kernel releases the flock with its holder,
and the torch lock file it leaves is removed), and a wait for another's build is bounded.  Builds
are replaced by a fake that records calls, so no test here compiles anything."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from optim import _fused

LOADED = object()  # what the fake build returns in place of torch.ops.descent_fused


@pytest.fixture(scope="module")
def real_build() -> str:
    """The build directory of the real extension, built (once per machine) or loaded."""
    assert _fused.warm(), "the fused CPU kernel does not build on this machine"
    return _fused._build_directory()


@pytest.fixture
def fresh_process(monkeypatch, tmp_path):
    """This process as if it had never built nor loaded the extension, with an empty extension
    cache at tmp_path; the fake ``_build`` records its calls.  The real outcome is asked again
    afterwards (a load of the real cache: milliseconds)."""
    calls: list[str] = []

    def fake_build():
        calls.append(os.environ["TORCH_EXTENSIONS_DIR"])
        return LOADED

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(_fused, "_build", fake_build)
    _fused._build_outcome.cache_clear()
    yield calls
    _fused._build_outcome.cache_clear()


def _copy(real_build: str) -> str:
    target = _fused._build_directory()  # under the test's TORCH_EXTENSIONS_DIR
    shutil.rmtree(target)
    shutil.copytree(real_build, target)  # copy2: the files keep their times, as ninja compares them
    return target


def test_loaded_in_this_process_is_ready(real_build):
    assert _fused.ready()


def test_nothing_on_disk_is_not_ready_and_builds_nothing(real_build, fresh_process):
    started = time.perf_counter()
    assert not _fused.ready()
    assert fresh_process == [] and time.perf_counter() - started < 1.0
    assert not _fused._tried()  # a later warm() still builds


def test_built_on_disk_is_loaded_and_ready(real_build, fresh_process):
    _copy(real_build)
    assert _fused.ready()
    assert len(fresh_process) == 1  # loaded once; asked again it answers from memory
    assert _fused.ready() and len(fresh_process) == 1


@pytest.mark.parametrize(
    "change", ["lock", "older_than_source", "other_flags", "earlier_flags", "no_openmp_link", "no_library",
               "object_gone"],
)
def test_a_build_that_would_compile_is_not_ready(real_build, fresh_process, change):
    """What ``cpp_extension.load`` would (re)build from, or wait on: each is refused."""
    target = _copy(real_build)
    library = os.path.join(target, f"{_fused.EXTENSION}.so")
    holder = None
    if change == "lock":  # another process is building: it holds the build lock
        holder = _hold_build_lock(target)
    elif change == "older_than_source":
        then = os.path.getmtime(_fused.SOURCE) - 60
        os.utime(library, (then, then))
    elif change == "other_flags":  # a newer version of the flags: torch rewrites build.ninja and rebuilds
        rules = os.path.join(target, "build.ninja")
        with open(rules) as file:
            text = file.read()
        with open(rules, "w") as file:
            file.write(text.replace(" ".join(_fused.CFLAGS), "-O2"))
    elif change in ("earlier_flags", "no_openmp_link"):  # a build from before -fopenmp (-fopenmp-simd holds it as text)
        rules = os.path.join(target, "build.ninja")
        with open(rules) as file:
            lines = file.read().splitlines()
        key, old = ("cflags", "-fopenmp-simd") if change == "earlier_flags" else ("ldflags", "")
        lines = [line.replace(" -fopenmp", f" {old}".rstrip()) if line.startswith(f"{key} =") else line
                 for line in lines]
        with open(rules, "w") as file:
            file.write("\n".join(lines) + "\n")
    elif change == "no_library":
        os.remove(library)
    elif change == "object_gone":  # ninja itself would rebuild
        os.remove(os.path.join(target, "_fused_cpu.o"))
    try:
        assert not _fused.ready()
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    assert fresh_process == []


def _hold_build_lock(directory: str) -> subprocess.Popen:
    """Another process holding the build directory's flock (as while it builds) until killed."""
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, os.path.join(directory, _fused.BUILD_LOCK)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_build_in_progress_in_this_process_is_not_waited_for(real_build, fresh_process):
    _copy(real_build)
    with _fused._lock:  # as a warm-up thread holds it while it builds
        done = []
        asker = threading.Thread(target=lambda: done.append(_fused.ready()))
        asker.start()
        asker.join(timeout=5)
        assert done == [False]
    assert fresh_process == []


@pytest.mark.parametrize("torch_lock_left", [True, False], ids=["torch-lock-left", "flock-only"])
def test_a_process_killed_holding_the_lock_leaves_no_lock(real_build, fresh_process, torch_lock_left):
    """kill -9 of a process mid-build or mid-load: the kernel releases its flock; torch's lock file,
    which torch would wait on for ever, is removed by the next load, which runs at once."""
    target = _copy(real_build)
    holder = _hold_build_lock(target)
    if torch_lock_left:
        open(os.path.join(target, "lock"), "w").close()
    assert not _fused.ready()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert _fused.ready()
    assert not os.path.exists(os.path.join(target, "lock")) and len(fresh_process) == 1


def test_a_wait_for_another_build_is_bounded(real_build, fresh_process, monkeypatch):
    target = _copy(real_build)
    monkeypatch.setattr(_fused, "BUILD_WAIT_S", 0.3)
    holder = _hold_build_lock(target)
    try:
        assert not _fused.warm()
        assert "another process has been building" in _fused.failure()
    finally:
        holder.kill()
        holder.wait()
    assert fresh_process == []


def test_the_build_lock_is_held_while_building(real_build, fresh_process, monkeypatch):
    """The fake build looks at the lock from outside: held, and torch's leftover lock file gone."""
    target = _copy(real_build)
    open(os.path.join(target, "lock"), "w").close()
    seen = []

    def build():
        fd = os.open(os.path.join(target, _fused.BUILD_LOCK), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("free")
        except BlockingIOError:
            seen.append("held")
        finally:
            os.close(fd)
        seen.append(os.path.exists(os.path.join(target, "lock")))
        return LOADED

    monkeypatch.setattr(_fused, "_build", build)
    assert _fused.warm()
    assert seen == ["held", False]
    assert not _fused._build_in_progress(target)  # released after


def test_an_extension_cache_that_cannot_be_made_is_a_reason_not_an_error(fresh_process, monkeypatch):
    def unwritable():
        raise PermissionError(13, "Permission denied", "/home/user/.cache/torch_extensions")

    monkeypatch.setattr(_fused, "_build_directory", unwritable)
    assert not _fused.warm()
    assert _fused.failure().startswith("PermissionError") and fresh_process == []


def test_without_flock_torch_s_lock_file_is_the_sign_of_a_build(real_build, fresh_process, monkeypatch):
    """Windows has no fcntl: a build there is guarded by torch's lock file alone, as before."""
    target = _copy(real_build)
    monkeypatch.setattr(_fused, "fcntl", None)
    lock = os.path.join(target, "lock")
    open(lock, "w").close()
    assert not _fused.ready()
    os.remove(lock)
    assert _fused.ready() and len(fresh_process) == 1
