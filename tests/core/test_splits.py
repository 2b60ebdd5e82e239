"""Splits: disjoint parts covering every row, reproducible, stratified keeps proportions."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets.builtin import load_builtin
from core.splits import SplitError, make_split

FRACTIONS = {"train": 0.7, "val": 0.2, "test": 0.1}


@pytest.mark.parametrize("dataset, strategy", [("iris", "random"), ("iris", "stratified"), ("digits", "stratified"),
                                               ("diabetes", "random")])
def test_parts_are_disjoint_cover_all_rows_and_reproduce(dataset, strategy):
    x, y = load_builtin(dataset)
    task = "regression" if dataset == "diabetes" else "classification"
    parts = make_split(y, task, strategy, FRACTIONS, seed=3)
    joined = np.concatenate([parts["train"], parts["val"], parts["test"]])
    assert sorted(joined.tolist()) == list(range(len(y)))
    assert len(parts["test"]) == round(0.1 * len(y)) and len(parts["val"]) == round(0.2 * len(y))
    again = make_split(y, task, strategy, FRACTIONS, seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["train"], make_split(y, task, strategy, FRACTIONS, seed=4)["train"])


def test_stratified_parts_keep_class_proportions():
    _, y = load_builtin("digits")
    parts = make_split(y, "classification", "stratified", FRACTIONS, seed=0)
    overall = np.bincount(y) / len(y)
    for idx in parts.values():
        share = np.bincount(y[idx], minlength=10) / len(idx)
        assert np.abs(share - overall).max() < 0.02


@pytest.mark.parametrize("y, task, strategy, fractions, message", [
    (np.arange(10.0), "regression", "stratified", FRACTIONS, "regression"),
    (np.array([0, 1, 1, 1]), "classification", "stratified", {"train": 0.5, "val": 0.25, "test": 0.25}, "least"),
    (np.arange(2), "classification", "random", {"train": 0.1, "val": 0.45, "test": 0.45}, "no training rows"),
])
def test_impossible_splits_raise(y, task, strategy, fractions, message):
    with pytest.raises(SplitError, match=message):
        make_split(y, task, strategy, fractions, seed=0)
