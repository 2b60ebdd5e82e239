"""The convergence rules: each reads a run epoch by epoch (:class:`~core.diagnosis.series.Epochs`)
and returns a :class:`~core.diagnosis.findings.Finding` at the first epoch it fires, or None.
The thresholds are the named constants beside each rule; docs/diagnosis.md lists them.

The update ratio ‖θ_t − θ_{t−1}‖ / ‖θ_{t−1}‖ of a healthy run is about 1e-3 (Karpathy, CS231n
"Neural Networks Part 3: babysitting the learning process"); ten times that is high, a tenth of
a tenth is too small.  "The LR is still large" means the epoch's LR is at least half the largest
LR the run has had so far (no schedule has cut it yet) and above the dead level of ``dead_warmup``; a run that records no LR counts as one
whose LR is still large."""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.diagnosis.findings import Finding
from core.diagnosis.series import Epochs

# diverging: the train loss rose in each of DIVERGE_EPOCHS consecutive epochs, by at least
# DIVERGE_MIN_RISE (relative) in all; or the mean grad norm grew by at least GRAD_GROWTH× in each
# of DIVERGE_EPOCHS consecutive epochs; or a train/val loss point was not finite
DIVERGE_EPOCHS = 3
DIVERGE_MIN_RISE = 0.10
GRAD_GROWTH = 1.5

# oscillating: OSCILLATION_EPOCHS consecutive epoch-to-epoch changes of the train loss alternate in
# sign, each at least OSCILLATION_MIN_SWING of the level (the window's mean loss), while the mean
# update ratio over the window is at least HIGH_UPDATE_RATIO
OSCILLATION_EPOCHS = 4
OSCILLATION_MIN_SWING = 0.02
HIGH_UPDATE_RATIO = 1e-2

# plateau: the train loss changed by less than PLATEAU_CHANGE (relative, either way) in each of
# PLATEAU_EPOCHS consecutive epochs while the LR is still large
PLATEAU_EPOCHS = 5
PLATEAU_CHANGE = 1e-3

# lr_too_small: the mean update ratio stayed below LOW_UPDATE_RATIO for LOW_UPDATE_EPOCHS
# consecutive epochs while the LR is still large (and not zero: that is dead_warmup)
LOW_UPDATE_RATIO = 1e-4
LOW_UPDATE_EPOCHS = 3

# overfitting: the val loss rose and the train loss fell in each of OVERFIT_EPOCHS consecutive epochs
OVERFIT_EPOCHS = 3

# dead_warmup: an epoch whose largest LR is at most DEAD_LR_FRACTION of the run's peak LR (or 0
# when the peak is 0): it trained a whole epoch without moving
DEAD_LR_FRACTION = 1e-6

# the LR is still large while at least this fraction of the run's largest LR so far
LARGE_LR_FRACTION = 0.5


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _all_ok(values: Sequence[float | None]) -> bool:
    return all(_ok(v) for v in values)


def _measured(values) -> list[float]:
    """The finite values among ``values`` (an epoch shorter than ``training.diagnostics_every``
    steps may measure no update ratio or grad norm)."""
    return [v for v in values if _ok(v)]


def _g(x: float) -> str:
    return f"{x:.4g}"


def _lr_still_large(run: Epochs) -> list[bool]:
    """Per epoch: is its LR still large (see the module's docstring)?  One pass, with the running peak."""
    dead = _dead_level(run)
    flags, peak = [], -math.inf
    for lr in run.lr:
        if not _ok(lr):
            flags.append(True)
            continue
        peak = max(peak, lr)
        flags.append(lr >= LARGE_LR_FRACTION * peak and not (dead is not None and lr <= dead))
    return flags


def _dead_level(run: Epochs) -> float | None:
    lrs = [v for v in run.lr if _ok(v)]
    return DEAD_LR_FRACTION * max(lrs) if lrs else None


def _finding(rule: str, severity: str, run: Epochs, i: int, message: str, suggestion: str,
             **evidence: float) -> Finding:
    return Finding(rule=rule, severity=severity, epoch=run.epochs[i], message=message, suggestion=suggestion,
                   evidence=evidence)


_DIVERGE_HINT = "lower the LR (a range test finds the largest stable one), or clip the gradient norm"


def _nonfinite(run: Epochs) -> tuple[int, Finding] | None:
    for i, count in enumerate(run.nonfinite_loss):
        if count:
            return i, _finding("diverging", "error", run, i, f"{count} loss value(s) were not finite in epoch "
                               f"{run.epochs[i]}", _DIVERGE_HINT, nonfinite_points=count)
    return None


