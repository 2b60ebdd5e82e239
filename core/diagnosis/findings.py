"""What a diagnosis says: a :class:`Finding` per rule that fires, in the JSON shape the api sends
and ``descent.client`` types its results with (declared once, here)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
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
