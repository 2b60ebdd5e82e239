"""The range test's arithmetic: the geometric schedule, the bias-corrected EMA against a hand loop,
the stop rule, and the suggestion on synthetic curves whose steepest point and minimum are known
in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.studies.range_test import (
    MIN_POINTS,
    SKIP_END,
    SKIP_START,
    _window,
    diverged,
    lr_at,
    smooth,
    suggest,
    valid_length,
)

# 61 rates, 1e-6 … 1: exactly 0.1 decade apart
GRID = [lr_at(i, 1e-6, 1.0, 61) for i in range(61)]
U = np.log10(GRID)
STEP = 0.1


@pytest.mark.parametrize(("min_lr", "max_lr", "n"), [(1e-7, 10.0, 100), (1e-3, 1e-2, 2), (0.5, 8.0, 5), (1e-6, 1.0, 61)])
def test_schedule_runs_from_min_to_max_with_one_ratio(min_lr, max_lr, n):
    lrs = [lr_at(i, min_lr, max_lr, n) for i in range(n)]
    assert lrs[0] == min_lr and lrs[-1] == max_lr
    ratio = (max_lr / min_lr) ** (1 / (n - 1))
    assert np.array(lrs[1:]) / np.array(lrs[:-1]) == pytest.approx(np.full(n - 1, ratio), rel=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0.0, 1.0, 10), "min_lr"),
        ((0, -1e-3, 1.0, 10), "min_lr"),
        ((0, 1e-3, 1e-3, 10), "max_lr"),
        ((0, 1e-3, math.inf, 10), "max_lr"),
        ((0, 1e-3, 1.0, 1), "num_steps"),
        ((0, 1e-3, 1.0, 10.0), "num_steps"),
        ((10, 1e-3, 1.0, 10), "step"),
        ((-1, 1e-3, 1.0, 10), "step"),
    ],
)
def test_schedule_rejects_a_bad_range(args, message):
    with pytest.raises(ValueError, match=message):
        lr_at(*args)


def _hand_ema(losses, beta):
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.98])
def test_smooth_is_the_bias_corrected_ema(beta):
    losses = list(np.random.default_rng(0).uniform(0.5, 3.0, 50))
    smoothed = smooth(losses, beta)
    assert smoothed.tolist() == pytest.approx(_hand_ema(losses, beta), rel=1e-13)
    assert smoothed[0] == pytest.approx(losses[0], rel=1e-15)  # the correction removes the pull to 0
    assert smooth([2.0] * 20, beta).tolist() == pytest.approx([2.0] * 20, rel=1e-13)
    if beta == 0.0:
        assert smoothed.tolist() == losses


def test_smooth_stays_non_finite_after_a_non_finite_loss_and_rejects_a_bad_beta():
    assert np.isfinite(smooth([1.0, 2.0, math.nan, 1.0, 1.0])).tolist() == [True, True, False, False, False]
    assert np.isfinite(smooth([1.0, math.inf, 1.0])).tolist() == [True, False, False]
    for beta in (-0.1, 1.0):
        with pytest.raises(ValueError, match="beta"):
            smooth([1.0], beta)


@pytest.mark.parametrize(
    ("value", "best", "factor", "expected"),
    [
        (5.0, 1.0, 4.0, True),
        (4.0, 1.0, 4.0, False),  # strictly above
        (2.5, 1.0, 2.0, True),
        (1e9, math.inf, 4.0, False),  # the first step has no best
        (math.nan, 1.0, 4.0, True),
        (math.inf, 1.0, 4.0, True),
        (-math.inf, 1.0, 4.0, True),
        (math.nan, math.inf, 4.0, True),
        (0.5, 1.0, 4.0, False),
    ],
)
def test_stop_rule(value, best, factor, expected):
    assert diverged(value, best, factor) is expected


def test_stop_rule_rejects_a_factor_of_one_or_less():
    with pytest.raises(ValueError, match="factor"):
        diverged(1.0, 1.0, 1.0)


def _sigmoid_drop(u, u0, width=0.3):
    """2 → 1 as log10 lr passes u0; the slope is steepest at u0."""
    return 2.0 - 1.0 / (1.0 + np.exp(-(u - u0) / width))


@pytest.mark.parametrize("u0", [-3.03, -2.5, -4.26, -1.8])
def test_steepest_is_the_inflection_of_a_sigmoid_drop(u0):
    s = suggest(GRID, _sigmoid_drop(U, u0).tolist(), beta=0.0)
    assert abs(math.log10(s.steepest) - u0) <= STEP + 1e-9  # within one grid point
    assert s.lr == s.steepest and s.method == "steepest" and s.used == len(GRID)


@pytest.mark.parametrize("k", [15, 40, 55, 3])
def test_minimum_is_the_lr_of_the_smallest_loss(k):
    losses = ((U - U[k]) ** 2 + 1.0).tolist()
    s = suggest(GRID, losses, beta=0.0)
    assert s.minimum == GRID[k] and s.min_div_10 == GRID[k] / 10


def test_with_smoothing_the_suggestion_is_read_off_the_smoothed_curve():
    u0 = -3.0
    noise = np.random.default_rng(1).normal(0.0, 0.02, len(U))
    losses = (_sigmoid_drop(U, u0) + noise).tolist()
    s = suggest(GRID, losses)  # β = 0.98
    hand = np.array(_hand_ema(losses, 0.98))
    assert s.smoothed == pytest.approx(tuple(hand), rel=1e-13)
    window = slice(SKIP_START, len(GRID) - SKIP_END)
    slopes = np.gradient(hand[window], U[window])
    assert s.steepest == GRID[SKIP_START + int(np.argmin(slopes))]
    assert s.minimum == GRID[int(np.argmin(hand))]


def test_points_after_divergence_do_not_count():
    # a drop steepest at index 20, bottoming out near 1 at index 30; 5.0 > 4 · min flags index 32;
    # after it a steeper fall to a "loss" of 0.01 that must be ignored
    losses = _sigmoid_drop(U[:31], U[20]).tolist() + [1.5, 5.0, 50.0, 0.01, 0.01]
    lrs = GRID[: len(losses)]
    s = suggest(lrs, losses, beta=0.0)
    assert s.used == 32
    assert s.minimum == lrs[30]
    assert s.steepest == lrs[20]
    assert len(s.smoothed) == len(losses)


@pytest.mark.parametrize(("bad", "at"), [(math.nan, 20), (math.inf, 20), (-math.inf, 25), (math.nan, 1)])
def test_a_non_finite_loss_ends_the_valid_curve(bad, at):
    losses = list(np.linspace(2.0, 1.0, 40))
    losses[at] = bad
    s = suggest(GRID[:40], losses, beta=0.9)
    assert s.used == at
    assert s.minimum == GRID[at - 1]  # the falling curve's last valid point


def test_a_first_loss_that_is_not_finite_has_no_suggestion():
    with pytest.raises(ValueError, match="no loss before divergence"):
        suggest(GRID[:3], [math.nan, 1.0, 1.0])


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, None),
        (1, None),
        (MIN_POINTS - 1, None),
        (MIN_POINTS, (0, MIN_POINTS)),
        (12, (4, 9)),  # 7 spare points: 7·10//15 = 4 skipped at the start, 3 at the end
        (SKIP_START + SKIP_END + MIN_POINTS, (SKIP_START, SKIP_START + MIN_POINTS)),
        (100, (SKIP_START, 100 - SKIP_END)),
    ],
)
def test_the_steepest_window_shrinks_its_skips_on_short_curves(n, expected):
    assert _window(n, SKIP_START, SKIP_END) == expected


@pytest.mark.parametrize("n", [1, 2, MIN_POINTS - 1])
def test_a_very_short_curve_falls_back_to_a_tenth_of_the_minimum(n):
    losses = list(np.linspace(2.0, 1.0, n))
    s = suggest(GRID[:n], losses, beta=0.0)
    assert s.steepest is None and s.method == "min_div_10"
    assert s.lr == s.min_div_10 == GRID[n - 1] / 10


def test_a_short_curve_long_enough_finds_its_steepest_point():
    losses = [2.0, 1.9, 1.0, 0.9, 0.85, 0.8]  # the drop from 1.9 to 1.0: index 1 and 2 share the slope
    s = suggest(GRID[:6], losses, beta=0.0)
    assert s.steepest in (GRID[1], GRID[2]) and s.lr == s.steepest


def test_a_curve_that_never_falls_has_no_steepest_point():
    losses = np.linspace(1.0, 3.0, 40).tolist()
    s = suggest(GRID[:40], losses, beta=0.0)
    assert s.steepest is None and s.minimum == GRID[0] and s.lr == GRID[0] / 10


def test_valid_length_flags_the_first_divergent_point():
    assert valid_length([1.0, 0.5, 1.9, 2.1, 0.1], factor=4.0) == 3
    assert valid_length([1.0, 0.5, 0.4]) == 3
    assert valid_length([]) == 0


@pytest.mark.parametrize(
    ("lrs", "losses", "message"),
    [
        ([1e-3, 1e-2], [1.0], "one length"),
        ([1e-2, 1e-3], [1.0, 1.0], "strictly increasing"),
        ([1e-3, 1e-3], [1.0, 1.0], "strictly increasing"),
        ([-1e-3, 1e-3], [1.0, 1.0], "positive"),
        ([0.0, 1e-3], [1.0, 1.0], "positive"),
    ],
)
def test_suggest_rejects_malformed_curves(lrs, losses, message):
    with pytest.raises(ValueError, match=message):
        suggest(lrs, losses)
