"""A study's trials as ``core.studies`` sees them, read from the database: the stored experiments
with their objective values, and the specs of new ones.

The database is the source of truth: each pass rebuilds the :class:`~core.studies.TrialRecord`
list from the trials' rows and metrics (``store.repositories.studies``) and Optuna replays it,
so nothing of a study lives in a process and a restarted api carries on where it stopped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.studies import StudySpec, TrialRecord
from core.studies.records import trial_record
from store.models import Experiment, Study
from store.repositories import studies as repo


@dataclass(frozen=True)
class Trials:
    """A study's stored trials: rows and their records (same order)."""

    rows: list[Experiment]
    records: list[TrialRecord]

    @property
    def live(self) -> list[Experiment]:
        return [t for t in self.rows if t.status in ("queued", "running")]


def load(session: Session, study: Study, spec: StudySpec | None = None) -> Trials:
    spec = spec or StudySpec.model_validate(study.spec)
    rows = repo.trials(session, study.id)
    values = repo.epoch_values(session, [t.id for t in rows], spec.objective.metric)
    return Trials(rows, [trial_record(spec, t.trial_number, t.trial_params, t.status, values.get(t.id, {}))
                         for t in rows])


def trial_name(study_name: str, number: int, label: str) -> str:
    return f"{study_name} #{number}: {label}"[:200]


def trial_body(spec: StudySpec, study: Study, number: int, params: dict[str, Any]) -> dict[str, Any]:
    """The experiment spec of trial ``number``: the base with ``params`` set, named and tagged
    after the study."""
    from core.studies import apply, label

    body = apply(spec.base, params)
    body["name"] = trial_name(study.name, number, label(params))
    body["tags"] = [*body.get("tags", []), f"study-{study.id}"][-32:]
    return body
