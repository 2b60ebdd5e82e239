"""Stratified train/val/test splits of the built-in datasets and specs for engine tests."""

from __future__ import annotations

from functools import cache

import numpy as np
from sklearn.model_selection import train_test_split

from core.datasets import builtin_info, load_builtin
from core.spec import ExperimentSpec, resolve_spec
from core.splits import SplitArrays


@cache
def builtin_indices(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of a 60/20/20 split, stratified for classification."""
    x, y = load_builtin(name)
    idx = np.arange(len(x))
    strat = y if builtin_info(name).task == "classification" else None
    train, rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=strat)
    val, test = train_test_split(
        rest, test_size=0.5, random_state=seed, stratify=None if strat is None else y[rest]
    )
    return train, val, test


@cache
def builtin_split(name: str, seed: int = 0) -> SplitArrays:
    x, y = load_builtin(name)
    train, val, test = builtin_indices(name, seed)
    return SplitArrays(x[train], y[train], x[val], y[val], x[test], y[test], builtin_info(name))


def make_spec(split: SplitArrays, *, solver=None, architecture=None, scheduler=None, **training) -> ExperimentSpec:
    body = {
        "name": "test",
        "split_id": 1,
        "architecture": architecture or {"name": "mlp", "depth": 1, "width": 16},
        "solver": solver or {"name": "adam", "base_lr": 1e-2},
        "training": {"epochs": 1, "batch_size": 256, **training},
    }
    if scheduler is not None:
        body["scheduler"] = scheduler
    return resolve_spec(ExperimentSpec.model_validate(body), split.info, len(split.x_train))
