"""Metric ingest and reads on both databases, checked against numpy computed from the points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from store.repositories import metrics as repo
from tests.store.helpers import make_experiment


def _points(name, steps, values, t0=1000.0):
    return [(name, int(s), int(s) // 10, float(v), t0 + float(s)) for s, v in zip(steps, values)]


def test_resent_batch_inserts_nothing_and_leaves_summary_alone(session):
    eid = make_experiment(session)
    batch = _points("train/loss", range(100), np.linspace(2, 1, 100))
    assert repo.add_points(session, eid, batch) == 100
    before = [(s.count, s.last_value, s.best_value) for s in repo.summaries(session, [eid])]
    assert repo.add_points(session, eid, batch) == 0
    assert repo.add_points(session, eid, batch[40:60] + _points("train/loss", [100], [0.5])) == 1
    after = repo.summaries(session, [eid])[0]
    assert before == [(100, 1.0, 1.0)]
    assert (after.count, after.last_step, after.last_value, after.best_value) == (101, 100, 0.5, 0.5)


@pytest.mark.parametrize("name, higher", [("val/loss", False), ("val/accuracy", True), ("test/r2", True),
                                          ("grad_norm", False)])
def test_summary_matches_numpy_over_shuffled_batches(session, name, higher):
    rng = np.random.default_rng(0)
    steps = np.arange(0, 3000, 3)
    values = rng.normal(size=len(steps))
    values[[10, 500]] = np.nan  # diverged points never become "best"
    eid = make_experiment(session)
    order = rng.permutation(len(steps))
    for chunk in np.array_split(order, 7):  # out of order, overlapping nothing
        repo.add_points(session, eid, _points(name, steps[chunk], values[chunk]))
    s = repo.summaries(session, [eid])[0]
    finite = ~np.isnan(values)
    best = np.nanargmax(values) if higher else np.nanargmin(values)
    assert s.count == len(steps)
    assert (s.first_step, s.last_step) == (0, steps[-1])
    assert s.last_value == pytest.approx(values[-1])
    assert (s.best_step, s.best_value) == (steps[best], pytest.approx(values[best]))
    assert s.best_wall_time - s.first_wall_time == pytest.approx(float(steps[best]))
    assert finite.sum() == len(steps) - 2


def test_non_finite_values_are_stored_as_null(session):
    eid = make_experiment(session)
    repo.add_points(session, eid, [("train/loss", 0, 0, 1.0, 1.0), ("train/loss", 1, 0, math.inf, 2.0),
                                   {"name": "train/loss", "step": 2, "value": math.nan, "wall_time": 3.0}])
    assert [p[2] for p in repo.raw_points(session, eid, "train/loss")] == [1.0, None, None]
    s = repo.summaries(session, [eid])[0]
    assert (s.last_step, s.last_value, s.best_step) == (2, None, 0)


def _expected_steps(steps, values, width):
    """Brute-force oracle: in every bucket ``step // width`` the steps of the smallest and the
    largest value (earliest step on ties)."""
    chosen = set()
    for b in np.unique(steps // width):
        inside = np.flatnonzero(steps // width == b)
        v = values[inside]
        chosen.add(int(steps[inside[np.flatnonzero(v == v.min())[0]]]))
        chosen.add(int(steps[inside[np.flatnonzero(v == v.max())[0]]]))
    return sorted(chosen)


@pytest.mark.parametrize("n, stride, max_points", [
    (300, 1, 500),  # short: every point
    (5000, 1, 500),  # 16-step rollups
    (30_000, 7, 500),  # 256-step rollups over sparse steps
    (20_000, 1, 6),  # 4096-step rollups
    (250, 1, 40),  # buckets narrower than any rollup: read the points
])
def test_downsampled_series_is_each_buckets_min_and_max(session, n, stride, max_points):
    rng = np.random.default_rng(n)
    steps = np.arange(n) * stride + 5
    values = np.round(np.cumsum(rng.normal(size=n)), 3)  # rounding makes ties happen
    values[n // 3] += 1e3  # spikes must survive
    values[2 * n // 3] -= 1e3
    eid = make_experiment(session)
    for chunk in np.array_split(rng.permutation(n), 3):
        repo.add_points(session, eid, _points("train/loss", steps[chunk], values[chunk]))
    series = repo.series(session, eid, ["train/loss"], max_points)["train/loss"]
    assert len(series.steps) <= max_points
    if n <= max_points:
        assert series.steps == steps.tolist() and series.values == values.tolist()
        return
    width = repo.bucket_width(int(steps[0]), int(steps[-1]), max_points)
    assert series.steps == _expected_steps(steps, values, width)
    assert series.values == values[np.searchsorted(steps, series.steps)].tolist()
    assert {int(steps[n // 3]), int(steps[2 * n // 3])} <= set(series.steps)


def test_series_many_reads_several_experiments_and_filters_names(session):
    a, b = make_experiment(session), make_experiment(session)
    repo.add_points(session, a, _points("x", range(10), range(10)) + _points("y", range(5), range(5)))
    repo.add_points(session, b, _points("x", range(3), [7, 8, 9]))
    got = repo.series_many(session, [a, b], ["x"], 500)
    assert set(got[a]) == {"x"} and got[b]["x"].values == [7.0, 8.0, 9.0]
    assert repo.series(session, a, None, 500)["y"].steps == [0, 1, 2, 3, 4]


def test_max_points_below_four_is_rejected(session):
    with pytest.raises(ValueError, match="max_points"):
        repo.series(session, make_experiment(session), None, 3)


def test_appended_points_keep_awkward_names_epochs_and_exact_values(session):
    """An append-only batch takes the bulk path (COPY on PostgreSQL): names with the characters
    its text format escapes, null epochs and full float precision come back as they went in."""
    eid = make_experiment(session)
    names = ["tab\there", "back\\slash", "new\nline", "ünïcode/loss"]
    values = [0.1 + 1e-17, 1.2345678901234567e-300, -3.0, 123456789.123456789]
    points = [(n, s, None if s % 2 else s, v * (s + 1), 1e9 + s / 3) for n in names for s, v in enumerate(values)]
    assert repo.add_points(session, eid, points) == len(points)
    for name in names:
        stored = repo.raw_points(session, eid, name)
        want = [(s, e, v, w) for n, s, e, v, w in points if n == name]
        assert stored == want
    assert repo.add_points(session, eid, points) == 0


def test_append_that_meets_a_row_written_meanwhile_falls_back_to_skipping_it(session):
    """The append check reads the summary; a point another writer stored without it yet being
    visible there makes the bulk append conflict, and the batch is inserted row by row instead."""
    from store.models import Metric

    eid = make_experiment(session)
    session.add(Metric(experiment_id=eid, name="lr", step=5, epoch=0, value=9.0, wall_time=1.0))
    session.flush()
    assert repo.add_points(session, eid, _points("lr", range(10), np.arange(10.0))) == 9
    stored = repo.raw_points(session, eid, "lr")
    assert [p[0] for p in stored] == list(range(10))
    assert stored[5][2] == 9.0  # the earlier writer's point is kept


def test_downsampling_from_rollups_skips_non_finite_points_and_whole_non_finite_blocks(session):
    """A diverged stretch (NaN and inf, stored as NULL) longer than a block leaves blocks with no
    value: those buckets give no point, and the others still give their exact min and max."""
    rng = np.random.default_rng(3)
    n = 20_000
    steps = np.arange(n)
    values = np.round(np.cumsum(rng.normal(size=n)), 2)
    values[3000:3700] = np.nan  # several whole 16- and 256-step blocks
    values[rng.choice(n, 50, replace=False)] = np.inf
    eid = make_experiment(session)
    for chunk in np.array_split(rng.permutation(n), 4):
        repo.add_points(session, eid, _points("val/loss", steps[chunk], values[chunk]))
    series = repo.series(session, eid, ["val/loss"], 500)["val/loss"]
    finite = np.isfinite(values)
    width = repo.bucket_width(0, n - 1, 500)
    assert width % 16 == 0 and n > 500  # read from the rollups, not the points
    assert series.steps == _expected_steps(steps[finite], values[finite], width)
    assert series.values == values[series.steps].tolist()
    assert not any(3000 <= s < 3700 for s in series.steps)


# Names and values that a hand-built array or COPY literal would mangle: quotes, commas, braces,
# backslashes, the words None/NULL/nan, an empty string; and None, NaN and inf values.
AWKWARD_NAMES = ['quo"te', "it's", "a,b", "{brace}", "back\\slash", "None", "NULL", "nan", "", "tab\tnew\nline"]


@pytest.mark.parametrize("order", ["append", "out_of_order"])
def test_awkward_names_and_missing_values_survive_ingest_and_rollups(session, order):
    """Both ingest paths (COPY on PostgreSQL for an append, INSERT ... ON CONFLICT otherwise) and
    the rollup upsert keep every name and value exactly; None/NaN/inf become NULL."""
    from sqlalchemy import select

    from store.models import MetricRollup

    eid = make_experiment(session)
    steps = list(range(40))
    values = [None if s % 7 == 3 else math.nan if s % 11 == 5 else math.inf if s == 17 else s * 0.5 - 3.25
              for s in steps]
    points = [(n, s, None if s % 2 else s, v, 1e9 + s) for n in AWKWARD_NAMES for s, v in zip(steps, values)]
    if order == "append":  # steps 0-19 then 20-39: both batches COPY, block 16-31 is merged
        batches = [[p for p in points if p[1] < 20], [p for p in points if p[1] >= 20]]
    else:  # odd steps then even ones, each reversed: INSERT ... ON CONFLICT, every block merged
        batches = [[p for p in points if p[1] % 2][::-1], [p for p in points if not p[1] % 2][::-1]]
    assert [repo.add_points(session, eid, b) for b in batches] == [len(b) for b in batches]
    assert repo.add_points(session, eid, points[::3]) == 0
    want_values = [v if v is not None and math.isfinite(v) else None for v in values]
    finite = [(s, v) for s, v in zip(steps, want_values) if v is not None]
    summaries = {s.name: s for s in repo.summaries(session, [eid])}
    assert set(summaries) == set(AWKWARD_NAMES)
    for name in AWKWARD_NAMES:
        stored = repo.raw_points(session, eid, name)
        assert stored == [(s, None if s % 2 else s, v, 1e9 + s) for s, v in zip(steps, want_values)]
        s = summaries[name]
        assert (s.count, s.first_step, s.last_step, s.last_value) == (40, 0, 39, want_values[39])
        assert (s.best_step, s.best_value) == min(finite, key=lambda p: (p[1], p[0]))
    rollups = session.execute(
        select(MetricRollup.name, MetricRollup.width, MetricRollup.block, MetricRollup.count,
               MetricRollup.min_step, MetricRollup.min_value, MetricRollup.max_step, MetricRollup.max_value)
        .where(MetricRollup.experiment_id == eid, MetricRollup.width == 16)
    ).all()
    got = {(r[0], r[2]): tuple(r[3:]) for r in rollups}
    want = {}
    for block in range(3):
        inside = [(s, v) for s, v in finite if s // 16 == block]
        low = min(inside, key=lambda p: (p[1], p[0]))
        high = min(inside, key=lambda p: (-p[1], p[0]))
        count = sum(1 for s in steps if s // 16 == block)
        want.update({(n, block): (count, *low, *high) for n in AWKWARD_NAMES})
    assert got == want


def test_an_epoch_or_experiment_id_outside_int32_is_never_stored_wrapped(session):
    """Binary COPY would write a Python int into a 4-byte column modulo 2**32; PostgreSQL must
    reject such a batch instead (SQLite's integers are 64-bit: it keeps the epoch)."""
    from sqlalchemy.exc import DataError

    eid = make_experiment(session)
    points = [("lr", 0, 2**31, 1.0, 1.0), ("lr", 1, 2**32 + 3, 1.0, 2.0)]
    if session.get_bind().dialect.name == "postgresql":
        with pytest.raises(DataError, match="out of range"), session.begin_nested():
            repo.add_points(session, 2**32 + eid, _points("lr", range(3), range(3)))
        assert repo.raw_points(session, eid, "lr") == []
        with pytest.raises(DataError, match="out of range"):
            repo.add_points(session, eid, points)
    else:
        repo.add_points(session, eid, points)
        assert [p[1] for p in repo.raw_points(session, eid, "lr")] == [2**31, 2**32 + 3]
