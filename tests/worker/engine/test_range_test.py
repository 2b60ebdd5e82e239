"""The range test on the engine, CPU, an MLP on digits: the rates follow the schedule whatever
scheduler the spec names, the losses are the engine's own ``train/loss`` points, divergence
stops the test early, the start is training's, and a cancel ends it as in training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.studies.range_test import lr_at, smooth
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import Progress, train
from worker.engine.range_test import MIN_LOSS_LR, SMOOTHED_LOSS, STEEPEST_LR, SUGGESTED_LR, range_test
from worker.sink import ListSink

SPLIT = builtin_split("digits")
SGD = {"name": "sgd", "base_lr": 1e-4}
# 1078 train rows in batches of 64: 17 steps an epoch, so 40 steps take three passes
BATCH = 64


def _range_test(spec, **kwargs):
    sink = ListSink()
    return range_test(spec, prepare(SPLIT), sink=sink, **kwargs), sink


def _values(sink: ListSink, name: str) -> list[float]:
    return [v for _, v in sink.series(name)]


@pytest.mark.parametrize("scheduler", [None, {"name": "steplr", "step_size": 1, "gamma": 0.1},
                                       {"name": "onecyclelr", "max_lr": 1.0}])
def test_rates_follow_the_schedule_across_epochs_whatever_the_spec_schedules(scheduler):
    spec = make_spec(SPLIT, solver=SGD, scheduler=scheduler, batch_size=BATCH, epochs=2)
    result, sink = _range_test(spec, min_lr=1e-4, max_lr=1.0, num_steps=40)
    expected = [lr_at(i, 1e-4, 1.0, 40) for i in range(40)]
    assert result.status == "succeeded" and not result.diverged and result.stopped_at is None
    assert sink.series("lr") == list(zip(range(1, 41), expected))  # exactly, step by step
    assert result.lrs == expected
    epochs = [p.epoch for p in sink.points if p.name == "lr"]
    assert epochs == [1] * 17 + [2] * 17 + [3] * 6


def test_losses_are_the_engines_points_and_the_suggestion_is_recorded():
    spec = make_spec(SPLIT, solver={"name": "adam", "base_lr": 1e-3}, batch_size=BATCH)
    ends: list[Progress] = []
    result, sink = _range_test(spec, min_lr=1e-5, max_lr=1.0, num_steps=50, beta=0.9, on_end=ends.append)
    assert result.losses == _values(sink, "train/loss") and len(result.losses) == len(result.lrs)
    assert all(math.isfinite(v) for v in result.losses)
    assert _values(sink, SMOOTHED_LOSS) == pytest.approx(smooth(result.losses, 0.9).tolist(), rel=1e-12)
    s = result.suggestion
    assert s.smoothed == pytest.approx(tuple(smooth(result.losses, 0.9)), rel=1e-12)
    assert 1e-5 <= s.lr <= 1.0 and 1e-5 <= s.minimum <= 1.0
    last = len(result.losses)
    recorded = {p.name: (p.step, p.value) for p in sink.points if p.name.startswith("range/") and p.name != SMOOTHED_LOSS}
    expected = {SUGGESTED_LR: (last, s.lr), MIN_LOSS_LR: (last, s.minimum)}
    if s.steepest is not None:
        expected[STEEPEST_LR] = (last, s.steepest)
    assert recorded == expected
    assert [(e.step, e.total_steps) for e in ends] == [(last, 50)]


def test_divergence_stops_the_test_before_its_last_step():
    spec = make_spec(SPLIT, solver=SGD, batch_size=BATCH)
    result, sink = _range_test(spec, min_lr=1e-4, max_lr=1e3, num_steps=100)
    assert result.status == "succeeded" and result.diverged
    assert result.stopped_at is not None and result.stopped_at < 100
    steps = [step for step, _ in sink.series("lr")]
    assert steps == list(range(1, len(result.losses) + 1)) and max(steps) <= result.stopped_at
    smoothed = smooth(result.losses, 0.98)
    if len(result.losses) == result.stopped_at:  # a finite loss broke the 4 × best rule
        assert smoothed[-1] > 4.0 * smoothed[:-1].min()
    else:  # a non-finite loss: not recorded, as in training
        assert len(result.losses) == result.stopped_at - 1
    assert 1e-4 <= result.suggestion.lr <= 1e3
    assert result.suggestion.used <= len(result.losses)


def test_the_test_starts_where_training_starts():
    """Same seed, same model, optimizer and batches: with base_lr = min_lr the first two losses of
    training (the first step's update taken at the same rate) are the range test's."""
    spec = make_spec(SPLIT, solver={"name": "adam", "base_lr": 1e-3}, batch_size=BATCH, seed=3)
    trained = ListSink()
    train(spec, prepare(SPLIT), sink=trained)
    result, _ = _range_test(spec, min_lr=1e-3, max_lr=1.0, num_steps=10)
    assert result.losses[:2] == _values(trained, "train/loss")[:2]
    other, _ = _range_test(make_spec(SPLIT, solver={"name": "adam", "base_lr": 1e-3}, batch_size=BATCH, seed=4),
                           min_lr=1e-3, max_lr=1.0, num_steps=2)
    assert other.losses[0] != result.losses[0]


def test_a_cancel_ends_the_test_without_a_suggestion_metric():
    spec = make_spec(SPLIT, solver=SGD, batch_size=BATCH)
    ends: list[Progress] = []
    result, sink = _range_test(spec, min_lr=1e-4, max_lr=1.0, num_steps=40, should_cancel=lambda p: p.step >= 5,
                               on_end=ends.append)
    assert result.status == "cancelled" and not result.diverged
    assert len(result.losses) == 5 == len(_values(sink, "train/loss"))
    assert not any(p.name in {SUGGESTED_LR, STEEPEST_LR, MIN_LOSS_LR} for p in sink.points)
    assert result.suggestion is not None and np.isfinite(result.suggestion.lr)
    assert [e.step for e in ends] == [5]


def test_a_bad_range_is_refused_before_anything_is_built():
    spec = make_spec(SPLIT, solver=SGD)
    with pytest.raises(ValueError, match="max_lr"):
        _range_test(spec, min_lr=1.0, max_lr=1e-3)
