"""An experiment's convergence diagnosis, computed on read from its stored metrics (reduced per
epoch in the store, judged by the rules of ``core.diagnosis``), so every run gets one, old runs
too, and a running run's follows its epochs."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.diagnosis import NAMES, DiagnosisPublic, diagnosis
from store.repositories.metrics.epochs import epoch_aggregates


def experiment_diagnosis(session: Session, experiment_id: int) -> DiagnosisPublic:
    """The diagnosis of one experiment (the caller's access was checked by the route)."""
    return diagnosis(epoch_aggregates(session, experiment_id, NAMES))
