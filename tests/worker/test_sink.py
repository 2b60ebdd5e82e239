"""BatchingSink: writes in the background by count and by age, keeps and retries points while
the writer fails (the database is unreachable), flushes on close, never drops or reorders."""

from __future__ import annotations

import threading
import time

import pytest

from worker.sink import BatchingSink, MetricPoint


def _points(start: int, n: int) -> list[MetricPoint]:
    return [MetricPoint("train/loss", s, 1, float(s), 0.0) for s in range(start, start + n)]


class Recorder:
    """A writer that fails its first ``failures`` calls, like a database that is down."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.batches: list[list[MetricPoint]] = []
        self.calls = 0
        self.written = threading.Event()

    def __call__(self, batch):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database unreachable")
        self.batches.append(list(batch))
        self.written.set()


@pytest.mark.parametrize(
    ("max_points", "max_delay_s", "added", "expect_within_s"),
    [
        (10, 60.0, 10, 2.0),  # by count: a full batch goes out at once although the delay is long
        (10_000, 0.2, 3, 2.0),  # by age: a few points go out after max_delay_s without close()
    ],
)
def test_points_are_written_in_the_background(max_points, max_delay_s, added, expect_within_s):
    writer = Recorder()
    sink = BatchingSink(writer, max_points=max_points, max_delay_s=max_delay_s)
    sink.add(_points(1, added))
    assert writer.written.wait(expect_within_s), "nothing written before close()"
    assert [p.step for batch in writer.batches for p in batch] == list(range(1, added + 1))
    sink.close()


def test_failed_writes_are_retried_with_backoff_and_nothing_is_lost():
    writer = Recorder(failures=3)
    sink = BatchingSink(writer, max_points=5, max_delay_s=0.01, backoff_s=0.01, max_backoff_s=0.05)
    for start in range(1, 100, 5):
        sink.add(_points(start, 5))
        time.sleep(0.001)
    sink.close()
    assert sink.failures == 3
    steps = [p.step for batch in writer.batches for p in batch]
    assert steps == list(range(1, 101))


def test_close_flushes_everything_and_refuses_more():
    writer = Recorder()
    sink = BatchingSink(writer, max_points=10_000, max_delay_s=3600)
    sink.add(_points(1, 7))
    sink.close()
    assert [p.step for batch in writer.batches for p in batch] == list(range(1, 8))
    with pytest.raises(RuntimeError):
        sink.add(_points(8, 1))


def test_close_gives_up_when_the_database_stays_down():
    writer = Recorder(failures=10**9)
    sink = BatchingSink(writer, max_delay_s=0.01, backoff_s=0.01, max_backoff_s=0.02, close_timeout_s=0.3)
    sink.add(_points(1, 3))
    with pytest.raises(TimeoutError, match="3 metric points"):
        sink.close()
