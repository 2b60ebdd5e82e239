"""Stopping a run on time, in the engine alone: the watchdog's asynchronous interrupt lands only
inside a marked region, stops one long step that never calls its closure, never lands in a
metric write, and the time limit counts the training time a checkpoint carries over.

Step lengths measured on the 2-core development machine, one torch thread: a Hessian-free step
with ``cg_max_iter=1000`` on the 512-wide tanh MLP below runs all 1000 conjugate-gradient
iterations in about 16 s."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.engine.stopping import GRACE_S, Interrupter, StopTraining, TimeLimit, TimeLimitExceeded
from worker.sink import ListSink

# a cancel is honoured "within about a second"; on a loaded machine allow three
BOUND_S = 3.0

LONG_HESSIAN_FREE = {"name": "hessianfree", "base_lr": 1.0, "cg_max_iter": 1000, "cg_tol": 0.0, "damping": 1.0}
WIDE_TANH = {"name": "mlp", "depth": 1, "width": 512, "activation": "tanh"}


def _busy(seconds: float) -> int:
    """Run Python bytecode (where an asynchronous exception can land) for ``seconds``."""
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


class _Trainee(threading.Thread):
    """A stand-in training thread: alternates work inside a region with work outside it (the
    metric writes), ``rounds`` times, counting where :class:`StopTraining` arrived."""

    def __init__(self, rounds: int, inside_s: float, outside_s: float, lead_s: float = 0.0):
        super().__init__(daemon=True)
        self.rounds, self.inside_s, self.outside_s, self.lead_s = rounds, inside_s, outside_s, lead_s
        self.ready = threading.Event()
        self.interrupter: Interrupter | None = None
        self.landed_inside = self.landed_outside = 0
        self.outside_done = 0

    def run(self) -> None:
        self.interrupter = Interrupter()
        self.ready.set()
        try:
            _busy(self.lead_s)
        except StopTraining:
            self.landed_outside += 1
        for _ in range(self.rounds):
            try:
                with self.interrupter:
                    _busy(self.inside_s)
            except StopTraining:
                self.landed_inside += 1
            try:
                _busy(self.outside_s)
                self.outside_done += 1
            except StopTraining:
                self.landed_outside += 1


def test_the_interrupt_lands_only_inside_a_region():
    trainee = _Trainee(rounds=1, inside_s=2.0, outside_s=0.0, lead_s=1.0)
    trainee.start()
    trainee.ready.wait(5)
    # a second of work outside any region: every interrupt is refused
    refused = 0
    while not trainee.interrupter.inside and trainee.is_alive():
        assert not trainee.interrupter.interrupt()
        refused += 1
        time.sleep(0.01)
    assert refused >= 10
    # inside: it is sent once, arrives, and ends the region
    assert trainee.interrupter.interrupt()
    assert not trainee.interrupter.interrupt()
    trainee.join(5)
    assert (trainee.landed_inside, trainee.landed_outside) == (1, 0)


def test_interrupts_sent_at_random_moments_never_land_outside_a_region():
    # regions and "metric writes" of a few milliseconds each, interrupted every few milliseconds:
    # many sends race the region's end; each must surface from its region or be withdrawn
    trainee = _Trainee(rounds=400, inside_s=0.004, outside_s=0.003)
    trainee.start()
    trainee.ready.wait(5)
    sent = 0
    while trainee.is_alive():
        sent += trainee.interrupter.interrupt()
        time.sleep(0.001 + (sent % 5) * 0.0007)
    trainee.join()
    assert trainee.landed_outside == 0
    assert trainee.outside_done == 400
    assert sent >= 20 and trainee.landed_inside == sent


def test_a_cancel_interrupts_one_long_step_without_a_closure_evaluation():
    """Hessian-free's conjugate-gradient loop calls no closure: only the watchdog can stop it."""
    split = builtin_split("digits")
    spec = make_spec(split, solver=LONG_HESSIAN_FREE, architecture=WIDE_TANH, epochs=1, batch_size=None)
    cancel, step_started = threading.Event(), threading.Event()
    requested: list[float] = []

    def asked(_progress) -> bool:
        step_started.set()
        return False  # never at a step or a closure evaluation: the watchdog alone must stop it

    def cancel_mid_step():
        step_started.wait(60)
        time.sleep(0.5)
        requested.append(time.monotonic())
        cancel.set()

    canceller = threading.Thread(target=cancel_mid_step)
    canceller.start()
    sink = ListSink()
    result = train(spec, prepare(split), sink=sink, should_cancel=asked, cancel_requested=cancel.is_set)
    took = time.monotonic() - requested[0]
    canceller.join()
    # one step in the run: had the step finished, there would be a train/loss point
    assert result.status == "cancelled" and result.step == 0 and sink.series("train/loss") == []
    assert GRACE_S <= took < BOUND_S, took
    # what an interrupted context manager may leave behind is undone
    assert torch.is_grad_enabled() and torch._C._len_torch_function_stack() == 0


