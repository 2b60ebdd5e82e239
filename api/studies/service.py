"""Studies: validate (the base spec against its split, the objective, every grid point), store,
make the first trials in the same transaction and send them after commit; read a study with its
trials, best trial and parameter importance; cancel one with its live trials."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.deps import Enqueuer, after_commit
from api.errors import Conflict, NotFound, PayloadError
from api.experiments import service as experiments
from api.studies import controller
from api.studies import trials as trial_rows
from api.studies.schemas import StudyCreate, StudyPage, StudyPublic, TournamentCreate, TrialPublic
from core.settings import Settings
from core.spec import ExperimentSpec, monitor
from core.studies import StudySpec, TrialRecord, apply, best, enumerate_grid, importance, label, tournament
from store.models import Study
from store.repositories import audit
from store.repositories import experiments as experiments_repo
from store.repositories import splits as splits_repo
from store.repositories import studies as repo

# a grid study checks every trial's spec before it starts, up to this many
MAX_CHECKED_GRID = 2_000


def load(session: Session, principal: Principal, study_id: int, role: str = "viewer") -> Study:
    study = repo.get(session, study_id)
    if study is None:
        raise NotFound(f"study {study_id} does not exist")
    access.require(principal, study.project_id, role, f"study {study_id}")
    return study


def _validation(exc: ValidationError, loc: tuple[str | int, ...]) -> PayloadError:
    return PayloadError([((*loc, *e["loc"]), e["msg"]) for e in exc.errors()])


def _check(session: Session, settings: Settings, principal: Principal, spec: StudySpec) -> Any:
    """The base spec on its split (the caller an editor of its project), the objective's metric,
    and for a grid every trial's spec; returns the split."""
    try:
        base = ExperimentSpec.model_validate(spec.base)
    except ValidationError as exc:
        raise _validation(exc, ("body", "base")) from None
    split = splits_repo.get(session, base.split_id)
    if split is None or principal.role_in(split.project_id) is None:
        raise PayloadError.at(["body", "base", "split_id"], f"split {base.split_id} does not exist")
    access.require(principal, split.project_id, "editor", f"split {base.split_id}")
    experiments.check(session, settings, base, split, loc=("body", "base"))
    info, _ = splits_repo.dataset_of(session, split, settings)
    problems = monitor.metric_errors(spec.objective.metric, info.task, ("body", "objective", "metric"))
    if problems:
        raise PayloadError(problems)
    if spec.strategy == "grid":
        for params in enumerate_grid(spec.space)[:MAX_CHECKED_GRID]:
            try:
                trial = ExperimentSpec.model_validate(apply(spec.base, params))
                experiments.check(session, settings, trial, split, loc=())
            except ValidationError as exc:
                raise PayloadError.at(["body", "space"], f"the trial {label(params)} cannot run: "
                                      f"{controller.problems(exc)}") from None
            except PayloadError as exc:
                raise PayloadError.at(["body", "space"], f"the trial {label(params)} cannot run: {exc.detail}") from None
    return split


def create(session: Session, settings: Settings, enqueue: Enqueuer, principal: Principal, spec: StudyCreate,
           kind: str = "search") -> StudyPublic:
    """Validate, store, and start its first trials (sent once this transaction commits)."""
    split = _check(session, settings, principal, spec)
    study = repo.create(session, project_id=split.project_id, created_by=principal.user_id, name=spec.name,
                        kind=kind, spec=spec.model_dump(mode="json"), split_id=split.id)
    sends = controller.advance(session, settings, study)
    for experiment_id, queue in sends:
        after_commit(session, functools.partial(enqueue, experiment_id, queue))
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=study.project_id,
                 action="study.create", target=f"study {study.id}", detail={"name": spec.name, "kind": kind})
    return public(session, study)


