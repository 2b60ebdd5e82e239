"""The watched-metric rule (``core.spec.monitor``) against sequences worked out by hand, and the
spec's early stopping and metric-scheduler fields as ``resolve_spec`` fills and checks them."""

from __future__ import annotations

import math

import pytest

from core.datasets import builtin_info
from core.spec import ExperimentSpec, resolve_spec
from core.spec.experiment import SpecError
from core.spec.monitor import EPOCH_METRICS, Watch, mode_for, stop_reason

NAN = math.nan

# (mode, min_delta, values by epoch 1.., expected best epoch after each, expected bad_epochs after each)
CASES = [
    ("min", 0.0, [1.0, 0.8, 0.9, 0.8, 0.7], [1, 2, 2, 2, 5], [0, 0, 1, 2, 0]),  # a tie is no improvement
    ("max", 0.0, [0.5, 0.6, 0.6, 0.55, 0.7], [1, 2, 2, 2, 5], [0, 0, 1, 2, 0]),
    ("min", 0.1, [1.0, 0.95, 0.85, 0.89, 0.7], [1, 1, 3, 3, 5], [0, 1, 0, 1, 0]),  # 0.05 < 0.1 is not enough
    ("min", 0.0, [NAN, 2.0, NAN, 1.0], [0, 2, 2, 4], [1, 0, 1, 0]),  # NaN never improves; the first finite does
    ("max", 0.0, [math.inf, 1.0], [0, 2], [1, 0]),
]


@pytest.mark.parametrize(("mode", "min_delta", "values", "best_epochs", "bad"), CASES)
def test_watch_follows_the_rule(mode, min_delta, values, best_epochs, bad):
    watch = Watch("val/x", mode, min_delta)
    for epoch, (value, want_best, want_bad) in enumerate(zip(values, best_epochs, bad), start=1):
        improved = watch.update(epoch, value)
        assert improved == (want_best == epoch)
        assert (watch.best_epoch, watch.bad_epochs) == (want_best, want_bad)


def test_watch_round_trips_through_its_state():
    watch = Watch("val/accuracy")
    for epoch, value in enumerate([0.5, 0.7, 0.6], start=1):
        watch.update(epoch, value)
    again = Watch()
    again.load_state_dict(watch.state_dict())
    assert again == watch and again.mode == "max"


@pytest.mark.parametrize(("metric", "mode"), [("val/loss", "min"), ("val/accuracy", "max"), ("val/r2", "max"),
                                              ("train/epoch_loss", "min"), ("val/mse", "min")])
def test_mode_follows_the_metrics_direction(metric, mode):
    assert mode_for(metric) == mode and Watch(metric).mode == mode


def test_stop_reason_names_metric_patience_and_best():
    watch = Watch("val/loss", "min", 0.01)
    for epoch, value in enumerate([1.0, 0.5, 0.6, 0.7], start=1):
        watch.update(epoch, value)
    text = stop_reason(watch, 2, 4, 30)
    assert text == ("stopped early at epoch 4 of 30: val/loss did not improve by more than 0.01 for 2 epochs "
                    "(best 0.5 at epoch 2)")


def _spec(training=None, scheduler=None, dataset="iris"):
    body = {"name": "t", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "adam"},
            "training": training or {}}
    if scheduler is not None:
        body["scheduler"] = scheduler
    return resolve_spec(ExperimentSpec.model_validate(body), builtin_info(dataset), 100)


@pytest.mark.parametrize(("dataset", "metric", "mode"), [
    ("iris", "val/accuracy", "max"), ("iris", "val/loss", "min"), ("diabetes", "val/r2", "max"),
    ("diabetes", "train/mse", "min"),
])
def test_resolve_fills_the_mode_from_the_metric(dataset, metric, mode):
    spec = _spec({"early_stopping": {"metric": metric, "patience": 3}},
                 {"name": "reducelronplateau", "metric": metric}, dataset)
    assert spec.training.early_stopping.mode == mode and spec.scheduler.mode == mode
    assert spec.watch().mode == mode and "metric" not in spec.scheduler_hparams()


def test_an_explicit_mode_is_kept():
    spec = _spec({"early_stopping": {"metric": "val/accuracy", "mode": "min"}},
                 {"name": "reducelronplateau", "metric": "val/accuracy", "mode": "min"})
    assert spec.training.early_stopping.mode == "min" and spec.scheduler.mode == "min"


def test_the_plateau_scheduler_watches_val_loss_by_default():
    spec = _spec(scheduler={"name": "reducelronplateau"})
    assert spec.scheduler.metric == "val/loss" and spec.scheduler.mode == "min"


@pytest.mark.parametrize(("training", "scheduler", "loc", "hint"), [
    ({"early_stopping": {"metric": "val/acuracy"}}, None, ("training", "early_stopping", "metric"), "val/accuracy"),
    ({"early_stopping": {"metric": "val/r2"}}, None, ("training", "early_stopping", "metric"), None),
    ({}, {"name": "reducelronplateau", "metric": "val/los"}, ("scheduler", "metric"), "val/loss"),
])
def test_an_unknown_metric_is_refused_with_a_hint(training, scheduler, loc, hint):
    with pytest.raises(SpecError) as caught:
        _spec(training, scheduler)
    [(where, message)] = caught.value.errors
    assert where == loc and "is not recorded" in message
    assert (f"did you mean {hint}?" in message) == (hint is not None)
    assert all(name in message for name in EPOCH_METRICS["classification"])


def test_the_other_schedulers_take_no_metric():
    with pytest.raises(ValueError, match="metric"):
        _spec(scheduler={"name": "steplr", "step_size": 1, "metric": "val/loss"})
