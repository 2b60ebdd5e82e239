"""Convergence diagnosis: from the metrics a run already records, name what goes wrong with the
numbers that show it and a suggestion (docs/diagnosis.md).  Pure functions: the api reads the
per-epoch aggregates from the store and calls :func:`diagnose` on every read, so old runs get a
diagnosis too and a running one's updates as its epochs land."""

from __future__ import annotations

from core.diagnosis import rules
from core.diagnosis.findings import RULES, DiagnosisPublic, DiagnosisRule, DiagnosisSeverity, Finding
from core.diagnosis.series import NAMES, Aggregates, Epochs, EpochStats, aggregate, epoch_series


def diagnose(run: Epochs) -> list[Finding]:
    """Every rule's finding (at most one each), by epoch, then in the order of ``RULES``."""
    found = [f for rule in rules.ALL if (f := rule(run)) is not None]
    return sorted(found, key=lambda f: (f["epoch"], RULES.index(f["rule"])))


def diagnose_aggregates(aggregates: Aggregates) -> list[Finding]:
    return diagnose(epoch_series(aggregates))


def diagnosis(aggregates: Aggregates) -> DiagnosisPublic:
    """The api's answer for a run whose metrics reduce to ``aggregates``."""
    run = epoch_series(aggregates)
    return DiagnosisPublic(epochs=len(run.epochs), findings=diagnose(run))


__all__ = [
    "NAMES", "RULES", "Aggregates", "DiagnosisPublic", "DiagnosisRule", "DiagnosisSeverity", "EpochStats", "Epochs", "Finding",
    "aggregate", "diagnose", "diagnose_aggregates", "diagnosis", "epoch_series",
]
