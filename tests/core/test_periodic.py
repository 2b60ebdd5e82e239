"""``Periodic`` keeps calling its function through failures and stops when told."""

from __future__ import annotations

import threading

from core.periodic import Periodic


def test_a_failing_pass_does_not_stop_the_next_ones():
    calls = []
    third = threading.Event()

    def tick():
        calls.append(len(calls))
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("database restarting")

    thread = Periodic("test-periodic", 0.01, tick, first_at_once=True)
    thread.start()
    assert third.wait(5)
    thread.stop()
    assert not thread.is_alive()
    count = len(calls)
    threading.Event().wait(0.05)
    assert len(calls) == count  # stopped means no more passes
