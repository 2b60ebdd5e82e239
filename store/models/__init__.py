"""SQLAlchemy 2 typed models.  All SQL that reads or writes them lives in ``store.repositories``."""

from store.models.base import Base, utcnow
from store.models.datasets import Dataset, Split
from store.models.experiments import FINISHED, STATUSES, Experiment
from store.models.metrics import ROLLUP_WIDTHS, Metric, MetricRollup, MetricSummary, higher_is_better
from store.models.workers import Worker

__all__ = [
    "FINISHED",
    "STATUSES",
    "Base",
    "Dataset",
    "Experiment",
    "Metric",
    "MetricRollup",
    "MetricSummary",
    "ROLLUP_WIDTHS",
    "Split",
    "Worker",
    "higher_is_better",
    "utcnow",
]
