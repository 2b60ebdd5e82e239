"""Early stopping, the best checkpoint and the metric a plateau schedule watches, on real training:
the stop epoch against the rule applied by hand to the run's own recorded metric, the best
checkpoint against a run trained exactly that many epochs, ReduceLROnPlateau's learning rates
against torch's own scheduler fed the same values, and a resumed run against an uninterrupted one."""

from __future__ import annotations

import math

import pytest
import torch

from core.spec.monitor import EPOCH_METRICS
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import Progress, train
from worker.sink import ListSink

TIMING = {"epoch_time", "samples_per_s"}


def _run(spec, split, **kwargs):
    sink = ListSink()
    return train(spec, prepare(split), sink=sink, **kwargs), sink


def _by_epoch(sink: ListSink, name: str) -> list[float]:
    return [p.value for p in sink.points if p.name == name]


def _stop_epoch_by_hand(values: list[float], mode: str, patience: int, min_delta: float) -> tuple[int, int]:
    """(epoch it stops after, best epoch), the rule written out again: Keras' EarlyStopping."""
    best, best_epoch, wait = None, 0, 0
    for epoch, value in enumerate(values, start=1):
        better = value - best if best is not None and mode == "max" else (best - value if best is not None else 1)
        if math.isfinite(value) and better > min_delta:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return len(values), best_epoch


# iris with a large learning rate: the validation metrics stop improving after a few epochs
STOPPING = [
    ("val/loss", 3, 0.0),
    ("val/accuracy", 2, 0.0),
    ("train/epoch_loss", 2, 0.05),
]


@pytest.mark.parametrize(("metric", "patience", "min_delta"), STOPPING)
def test_stops_at_the_epoch_the_rule_gives_on_its_own_metric(metric, patience, min_delta, tmp_path):
    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 0.05}, epochs=60, batch_size=16,
                     early_stopping={"metric": metric, "patience": patience, "min_delta": min_delta})
    best = tmp_path / "best.pt"
    result, sink = _run(spec, split, best_path=best)
    values = _by_epoch(sink, metric)
    mode = "max" if metric.endswith("accuracy") else "min"
    stop, best_epoch = _stop_epoch_by_hand(values, mode, patience, min_delta)
    assert stop < 60, "the case must stop early to test anything"
    assert result.epoch == stop == len(values) and result.best_epoch == best_epoch
    assert result.stop_reason.startswith(f"stopped early at epoch {stop} of 60: {metric} did not improve")
    assert f"at epoch {best_epoch})" in result.stop_reason
    # the test pass ran on the weights the run ended with, at its last step
    assert [p.step for p in sink.points if p.name == "test/accuracy"] == [result.step]


def test_the_best_checkpoint_holds_the_best_epochs_weights(tmp_path):
    split = builtin_split("iris")
    common = dict(solver={"name": "adam", "base_lr": 0.05}, batch_size=16)
    spec = make_spec(split, epochs=60, early_stopping={"metric": "val/loss", "patience": 3}, **common)
    result, sink = _run(spec, split, best_path=tmp_path / "best.pt")
    losses = _by_epoch(sink, "val/loss")
    assert 1 < result.best_epoch < result.epoch and losses[result.best_epoch - 1] == min(losses)
    # the same spec trained exactly best_epoch epochs, without early stopping, ends with those weights
    short, _ = _run(make_spec(split, epochs=result.best_epoch, **common), split)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    expected = short.model.state_dict()
    assert best.keys() == expected.keys()
    assert all(torch.equal(best[k], expected[k]) for k in best)


def test_without_early_stopping_the_best_is_by_val_loss_and_every_epoch_runs(tmp_path):
    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 0.05}, epochs=12, batch_size=16)
    result, sink = _run(spec, split, best_path=tmp_path / "best.pt")
    losses = _by_epoch(sink, "val/loss")
    assert result.epoch == 12 and result.stop_reason is None
    assert result.best_epoch == losses.index(min(losses)) + 1


def test_a_resumed_run_stops_and_keeps_the_best_as_the_uninterrupted_one(tmp_path):
    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 0.05}, epochs=60, batch_size=16,
                     early_stopping={"metric": "val/loss", "patience": 3})
    whole, whole_sink = _run(spec, split, best_path=tmp_path / "whole.pt")
    # stop after the second epoch's checkpoint, then resume from it
    per_epoch = math.ceil(len(split.x_train) / 16)
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    first, _ = _run(spec, split, checkpoint_path=last, best_path=best,
                    should_cancel=lambda p: p.step >= 2 * per_epoch)
    assert first.status == "cancelled" and first.epoch == 2
    resumed, resumed_sink = _run(spec, split, checkpoint_path=last, best_path=best, resume_from=last)
    assert (resumed.epoch, resumed.best_epoch, resumed.stop_reason) == (whole.epoch, whole.best_epoch,
                                                                         whole.stop_reason)
    a, b = torch.load(tmp_path / "whole.pt", weights_only=True), torch.load(best, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("metric", "mode"), [("val/accuracy", "max"), ("val/loss", "min"),
                                              ("train/epoch_loss", "min")])
