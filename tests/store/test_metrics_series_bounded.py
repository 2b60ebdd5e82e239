"""Downsampled series reads at every series length: each bucket's exact min and max (checked
against a brute-force pass over the points), read from a number of rows bounded by
``max_points`` whatever the length."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from store.models import ROLLUP_WIDTHS
from store.repositories import metrics as repo
from tests.store.helpers import make_experiment

# the module, not the function ``metrics.series`` that the package exports under its name
series_module = importlib.import_module("store.repositories.metrics.series")


def brute_force(steps, values, width):
    """Oracle, one point at a time: per bucket ``step // width`` the (step, value) of the
    smallest and of the largest finite value, the earliest step on ties."""
    low: dict[int, tuple[float, int]] = {}
    high: dict[int, tuple[float, int]] = {}
    for step, value in zip(steps.tolist(), values.tolist()):
        if math.isnan(value):
            continue
        b = step // width
        if b not in low or (value, step) < low[b]:
            low[b] = (value, step)
        if b not in high or (-value, step) < high[b]:
            high[b] = (-value, step)
    points = {step: value for value, step in low.values()} | {step: -value for value, step in high.values()}
    return sorted(points), [points[s] for s in sorted(points)]


@pytest.fixture
def rows_read(monkeypatch):
    """Counts the rows each read hands back: blocks per level and raw points, per series."""
    counts = {"blocks": [], "points": []}
    read_blocks, read_points = series_module.read_blocks, series_module.read_points

    def counting_blocks(session, level, keys):
        out = read_blocks(session, level, keys)
        counts["blocks"] += [len(b.block) for b in out.values()]
        return out

    def counting_points(session, keys):
        out = read_points(session, keys)
        counts["points"] += [len(steps) for steps, _ in out.values()]
        return out

    monkeypatch.setattr(series_module, "read_blocks", counting_blocks)
    monkeypatch.setattr(series_module, "read_points", counting_points)
    return counts


def _points(name, steps, values):
    return [(name, int(s), None, float(v), 1e9 + float(s)) for s, v in zip(steps, values)]


@pytest.mark.parametrize("length, stride", [
    (1_000, 1),  # buckets of 5 steps, narrower than any block: read from the points
    (20_000, 1),  # the case: it read eight 16-step blocks per bucket
    (20_001, 1),
    (100_000, 1),
    (1_000_000, 10),  # every 16-step block holds points: as many blocks as a dense series
])
def test_every_length_reads_each_buckets_exact_extremes_from_at_most_max_points_rows(
        session, rows_read, length, stride):
    rng = np.random.default_rng(length)
    steps = np.arange(0, length, stride) + 3
    values = np.round(np.cumsum(rng.normal(size=len(steps))), 2)  # rounding makes ties happen
    values[rng.choice(len(steps), 20, replace=False)] = np.nan
    values[len(steps) // 3] += 1e4  # a spike must survive
    eid = make_experiment(session)
    for chunk in np.array_split(np.arange(len(steps)), max(1, len(steps) // 50_000)):
        repo.add_points(session, eid, _points("loss", steps[chunk], values[chunk]))
    for max_points in (500, 64, 1001):
        rows_read["blocks"].clear()
        rows_read["points"].clear()
        got = repo.series(session, eid, ["loss"], max_points)["loss"]
        if len(steps) <= max_points:  # short enough to send whole, missing values as null
            assert got.steps == steps.tolist()
            assert got.values == [None if math.isnan(v) else v for v in values.tolist()]
            continue
        width = repo.bucket_width(int(steps[0]), int(steps[-1]), max_points)
        assert (got.steps, got.values) == brute_force(steps, values, width), max_points
        assert len(got.steps) <= max_points
        assert int(steps[len(steps) // 3]) in got.steps
        read = sum(rows_read["blocks"]) + sum(rows_read["points"])
        if rows_read["blocks"]:
            assert read <= max_points, (max_points, rows_read)
        else:  # buckets narrower than 16 steps: fewer than 8 * (max_points // 2) points
            assert read == len(steps) < 4 * max_points, (max_points, rows_read)


@pytest.mark.parametrize("max_points", [4, 5, 64, 500, 1001])
def test_bucket_width_is_one_or_two_blocks_and_at_most_twice_the_ideal_width(max_points):
    """For every length up to the top level's reach: at most max_points // 2 buckets overlap
    the range, each at most twice as wide as ``ceil(length / buckets)`` (at least half as many
    buckets as asked), and each bucket is one or two whole blocks of one level (or, where even
    twice the ideal width is below the smallest level, read from the points)."""
    buckets = max(1, max_points // 2 - 1)
    top = 2 * ROLLUP_WIDTHS[-1] * buckets
    lengths = {*np.geomspace(1, top, 400).astype(int).tolist(), 20_000, 20_001, 1_000_000}
    for length in sorted(n for n in lengths if n <= top):
        for first in (0, 7, 123_457):
            width = repo.bucket_width(first, first + length - 1, max_points)
            overlapped = (first + length - 1) // width - first // width + 1
            assert overlapped <= max_points // 2
            assert width <= 2 * math.ceil(length / buckets)
            if width >= ROLLUP_WIDTHS[0]:
                assert any(width % level == 0 and width // level <= 2 for level in ROLLUP_WIDTHS), width
            else:
                assert 2 * math.ceil(length / buckets) < ROLLUP_WIDTHS[0]


def test_blocks_are_read_for_the_pairs_asked_for_only(session):
    """Keys are (experiment, name) pairs: asking for a's x and b's y reads neither a's y nor b's x."""
    from store.repositories.metrics.rollups import read_blocks

    a, b = make_experiment(session), make_experiment(session)
    steps = np.arange(5_000)
    for eid in (a, b):
        repo.add_points(session, eid, _points("x", steps, np.sin(steps)) + _points("y", steps, np.cos(steps)))
    got = read_blocks(session, 64, [(a, "x"), (b, "y")])
    assert set(got) == {(a, "x"), (b, "y")}
    assert got[(a, "x")].block.tolist() == list(range(5_000 // 64 + 1))
    points = series_module.read_points(session, [(b, "x")])
    assert set(points) == {(b, "x")} and points[(b, "x")][0].tolist() == steps.tolist()


@pytest.mark.parametrize("steps, values", [([], []), ([3, 4, 40], [math.nan] * 3)])
def test_a_series_with_no_finite_point_downsamples_to_nothing(steps, values):
    got = repo.downsample(np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64), 16)
    assert (got.steps, got.values) == ([], [])