def _loss_rising(run: Epochs) -> tuple[int, Finding] | None:
    k = DIVERGE_EPOCHS
    for i in range(k, len(run.epochs)):
        loss = run.train_loss[i - k: i + 1]
        if _all_ok(loss) and loss[0] > 0 and all(b > a for a, b in zip(loss, loss[1:])) \
                and loss[-1] >= (1 + DIVERGE_MIN_RISE) * loss[0]:
            return i, _finding("diverging", "error", run, i,
                               f"train loss rose for {k} epochs in a row, from {_g(loss[0])} (epoch "
                               f"{run.epochs[i - k]}) to {_g(loss[-1])} (×{_g(loss[-1] / loss[0])})",
                               _DIVERGE_HINT, loss_from=loss[0], loss_to=loss[-1], ratio=loss[-1] / loss[0])
    return None


def _grad_growing(run: Epochs) -> tuple[int, Finding] | None:
    k = DIVERGE_EPOCHS
    measured = [(i, g) for i, g in enumerate(run.grad_norm) if _ok(g)]  # epochs with a measured step
    for j in range(k, len(measured)):
        grad = [g for _, g in measured[j - k: j + 1]]
        if grad[0] > 0 and all(b >= GRAD_GROWTH * a for a, b in zip(grad, grad[1:])):
            i, growth = measured[j][0], (grad[-1] / grad[0]) ** (1 / k)
            return i, _finding("diverging", "error", run, i,
                               f"grad_norm grew geometrically over {k} epochs, from {_g(grad[0])} (epoch "
                               f"{run.epochs[measured[j - k][0]]}) to {_g(grad[-1])} (×{_g(growth)} per epoch)",
                               _DIVERGE_HINT, grad_norm_from=grad[0], grad_norm_to=grad[-1], growth=growth)
    return None


def diverging(run: Epochs) -> Finding | None:
    """The loss runs away: a non-finite train or val loss; or the train loss L rising in each of
    k = ``DIVERGE_EPOCHS`` consecutive epochs with L_e ≥ (1 + ``DIVERGE_MIN_RISE``)·L_{e−k}; or the
    mean grad norm G growing geometrically, G_j / G_{j−1} ≥ ``GRAD_GROWTH`` over k consecutive
    epochs that measured it (an epoch shorter than ``training.diagnostics_every`` steps may
    measure none).  Evidence: the losses (grad norms) at both ends and their ratio, or the count of
    non-finite points.  Fires at the earliest of the three (the first named on a tie)."""
    found = [f for check in (_nonfinite, _loss_rising, _grad_growing) if (f := check(run)) is not None]
    return min(found, key=lambda f: f[0])[1] if found else None


def oscillating(run: Epochs) -> Finding | None:
    """The train loss bounces around a level: over k = ``OSCILLATION_EPOCHS`` consecutive epoch
    changes d_j = L_j − L_{j−1} alternate in sign with |d_j| ≥ ``OSCILLATION_MIN_SWING``·level,
    level = the mean of the k + 1 losses, while the mean update ratio over those epochs is at
    least ``HIGH_UPDATE_RATIO`` (over the epochs that measured it).  Evidence: level, mean swing
    |d| / level, update ratio."""
    k = OSCILLATION_EPOCHS
    for i in range(k, len(run.epochs)):
        loss, ratio = run.train_loss[i - k: i + 1], _measured(run.update_ratio[i - k: i + 1])
        if not (_all_ok(loss) and ratio):
            continue
        level = sum(loss) / len(loss)
        changes = [b - a for a, b in zip(loss, loss[1:])]
        alternate = all(a * b < 0 for a, b in zip(changes, changes[1:]))
        if level <= 0 or not alternate or min(abs(d) for d in changes) < OSCILLATION_MIN_SWING * level:
            continue
        update_ratio = sum(ratio) / len(ratio)
        if update_ratio < HIGH_UPDATE_RATIO:
            continue
        swing = sum(abs(d) for d in changes) / k / level
        return _finding("oscillating", "warning", run, i,
                        f"train loss went up and down for {k} epochs around {_g(level)} (mean swing "
                        f"{swing:.1%} of it) with update_ratio {_g(update_ratio)}",
                        "lower the LR, or add momentum damping / a decaying schedule",
                        level=level, swing=swing, update_ratio=update_ratio)
    return None


