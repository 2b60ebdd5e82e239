"""A real ``descent up`` for end-to-end tests: a subprocess on a free port in a given folder,
its output in a log file shown on failure, stopped by SIGINT like a person's Ctrl-C.  Its
``$XDG_CONFIG_HOME`` is a folder of the test's (``config_home``, default ``<folder>/config``),
so the token file it writes is never the real home's; ``env`` is the environment for CLI
commands that should find that token as a person's shell would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from descent import credentials

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Up:
    """A running ``descent up``; its output goes to a log file we show on failure."""

    def __init__(self, folder: Path, port: int, *args: str, config_home: Path | None = None,
                 settings: dict[str, str] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = folder / "data"
        self.config_home = config_home or folder / "config"
        self.log_path = folder / f"up-{time.monotonic_ns()}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
        self.env.update(PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(self.config_home))
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "descent.cli", "up", "--port", str(port), "--data-dir", "data", *args],
            cwd=folder, stdout=self.log, stderr=subprocess.STDOUT, env={**self.env, **(settings or {})},
            start_new_session=True,
        )

    def child_pid(self, command: str) -> int:
        """The pid of ``descent up``'s first child ``descent <command>`` (``api``, ``worker``)."""
        pids = self.child_pids(command)
        if not pids:
            raise LookupError(f"descent up has no `{command}` child")
        return pids[0]

    def child_pids(self, command: str) -> list[int]:
        """The pids of ``descent up``'s children ``descent <command>`` (two for ``worker``: the
        training worker and the lab worker)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        pids = []
        for pid in children:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:  # reaped since the list was read
                continue
            if command.encode() in argv:
                pids.append(int(pid))
        return pids

    @property
    def tokens_file(self) -> Path:
        return self.config_home / "descent" / "tokens.json"

    @property
    def token(self) -> str:
        """The API token ``descent up`` saved for its address."""
        return credentials.load_tokens(self.tokens_file)[credentials.normalize_url(self.url)]

    def printed(self, label: str) -> str:
        """The value ``descent up`` printed on its ``  <label>  <value>`` line."""
        return next(line.split()[1] for line in self.output().splitlines() if line.strip().startswith(label + " "))

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"descent up exited early:\n{self.output()}"
            if "Descent is up" in self.output():
                assert httpx.get(self.url + "/api/v1/health", timeout=5).status_code == 200
                return
            time.sleep(0.2)
        raise AssertionError(f"descent up not ready after {timeout} s:\n{self.output()}")

    def interrupt(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
