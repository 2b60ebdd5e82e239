"""A study's trial asks its study's pruner at the end of every epoch (the engine's ``on_epoch``):
the objective's per-epoch values of every trial of the study are read from the database, this
trial's own included (its sink is flushed first), and ``core.studies.should_prune`` replays them
through Optuna's pruner (median, ASHA).  A trial told to stop ends ``pruned`` within the epoch
after the decision: at once, since the decision is taken at the epoch's end.

An experiment outside a study, or in one without a pruner, never asks.  A database error while
asking is logged and the trial goes on: pruning saves time, never correctness."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from core.studies import StudySpec, should_prune
from core.studies.records import trial_record
from store.db import session_scope
from store.repositories import experiments, studies

log = logging.getLogger(__name__)


class TrialPruning:
    """``on_epoch`` for experiment ``experiment_id``; :attr:`active` is False outside a pruned study."""

    def __init__(self, sessions: sessionmaker[Session], experiment_id: int, flush: Callable[[], None]):
        self.sessions, self.experiment_id, self.flush = sessions, experiment_id, flush
        self.spec: StudySpec | None = None
        self.study_id = self.number = None
        with session_scope(sessions) as session:
            experiment = experiments.get(session, experiment_id)
            study = studies.get(session, experiment.study_id) if experiment and experiment.study_id else None
            if study is not None:
                self.spec = StudySpec.model_validate(study.spec)
                self.study_id, self.number = study.id, experiment.trial_number

    @property
    def active(self) -> bool:
        return self.spec is not None and self.spec.pruner.name != "none"

    def __call__(self, epoch: int, values: dict[str, float]) -> str | None:
        spec = self.spec
        if spec is None or not self.active:
            return None
        metric = spec.objective.metric
        try:
            self.flush()
            with session_scope(self.sessions) as session:
                rows = studies.trials(session, self.study_id)
                by_epoch = studies.epoch_values(session, [r.id for r in rows], metric)
            records = [trial_record(spec, r.trial_number, r.trial_params, r.status, by_epoch.get(r.id, {}))
                       for r in rows]
            own = by_epoch.get(self.experiment_id, {})
            if not should_prune(spec, records, self.number, own):
                return None
        except Exception:  # noqa: BLE001 - a trial goes on rather than stop on a hiccup
            log.warning("experiment %s: asking the study's pruner failed; training goes on", self.experiment_id,
                        exc_info=True)
            return None
        value = own.get(epoch)
        shown = f"{value:.6g}" if value is not None else "none"
        return (f"pruned after epoch {epoch} by study {self.study_id}'s {spec.pruner.name} pruner: {metric} "
                f"{shown} is not promising against the study's other trials")
