"""SQLAlchemy 2 typed models.  All SQL that reads or writes them lives in ``store.repositories``."""

from store.models.base import Base, utcnow
from store.models.datasets import Dataset, Split
from store.models.experiments import Experiment
from store.models.idempotency import IdempotencyKey
from store.models.identity import ApiToken, LoginLink, User, WebSession
from store.models.lab import Landscape, Race
from store.models.metrics import ROLLUP_WIDTHS, Metric, MetricRollup, MetricSummary
from store.models.projects import DEFAULT_PROJECT, AuditEvent, Membership, Project
from store.models.studies import Study
from store.models.workers import Worker

__all__ = [
    "DEFAULT_PROJECT",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Dataset",
    "Experiment",
    "IdempotencyKey",
    "Landscape",
    "LoginLink",
    "Membership",
    "Metric",
    "MetricRollup",
    "MetricSummary",
    "Project",
    "Race",
    "ROLLUP_WIDTHS",
    "Split",
    "Study",
    "User",
    "WebSession",
    "Worker",
    "utcnow",
]