def test_the_plateau_schedule_cuts_the_lr_as_torchs_fed_the_same_metric(metric, mode):
    split = builtin_split("iris")
    hp = {"factor": 0.5, "patience": 1}
    spec = make_spec(split, solver={"name": "adam", "base_lr": 0.05}, epochs=20, batch_size=16,
                     scheduler={"name": "reducelronplateau", "metric": metric, **hp})
    assert spec.scheduler.mode == mode
    result, sink = _run(spec, split)
    values = _by_epoch(sink, metric)
    # oracle: torch's ReduceLROnPlateau stepped with the run's own recorded values
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    oracle = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, **hp)
    expected = []
    for value in values[:-1]:  # the lr of the epoch after each
        oracle.step(value)
        expected.append(optimizer.param_groups[0]["lr"])
    per_epoch = math.ceil(len(split.x_train) / 16)
    lrs = dict((p.step, p.value) for p in sink.points if p.name == "lr")
    got = [lrs[e * per_epoch + 1] for e in range(1, len(values))]
    assert got == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1, "the case must cut the learning rate at least once"


@pytest.mark.parametrize("dataset", ["iris", "diabetes"])
def test_an_epoch_records_exactly_the_metrics_a_spec_may_watch(dataset):
    split = builtin_split(dataset)
    result, sink = _run(make_spec(split, epochs=1), split)
    names = {p.name for p in sink.points if p.epoch == 1 and "/" in p.name and not p.name.startswith("test/")}
    per_step = {"train/loss"}
    assert names - per_step - TIMING == set(EPOCH_METRICS[split.info.task])
    assert isinstance(Progress(0, 0, 0).fraction, float)


def test_on_epoch_ends_a_run_pruned_at_the_epoch_it_answers(tmp_path):
    split = builtin_split("iris")
    spec = make_spec(split, epochs=5, batch_size=16)
    asked = []

    def on_epoch(epoch, values):
        asked.append((epoch, values["val/loss"]))
        return "not promising" if epoch == 2 else None

    result, sink = _run(spec, split, on_epoch=on_epoch, checkpoint_path=tmp_path / "last.pt")
    per_epoch = math.ceil(len(split.x_train) / 16)
    assert (result.status, result.epoch, result.step, result.stop_reason) == ("pruned", 2, 2 * per_epoch,
                                                                              "not promising")
    assert asked == [(1, _by_epoch(sink, "val/loss")[0]), (2, _by_epoch(sink, "val/loss")[1])]
    assert not [p for p in sink.points if p.name.startswith("test/")], "a pruned run has no test pass"
    # never asked after the last epoch: a run that trains them all is not pruned
    asked.clear()
    whole, _ = _run(spec, split, on_epoch=lambda e, v: asked.append(e) or None)
    assert whole.status == "succeeded" and asked == [1, 2, 3, 4]


def test_a_refused_best_write_removes_the_older_best_and_is_told_once(tmp_path, monkeypatch):
    import errno

    from worker.engine import checkpoint, loop

    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 0.01}, epochs=4, batch_size=16)
    best, last = tmp_path / "best.pt", tmp_path / "last.pt"
    real = checkpoint.write_atomically
    epochs_done = []

    def refusing_after_the_first(path, obj, **kwargs):
        if path == best and epochs_done:
            raise checkpoint.StorageError(path, errno.ENOSPC, "full")
        return real(path, obj, **kwargs)

    monkeypatch.setattr(loop.checkpoint, "write_atomically", refusing_after_the_first)
    told = []

    def on_checkpoint(error):
        told.append(None if error is None else error.path)
        epochs_done.append(1)

    result, sink = _run(spec, split, best_path=best, checkpoint_path=last, on_checkpoint=on_checkpoint)
    losses = _by_epoch(sink, "val/loss")
    improved_later = [e for e in range(2, 5) if losses[e - 1] < min(losses[:e - 1])]
    assert improved_later, "the case needs a later improvement to refuse"
    # epoch 1 wrote it; a later improvement was refused: the stale best is gone, and the refusal told
    assert not best.exists()
    assert told[0] is None and best in told
    assert all(t in (None, best) for t in told) and len(told) == 4, "one report per epoch"
