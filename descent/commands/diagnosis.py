"""How the CLI prints a run's convergence diagnosis (``GET /experiments/{id}/diagnosis``): the
``diagnosis:`` block of ``descent show`` and the short form (rule names) of ``descent compare``.
The findings, their evidence and suggestions are the api's; nothing here judges a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def block(diagnosis: Mapping[str, Any]) -> list[str]:
    """``diagnosis:`` and a line per finding (severity, rule, epoch, what it sees), each with its
    suggestion below it; one line saying so when no rule fired; nothing before the first epoch ends."""
    epochs = diagnosis.get("epochs") or 0
    if not epochs:
        return []
    findings = diagnosis.get("findings") or []
    if not findings:
        return [f"diagnosis:   no problems seen ({epochs} epoch{'s' if epochs != 1 else ''} read)"]
    lines = ["diagnosis:"]
    for f in findings:
        lines.append(f"  {f['severity']}: {f['rule']} at epoch {f['epoch']}: {f['message']}")
        lines.append(f"    try: {f['suggestion']}")
    return lines


def short(diagnosis: Mapping[str, Any]) -> str:
    """The rule names that fired, with their epochs (``overfitting@7, plateau@12``); ``ok`` when
    none did, ``-`` before the first epoch ends."""
    if not diagnosis.get("epochs"):
        return "-"
    return ", ".join(f"{f['rule']}@{f['epoch']}" for f in diagnosis.get("findings") or []) or "ok"
