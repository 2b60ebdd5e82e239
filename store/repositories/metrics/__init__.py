"""Metric points: ingest, the per-series summaries and min/max rollups kept current with it,
and series reads downsampled on the server.

- :mod:`.ingest` — :func:`add_points`: binary ``COPY`` rows for an append on PostgreSQL, bound
  array parameters otherwise, executemany on SQLite; idempotent.
- :mod:`.summaries` — ``metric_summaries`` upkeep and :func:`summaries`.
- :mod:`.rollups` — ``metric_rollups`` upkeep and block reads.
- :mod:`.downsample` — the numpy bucket min/max, from points or from rollup blocks.
- :mod:`.series` — :func:`raw_points`, :func:`series`, :func:`series_many`."""

from store.repositories.metrics.downsample import Series, bucket_width, downsample
from store.repositories.metrics.ingest import PointLike, add_points
from store.repositories.metrics.series import MIN_MAX_POINTS, raw_points, series, series_many
from store.repositories.metrics.summaries import point_count, summaries

__all__ = [
    "MIN_MAX_POINTS",
    "PointLike",
    "Series",
    "add_points",
    "bucket_width",
    "downsample",
    "point_count",
    "raw_points",
    "series",
    "series_many",
    "summaries",
]