def test_a_stop_is_never_sent_into_a_metric_write():
    """A cancel arriving while the sink writes is honoured after the write, at the next step."""
    split = builtin_split("digits")
    cancel = threading.Event()

    class SlowSink(ListSink):
        def __init__(self):
            super().__init__()
            self.writes_finished = 0

        def add(self, points):
            if any(p.name == "train/loss" and p.step == 3 for p in points):
                cancel.set()
                _busy(2 * GRACE_S + 0.5)  # well past the grace: the watchdog wants to act
            super().add(points)
            # the step writes (the engine also writes state_bytes once, after the first step)
            self.writes_finished += any(p.name == "train/loss" for p in points)

    sink = SlowSink()
    result = train(make_spec(split, epochs=5, batch_size=8), prepare(split), sink=sink,
                   should_cancel=lambda _: cancel.is_set(), cancel_requested=cancel.is_set, log_every=1)
    assert result.status == "cancelled" and result.step == 3
    assert [s for s, _ in sink.series("train/loss")] == [1, 2, 3]
    assert sink.writes_finished == 3  # the slow step write ran to its end


def test_a_long_step_past_the_time_limit_fails_saying_so():
    split = builtin_split("digits")
    spec = make_spec(split, solver=LONG_HESSIAN_FREE, architecture=WIDE_TANH, epochs=1, batch_size=None)
    limit = TimeLimit(0.02, "the test's limit")
    with pytest.raises(TimeLimitExceeded, match=r"^stopped after 0\.0\d minutes: the test's limit$"):
        train(spec, prepare(split), sink=ListSink(), time_limit=limit)
    took = time.monotonic() - limit.started
    assert 0.02 * 60 <= took < 0.02 * 60 + BOUND_S, took


def test_the_time_limit_counts_the_training_time_a_checkpoint_carries(tmp_path):
    split = builtin_split("wine")
    spec = make_spec(split, epochs=6, batch_size=16)
    ckpt = tmp_path / "last.pt"
    began = time.monotonic()
    first = train(spec, prepare(split), sink=ListSink(), checkpoint_path=ckpt, should_cancel=lambda p: p.epoch == 3)
    took = time.monotonic() - began
    assert first.status == "cancelled"
    carried = torch.load(ckpt, weights_only=True)["training_s"]
    assert 0 < carried <= took

    # a limit below what the checkpoint carries: the resumed run stops before its first step
    sink = ListSink()
    with pytest.raises(TimeLimitExceeded):
        train(spec, prepare(split), sink=sink, resume_from=ckpt, time_limit=TimeLimit(carried / 60 / 2))
    assert sink.series("train/loss") == []
    # a limit above it: the run finishes
    result = train(spec, prepare(split), sink=ListSink(), resume_from=ckpt, time_limit=TimeLimit(carried / 60 + 10))
    assert result.status == "succeeded" and result.epoch == 6
