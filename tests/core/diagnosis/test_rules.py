"""Each convergence rule fires on a metric sequence built (from a formula) to show it, at the
epoch the rule's definition gives and with the evidence computed here by hand; a healthy
sequence and the cases just on the other side of each threshold stay silent."""

from __future__ import annotations

import math

import pytest

from core.diagnosis import aggregate, diagnose_aggregates, rules

EPOCHS = 12
STEPS = 4  # steps an epoch; the step losses swing ±10% around the epoch's loss


def _healthy_loss(e: int) -> float:
    return 2.0 * 0.8 ** e


def _points(train=_healthy_loss, val=lambda e: 1.1 * _healthy_loss(e), lr=lambda e: 1e-3,
            grad=lambda e: 1.0, ratio=lambda e: 1e-3, epochs=EPOCHS, nan_at=None):
    """The points the engine would record for ``epochs`` epochs whose per-epoch values are given."""
    points = []
    for e in range(1, epochs + 1):
        for s in range(STEPS):
            swing = 0.1 if s % 2 else -0.1
            value = math.nan if (e, s) == nan_at else train(e) * (1 + swing)
            points += [("train/loss", e, value), ("lr", e, lr(e))]
        # None: no step of the epoch measured it (an epoch shorter than training.diagnostics_every)
        points += [(name, e, v) for name, v in (("grad_norm", grad(e)), ("update_ratio", ratio(e))) if v is not None]
        points += [("val/loss", e, val(e)), ("epoch_time", e, 1.0)]
    return points


def _findings(**kwargs):
    return diagnose_aggregates(aggregate(_points(**kwargs)))


def _rising(start: int, factor: float, base=_healthy_loss):
    return lambda e: base(e) if e <= start else base(start) * factor ** (e - start)


def test_a_healthy_sequence_gets_no_finding():
    assert _findings() == []


