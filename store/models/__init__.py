"""SQLAlchemy 2 typed models.  All SQL that reads or writes them lives in ``store.repositories``."""

from store.models.base import Base, utcnow
from store.models.datasets import Dataset, Split
from store.models.experiments import Experiment
from store.models.metrics import ROLLUP_WIDTHS, Metric, MetricRollup, MetricSummary
from store.models.workers import Worker

__all__ = [
    "Base",
    "Dataset",
    "Experiment",
    "Metric",
    "MetricRollup",
    "MetricSummary",
    "ROLLUP_WIDTHS",
    "Split",
    "Worker",
    "utcnow",
]