def create_tournament(session: Session, settings: Settings, enqueue: Enqueuer, principal: Principal,
                      body: TournamentCreate) -> StudyPublic:
    try:
        spec = tournament(body.base, body.solvers, lr_low=body.lr_low, lr_high=body.lr_high, points=body.points,
                          pruner=body.pruner, metric=body.metric, name=body.name, parallel=body.parallel,
                          seed=body.seed, per_solver=body.per_solver)
    except ValidationError as exc:
        raise _validation(exc, ("body",)) from None
    return create(session, settings, enqueue, principal, spec, kind="tournament")


def _trial(row, record: TrialRecord) -> TrialPublic:
    return TrialPublic(number=row.trial_number, experiment_id=row.id, status=row.status,
                       params=dict(row.trial_params or {}), label=label(row.trial_params or {}), value=record.value,
                       epoch=row.epoch)


# fANOVA costs up to seconds of CPU with many trials: each answer is kept for its set of finished trials
_IMPORTANCE: OrderedDict[str, dict[str, float]] = OrderedDict()
_IMPORTANCE_KEPT = 256
_IMPORTANCE_LOCK = threading.Lock()


def _importance(spec: StudySpec, records: list[TrialRecord]) -> dict[str, float]:
    complete = [r for r in records if r.state == "complete"]
    if len(complete) < 2:
        return {}
    key = json.dumps([spec.model_dump(mode="json"), [(r.number, r.params, r.value) for r in complete]],
                     sort_keys=True, default=str)
    with _IMPORTANCE_LOCK:
        if key in _IMPORTANCE:
            _IMPORTANCE.move_to_end(key)
            return _IMPORTANCE[key]
    weights = importance(spec, complete)
    with _IMPORTANCE_LOCK:
        _IMPORTANCE[key] = weights
        while len(_IMPORTANCE) > _IMPORTANCE_KEPT:
            _IMPORTANCE.popitem(last=False)
    return weights


def public(session: Session, study: Study, *, with_trials: bool = True) -> StudyPublic:
    spec = StudySpec.model_validate(study.spec)
    stored = trial_rows.load(session, study, spec)
    counts: dict[str, int] = {}
    for row in stored.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    by_number = {r.number: (row, r) for row, r in zip(stored.rows, stored.records)}
    top = best(spec, stored.records)
    weights = _importance(spec, stored.records) if with_trials else {}
    return StudyPublic(
        id=study.id, project_id=study.project_id, name=study.name, kind=study.kind, status=study.status,
        spec=study.spec, split_id=study.split_id, created_at=study.created_at, finished_at=study.finished_at,
        note=study.note, counts=counts, max_trials=spec.budget.max_trials,
        trials=[_trial(row, r) for row, r in zip(stored.rows, stored.records)] if with_trials else [],
        best=_trial(*by_number[top.number]) if top is not None else None, importance=weights,
    )


def get(session: Session, principal: Principal, study_id: int) -> StudyPublic:
    return public(session, load(session, principal, study_id))


def list_page(session: Session, principal: Principal, *, project_id: int | None, limit: int, offset: int
              ) -> StudyPage:
    scope = access.visible_projects(principal, project_id)
    rows, total = repo.list_page(session, project_ids=scope, limit=limit, offset=offset)
    return StudyPage(items=[public(session, s, with_trials=False) for s in rows], total=total, limit=limit,
                     offset=offset)


def cancel(session: Session, principal: Principal, study_id: int) -> StudyPublic:
    """Stop making trials and cancel the live ones (a queued one at once, a running one within a step)."""
    study = load(session, principal, study_id, "editor")
    if study.status != "running":
        raise Conflict(f"study {study_id} already {study.status}")
    live = [t for t in repo.trials(session, study_id) if t.status in ("queued", "running")]
    for trial in live:
        experiments_repo.request_cancel(session, trial.id)
    repo.finish(session, study_id, "stopped", f"cancelled by {principal.actor}; {len(live)} live trials cancelled")
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=study.project_id,
                 action="study.cancel", target=f"study {study_id}", detail={"cancelled_trials": len(live)})
    return public(session, repo.get(session, study_id))
