"""The store's per-epoch aggregates equal the pure reduction (``core.diagnosis.aggregate``) of the
same points, on both databases: counts, finite counts, means and extremes, with non-finite values
and points without an epoch in the mix."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.diagnosis import NAMES, aggregate
from store.repositories import metrics as repo
from store.repositories.metrics.epochs import epoch_aggregates
from tests.store.helpers import make_experiment


def test_epoch_aggregates_equal_the_pure_reduction_of_the_points(session):
    rng = np.random.default_rng(3)
    points = []
    for name in ("train/loss", "lr", "grad_norm", "other/metric"):
        values = rng.normal(size=60)
        values[[7, 31]] = math.nan
        for step, v in enumerate(values.tolist()):
            epoch = None if step == 59 else step // 13 + 1
            points.append((name, step, epoch, v, 1000.0 + step))
    points.append(("val/loss", 12, 1, math.inf, 1012.0))  # an epoch with no finite value
    eid = make_experiment(session)
    repo.add_points(session, eid, points)
    stored = epoch_aggregates(session, eid, NAMES)
    expected = aggregate((name, epoch, v) for name, _, epoch, v, _ in points if name in NAMES)
    assert stored.keys() == expected.keys()
    for name, by_epoch in expected.items():
        assert stored[name].keys() == by_epoch.keys()
        for epoch, want in by_epoch.items():
            got = stored[name][epoch]
            assert (got.count, got.finite) == (want.count, want.finite)
            for field in ("mean", "low", "high"):
                assert getattr(got, field) == (None if getattr(want, field) is None
                                               else pytest.approx(getattr(want, field), rel=1e-12))
