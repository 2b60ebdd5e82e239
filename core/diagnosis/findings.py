"""What a diagnosis says: a :class:`Finding` per rule that fires, in the JSON shape the api sends
and ``descent.client`` types its results with (declared once, here)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from core.choices import choice

RULES = ("diverging", "oscillating", "plateau", "lr_too_small", "overfitting", "dead_warmup")

DiagnosisRule = choice("DiagnosisRule", RULES,
                       "Which convergence rule fired (docs/diagnosis.md lists each with its thresholds).")
DiagnosisSeverity = choice("DiagnosisSeverity", ("error", "warning", "info"),
                           "error: the run is not training; warning: it trains badly; info: it could "
                           "train better.")


class Finding(TypedDict):
    """One problem a rule sees in a run's metrics, with the numbers that show it."""

    rule: DiagnosisRule
    severity: DiagnosisSeverity
    epoch: Annotated[int, Field(description="The epoch at which the rule first fired.")]
    message: Annotated[str, Field(description="What the rule sees, with the numbers as evidence.")]
    suggestion: Annotated[str, Field(description="What to try.")]
    evidence: Annotated[dict[str, float], Field(
        description="The numbers behind the message, by name (which names depends on the rule).")]


_DIAGNOSIS_EXAMPLE = {
    "epochs": 12,
    "findings": [{
        "rule": "overfitting", "severity": "warning", "epoch": 9,
        "message": "val loss rose from 0.1481 to 0.1733 over epochs 6–9 while train loss fell from 0.1333 to 0.05908",
        "suggestion": "early stopping at epoch 6 would have kept val/loss 0.1481; or add regularisation "
                      "(weight decay, dropout)",
        "evidence": {"val_loss_from": 0.1481, "val_loss_to": 0.1733, "best_epoch": 6, "best_val_loss": 0.1481},
    }],
}


@with_config(ConfigDict(json_schema_extra={"examples": [_DIAGNOSIS_EXAMPLE]}))
class DiagnosisPublic(TypedDict):
    """The answer of ``GET /experiments/{id}/diagnosis``: what the convergence rules see in the
    experiment's metrics, computed on every read (a running run's changes as its epochs end)."""

    epochs: Annotated[int, Field(description="How many finished epochs the rules read.")]
    findings: Annotated[list[Finding], Field(
        description="One finding per rule that fired, by epoch; empty when no rule sees a problem.")]
