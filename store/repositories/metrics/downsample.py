"""Downsampling in numpy: each step bucket keeps its smallest and largest value, so spikes
survive.  From the points themselves (:func:`downsample`) or exactly from rollup blocks
(:class:`Blocks`), whose width divides the bucket width (:func:`bucket_width`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from store.models import ROLLUP_WIDTHS


@dataclass
class Series:
    steps: list[int]
    values: list[float | None]


def bucket_width(first: int, last: int, max_points: int) -> int:
    """Step width of the buckets a series over ``[first, last]`` is cut into.  Buckets start at
    multiples of the width (not at ``first``) and the width is a multiple of a rollup level, so
    every rollup block lies inside one bucket and the bucket extremes are exact.  At most
    ``max_points // 2`` buckets overlap the range.

    With ``raw = ceil(length / buckets)`` and ``grid`` the largest level ``<= 2 raw``, levels four
    apart give ``grid > raw / 2`` (below the top level), so the width ``ceil(raw / grid) * grid``
    is one or two blocks of ``grid``: a read touches at most ``max_points`` blocks per series."""
    buckets = max(1, max_points // 2 - 1)
    raw = max(1, math.ceil((last - first + 1) / buckets))
    # a grid up to twice the ideal width: at least half the buckets asked for, from far fewer blocks
    grid = max([w for w in ROLLUP_WIDTHS if w <= 2 * raw], default=1)
    return math.ceil(raw / grid) * grid


def group_extremes(groups: np.ndarray, keys: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each group (``groups`` sorted ids): the index of its smallest key, earliest step on ties."""
    order = np.lexsort((steps, keys, groups))
    unique, first = np.unique(groups[order], return_index=True)
    return unique, order[first]


def downsample(steps: np.ndarray, values: np.ndarray, width: int) -> Series:
    """Keep each bucket's (``step // width``) smallest and largest value, earliest step on ties;
    NaN is skipped.  ``steps`` ascending: each point is a block of one step."""
    return Blocks(steps, steps, values, steps, values).downsample(1, width)


@dataclass
class Blocks:
    """One series' rollup blocks of one level, in block order; NaN for a block of only
    non-finite values (its steps are then meaningless)."""

    block: np.ndarray  # int64
    min_step: np.ndarray  # int64
    min_value: np.ndarray  # float64
    max_step: np.ndarray
    max_value: np.ndarray

    def downsample(self, level: int, width: int) -> Series:
        """Each bucket's (``step // width``) smallest and largest value, earliest step on ties,
        exactly: a bucket is a run of whole blocks (``width`` is a multiple of ``level``), its
        minimum the least block minimum, and block minima come in step order."""
        if len(self.block) == 0:
            return Series([], [])
        bucket = self.block * level // width
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        low_steps, low_values = _first_extreme(self.min_step, self.min_value, starts)
        high_steps, high_values = _first_extreme(self.max_step, -self.max_value, starts)
        steps = np.concatenate([low_steps, high_steps])
        values = np.concatenate([low_values, -high_values])
        kept, first = np.unique(steps, return_index=True)  # a flat bucket picks one point twice
        return Series(kept.tolist(), values[first].tolist())


def _first_extreme(steps: np.ndarray, values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (``starts`` of runs of ``values``): the step and value of its smallest value,
    the first one on ties; segments of only NaN give nothing."""
    v = np.where(np.isnan(values), np.inf, values)
    least = np.minimum.reduceat(v, starts)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(v)]))
    hits = np.flatnonzero(v == least[segment])  # never true for an all-NaN (inf) segment's inf
    hits = hits[np.isfinite(v[hits])]
    first = hits[np.r_[True, segment[hits][1:] != segment[hits][:-1]]] if len(hits) else hits
    return steps[first], values[first]
