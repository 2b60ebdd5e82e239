"""Hyperparameter checks: one function per kind of argument, one message format.

Every check raises ``ValueError("Invalid <name>: <value> (<what it must be>)")``, naming the
argument as the constructor spells it, so a caller (and the catalog's bounds tests) can tell
which value was at fault.
"""

from __future__ import annotations

import math

import torch


def _number(value):
    return value.item() if isinstance(value, torch.Tensor) else value


def check_ge(name: str, value: float, bound: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``value >= bound`` (NaN fails)."""
    value = _number(value)
    if not (value >= bound) or math.isnan(value):
        raise ValueError(f"Invalid {name}: {value} (must be >= {bound})")


def check_gt(name: str, value: float, bound: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``value > bound``."""
    value = _number(value)
    if not (value > bound):
        raise ValueError(f"Invalid {name}: {value} (must be > {bound})")


def check_range(name: str, value: float, low: float, high: float, *, high_open: bool = True) -> None:
    """Raise ``ValueError`` unless ``low <= value < high`` (``<= high`` when ``high_open`` is False)."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"Invalid {name}: {value} (must be in [{low}, {high}{bracket})")


def check_lr(lr, *, positive: bool = False) -> None:
    """A learning rate: a number or one-element tensor, >= 0 (> 0 when ``positive``)."""
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError(f"Invalid lr: a Tensor lr must have one element, got shape {tuple(lr.shape)}")
    (check_gt if positive else check_ge)("lr", lr)


def check_betas(betas, name: str = "betas") -> None:
    """A pair of decay rates, each in [0, 1); one-element tensors count as numbers."""
    if len(betas) != 2:
        raise ValueError(f"Invalid {name}: {betas} (must be a pair)")
    for i, beta in enumerate(betas):
        beta = _number(beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid {name}[{i}]: {beta} (beta parameter at index {i} must be in [0.0, 1.0))")


def check_int_ge(name: str, value, bound: int) -> None:
    """An integer (not a bool) no smaller than ``bound``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < bound:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {bound})")


def check_choice(name: str, value, choices) -> None:
    """One of a fixed set of values."""
    if value not in choices:
        raise ValueError(f"Invalid {name}: {value!r} (must be one of {list(choices)})")


def reject_unsupported(**flags) -> None:
    """torch's capturable/differentiable/fused are accepted so signatures match; only False/None works."""
    for name, value in flags.items():
        if value:
            raise ValueError(f"Invalid {name}: {value} ({name}=True is not supported; leave it False)")
