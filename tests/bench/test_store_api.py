"""The api benchmark's direct fill of long series writes the blocks ingest would write."""

from __future__ import annotations

import numpy as np
import pytest

from bench.store_api import dense_rollup_rows
from store.repositories.metrics.rollups import rollup_rows


@pytest.mark.parametrize("n", [1, 63, 64, 5_000, 70_001])
def test_dense_rollup_rows_equal_the_ingest_rollups(n):
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(size=n), 1)  # ties: the earliest step must win in both
    key = lambda row: (row["width"], row["block"])  # noqa: E731
    want = sorted(rollup_rows(7, "loss", np.arange(n), values), key=key)
    assert sorted(dense_rollup_rows(7, "loss", values), key=key) == want