def plateau(run: Epochs) -> Finding | None:
    """No progress at full speed: |L_j − L_{j−1}| / |L_{j−1}| < ``PLATEAU_CHANGE`` for each of
    k = ``PLATEAU_EPOCHS`` consecutive epochs while the LR is still large.  Evidence: the largest
    relative change over the window and the LR."""
    k, large = PLATEAU_EPOCHS, _lr_still_large(run)
    for i in range(k, len(run.epochs)):
        loss = run.train_loss[i - k: i + 1]
        if not _all_ok(loss) or any(a == 0 for a in loss[:-1]):
            continue
        changes = [abs(b - a) / abs(a) for a, b in zip(loss, loss[1:])]
        if max(changes) >= PLATEAU_CHANGE or not all(large[i - k + 1: i + 1]):
            continue
        lr = run.lr[i]
        return _finding("plateau", "info", run, i,
                        f"train loss changed by at most {max(changes):.3%} per epoch for {k} epochs (at "
                        f"{_g(loss[-1])})" + (f" while the LR is still {_g(lr)}" if _ok(lr) else ""),
                        "try a scheduler (cosine, or reduce on plateau), or a larger LR",
                        change=max(changes), **({"lr": lr} if _ok(lr) else {}))
    return None


def lr_too_small(run: Epochs) -> Finding | None:
    """Updates too small to learn: the mean update ratio below ``LOW_UPDATE_RATIO`` in each of
    k = ``LOW_UPDATE_EPOCHS`` consecutive epochs (each that measured it, at least one) while the
    LR is still large and above the dead level.  Evidence: the largest of those epochs' update ratios and the LR."""
    k, large = LOW_UPDATE_EPOCHS, _lr_still_large(run)
    for i in range(k - 1, len(run.epochs)):
        window = range(i - k + 1, i + 1)
        ratio = _measured(run.update_ratio[j] for j in window)
        if not ratio or max(ratio) >= LOW_UPDATE_RATIO:
            continue
        if not all(large[j] for j in window):
            continue
        lr = run.lr[i]
        return _finding("lr_too_small", "info", run, i,
                        f"update_ratio stayed below {_g(LOW_UPDATE_RATIO)} for {k} epochs (at most "
                        f"{_g(max(ratio))})" + (f" at LR {_g(lr)}" if _ok(lr) else ""),
                        "raise the LR (a range test finds a good one)",
                        update_ratio=max(ratio), **({"lr": lr} if _ok(lr) else {}))
    return None


def overfitting(run: Epochs) -> Finding | None:
    """The model memorises: in each of k = ``OVERFIT_EPOCHS`` consecutive epochs the val loss rose
    and the train loss fell.  Evidence: the val losses at both ends, and the run's best epoch
    (smallest val loss, earliest on a tie) with its val loss: what early stopping would have kept."""
    k = OVERFIT_EPOCHS
    for i in range(k, len(run.epochs)):
        val, train = run.val_loss[i - k: i + 1], run.train_loss[i - k: i + 1]
        if not (_all_ok(val) and _all_ok(train)):
            continue
        if all(b > a for a, b in zip(val, val[1:])) and all(b < a for a, b in zip(train, train[1:])):
            scored = [(v, run.epochs[j]) for j, v in enumerate(run.val_loss) if _ok(v)]
            best_val, best_epoch = min(scored)
            return _finding("overfitting", "warning", run, i,
                            f"val loss rose from {_g(val[0])} to {_g(val[-1])} over epochs {run.epochs[i - k]}–"
                            f"{run.epochs[i]} while train loss fell from {_g(train[0])} to {_g(train[-1])}",
                            f"early stopping at epoch {best_epoch} would have kept val/loss {_g(best_val)}; "
                            "or add regularisation (weight decay, dropout)",
                            val_loss_from=val[0], val_loss_to=val[-1], best_epoch=best_epoch, best_val_loss=best_val)
    return None


def dead_warmup(run: Epochs) -> Finding | None:
    """The LR reached 0: an epoch whose largest LR is at most ``DEAD_LR_FRACTION`` of the run's
    peak LR (or 0 when the peak is) — a warm-up starting at 0 that never rises, or a schedule that
    ends before the run does.  Evidence: that epoch's LR and the peak."""
    dead = _dead_level(run)
    if dead is None:
        return None
    peak = max(v for v in run.lr if _ok(v))
    for i, lr in enumerate(run.lr):
        if _ok(lr) and lr <= dead:
            return _finding("dead_warmup", "warning", run, i,
                            f"the LR was at most {_g(lr)} in epoch {run.epochs[i]} (peak {_g(peak)}): that epoch "
                            "did not train",
                            "check the warm-up's start factor and length and the schedule's length (it "
                            "should span the whole run)",
                            lr=lr, peak_lr=peak)
    return None


ALL = (diverging, oscillating, plateau, lr_too_small, overfitting, dead_warmup)
