"""``Periodic``: a daemon thread that calls a function every ``interval_s`` until stopped.

The api's re-send sweep and a worker's presence beat both run on one; an exception in a pass
(a database or broker restarting) is logged and the next pass tries again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic(threading.Thread):
    def __init__(self, name: str, interval_s: float, tick: Callable[[], object], *, first_at_once: bool = False):
        super().__init__(name=name, daemon=True)
        self.interval_s, self.tick, self.first_at_once = interval_s, tick, first_at_once
        self._stop_event = threading.Event()

    def run(self) -> None:
        if self.first_at_once:
            self._pass()
        while not self._stop_event.wait(self.interval_s):
            self._pass()

    def _pass(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - a service restarting: try on the next pass
            log.warning("%s pass failed: %s", self.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