# (rule, epoch it fires at, metric sequences, evidence computed by hand)
L5 = _healthy_loss(5)
V5 = 1.1 * L5
OSC = [0.5 + 0.05 * (-1) ** e for e in range(1, 6)]
FIRES = [
    ("diverging", 8, {"train": _rising(5, 1.2)},
     {"loss_from": L5, "loss_to": L5 * 1.2 ** 3, "ratio": 1.2 ** 3}),
    ("diverging", 7, {"grad": _rising(4, 1.6, base=lambda e: 1.0)},
     {"grad_norm_from": 1.0, "grad_norm_to": 1.6 ** 3, "growth": 1.6}),
    ("diverging", 3, {"nan_at": (3, 2)}, {"nonfinite_points": 1}),
    # measured in odd epochs only: 1, 1, 1.6, 1.6², 1.6³ at epochs 1, 3, 5, 7, 9
    ("diverging", 9, {"grad": lambda e: None if e % 2 == 0 else 1.6 ** max(0, (e - 3) // 2)},
     {"grad_norm_from": 1.0, "grad_norm_to": 1.6 ** 3, "growth": 1.6}),
    ("oscillating", 5, {"train": lambda e: 0.5 + 0.05 * (-1) ** e, "ratio": lambda e: 0.05},
     {"level": sum(OSC) / 5, "swing": 0.1 / (sum(OSC) / 5), "update_ratio": 0.05}),
    ("plateau", 9, {"train": lambda e: _healthy_loss(min(e, 4)) * (1 - 5e-4) ** max(0, e - 4)},
     {"change": 5e-4, "lr": 1e-3}),
    ("lr_too_small", 3, {"train": lambda e: 0.99 ** e, "ratio": lambda e: 5e-5},
     {"update_ratio": 5e-5, "lr": 1e-3}),
    ("lr_too_small", 3, {"train": lambda e: 0.99 ** e, "ratio": lambda e: None if e % 3 else 4e-5},
     {"update_ratio": 4e-5, "lr": 1e-3}),  # measured in epochs 3, 6, 9, ... only
    ("overfitting", 8, {"val": lambda e: 1.1 * _healthy_loss(e) if e <= 5 else V5 + 0.02 * (e - 5)},
     {"val_loss_from": V5, "val_loss_to": V5 + 0.06, "best_epoch": 5, "best_val_loss": V5}),
    ("dead_warmup", 5, {"lr": lambda e: 1e-3 if e <= 4 else 0.0, "train": lambda e: _healthy_loss(min(e, 4)),
                        "ratio": lambda e: 1e-3 if e <= 4 else 0.0},
     {"lr": 0.0, "peak_lr": 1e-3}),
    ("dead_warmup", 1, {"lr": lambda e: 0.0, "train": lambda e: 1.0, "ratio": lambda e: 0.0},
     {"lr": 0.0, "peak_lr": 0.0}),
]


@pytest.mark.parametrize(("rule", "epoch", "sequences", "evidence"), FIRES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(FIRES)])
def test_each_rule_fires_alone_at_its_epoch_with_the_evidence(rule, epoch, sequences, evidence):
    found = _findings(**sequences)
    assert [(f["rule"], f["epoch"]) for f in found] == [(rule, epoch)]
    assert found[0]["evidence"] == pytest.approx(evidence, rel=1e-9, abs=1e-15)
    assert found[0]["message"] and found[0]["suggestion"]


def test_the_overfitting_suggestion_names_the_epoch_early_stopping_would_have_kept():
    found = _findings(val=lambda e: 1.1 * _healthy_loss(e) if e <= 5 else V5 + 0.02 * (e - 5))
    assert f"early stopping at epoch 5 would have kept val/loss {V5:.4g}" in found[0]["suggestion"]


# just on the silent side of each threshold
SILENT = [
    ("diverging", {"train": lambda e: _rising(5, (1 + rules.DIVERGE_MIN_RISE - 0.002) ** (1 / 3))(min(e, 8))}),
    ("diverging", {"grad": _rising(4, rules.GRAD_GROWTH - 0.01, base=lambda e: 1.0)}),
    ("diverging", {"train": lambda e: _healthy_loss(e) if e % 3 else 5.0}),  # never 3 rises in a row
    ("oscillating", {"train": lambda e: 0.5 + 0.05 * (-1) ** e,
                     "ratio": lambda e: rules.HIGH_UPDATE_RATIO * 0.9}),
    ("oscillating", {"train": lambda e: 0.5 + 0.004 * (-1) ** e, "ratio": lambda e: 0.05}),  # swing 1.6%
    ("plateau", {"train": lambda e: _healthy_loss(min(e, 4)) * (1 - 1.5e-3) ** max(0, e - 4)}),
    ("plateau", {"train": lambda e: _healthy_loss(min(e, 4)) * (1 - 5e-4) ** max(0, e - 4),
                 "lr": lambda e: 1e-3 if e <= 4 else 4e-4}),  # a schedule cut the LR
    ("lr_too_small", {"train": lambda e: 0.99 ** e, "ratio": lambda e: rules.LOW_UPDATE_RATIO * 1.2}),
    ("lr_too_small", {"train": lambda e: 0.99 ** e, "ratio": lambda e: 1e-3 if e <= 4 else 5e-5,
                      "lr": lambda e: 1e-3 if e <= 4 else 1e-4}),  # the tail of a decayed schedule
    ("overfitting", {"val": lambda e: 1.1 * _healthy_loss(e) if e <= 5 else V5 + 0.02 * (e - 5) * (e < 8)}),
    ("dead_warmup", {"lr": lambda e: 1e-3 if e <= 4 else 1e-3 * rules.DEAD_LR_FRACTION * 2}),
]


@pytest.mark.parametrize(("rule", "sequences"), SILENT, ids=[f"{case[0]}-{i}" for i, case in enumerate(SILENT)])
def test_just_past_a_threshold_the_rule_stays_silent(rule, sequences):
    assert rule not in [f["rule"] for f in _findings(**sequences)]


def test_an_epoch_still_running_is_not_read():
    """Without its ``epoch_time`` the last epoch is partial: a rise it shows is not yet a finding."""
    points = _points(train=_rising(5, 1.2), epochs=8)
    assert [f["epoch"] for f in diagnose_aggregates(aggregate(points))] == [8]
    partial = [p for p in points if not (p[0] == "epoch_time" and p[1] == 8)]
    assert diagnose_aggregates(aggregate(partial)) == []


# just on the firing side of the same thresholds: (rule, epoch, sequences)
JUST_FIRES = [
    ("diverging", 8, {"train": lambda e: _rising(5, (1 + rules.DIVERGE_MIN_RISE + 0.002) ** (1 / 3))(min(e, 8))}),
    ("diverging", 7, {"grad": _rising(4, rules.GRAD_GROWTH + 0.01, base=lambda e: 1.0)}),
    ("oscillating", 5, {"train": lambda e: 0.5 + 0.05 * (-1) ** e, "ratio": lambda e: rules.HIGH_UPDATE_RATIO * 1.1}),
    ("plateau", 9, {"train": lambda e: _healthy_loss(min(e, 4)) * (1 - 0.9e-3) ** max(0, e - 4)}),
    ("lr_too_small", 3, {"train": lambda e: 0.99 ** e, "ratio": lambda e: rules.LOW_UPDATE_RATIO * 0.9}),
    ("dead_warmup", 5, {"lr": lambda e: 1e-3 if e <= 4 else 1e-3 * rules.DEAD_LR_FRACTION * 0.5}),
]


@pytest.mark.parametrize(("rule", "epoch", "sequences"), JUST_FIRES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(JUST_FIRES)])
def test_just_inside_a_threshold_the_rule_fires(rule, epoch, sequences):
    assert (rule, epoch) in [(f["rule"], f["epoch"]) for f in _findings(**sequences)]
