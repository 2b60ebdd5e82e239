"""Moving a study on: one pass stores the trials its strategy proposes next, up to its parallelism
and budget, and ends it once its space or budget is spent and every trial has finished (or its
wall clock has run out: the live trials are cancelled).

A pass is one transaction on one study, locked (``store.repositories.studies.lock_running``), so
two api processes never make the same trial; the trials are sent after the commit.  The api
runs a pass over every running study every ``PASS_S`` seconds (``api.app``) and one at once when
a study is created; everything a pass needs is in the database, which is how a study survives
an api restart: the next process's first pass carries on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError, PayloadError
from api.experiments import service as experiments
from api.limits.quotas import check_active_experiments
from api.studies import trials as trial_rows
from core.settings import Settings
from core.spec import ExperimentSpec
from core.studies import StudySpec, label, next_params
from store.db import session_scope
from store.models import Experiment, Study, utcnow
from store.repositories import experiments as experiments_repo
from store.repositories import splits as splits_repo
from store.repositories import studies as repo

log = logging.getLogger(__name__)

# seconds between passes over the running studies: how long a finished trial's slot stays empty
PASS_S = 1.0

Send = Callable[[int, str], None]


def advance(session: Session, settings: Settings, study: Study) -> list[tuple[int, str]]:
    """One pass on ``study`` (locked by the caller); returns the trials to send once committed,
    as ``(experiment_id, queue)``."""
    spec = StudySpec.model_validate(study.spec)
    stored = trial_rows.load(session, study, spec)
    live = stored.live
    limit = spec.budget.max_minutes
    if limit is not None and utcnow() - study.created_at > timedelta(minutes=limit):
        for trial in live:
            experiments_repo.request_cancel(session, trial.id)
        repo.finish(session, study.id, "stopped", f"its wall-clock limit of {limit:g} minutes (budget.max_minutes) "
                                                  f"ran out; {len(live)} live trials cancelled")
        return []
    room = min(spec.budget.parallel - len(live), spec.budget.max_trials - len(stored.rows))
    proposals = next_params(spec, stored.records, room) if room > 0 else []
    if not proposals and not live:
        repo.finish(session, study.id, "done")
        return []
    sends: list[tuple[int, str]] = []
    number = len(stored.rows)
    for params in proposals:
        try:
            check_active_experiments(session, settings, study.project_id)
        except ApiError as exc:
            repo.set_note(session, study.id, f"waiting: {exc.detail}")
            break
        trial = _store_trial(session, settings, spec, study, number, params)
        if trial.status == "queued":
            sends.append((trial.id, trial.queue))
        number += 1
    else:
        if study.note and study.note.startswith("waiting: "):
            repo.set_note(session, study.id, None)
    return sends


def _store_trial(session: Session, settings: Settings, spec: StudySpec, study: Study, number: int,
                 params: dict) -> Experiment:
    """Trial ``number`` as a queued experiment, or, when its parameters make a spec the data or the
    limits refuse (a combination the space allows but the run cannot take), as a failed one
    saying why: the study learns from it and moves on."""
    body = trial_rows.trial_body(spec, study, number, params)
    split = splits_repo.get(session, study.split_id)
    trial = {"study_id": study.id, "trial_number": number, "trial_params": params}
    try:
        checked = experiments.check(session, settings, ExperimentSpec.model_validate(body), split, loc=())
    except (ValidationError, PayloadError) as exc:
        return _failed_trial(session, study, body, trial, problems(exc))
    return experiments.store(session, checked, **trial)


def problems(exc: ValidationError | PayloadError) -> str:
    """What a trial's spec is refused for, in one line (the paths and messages)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return exc.detail


def _failed_trial(session: Session, study: Study, body: dict, trial: dict, why: str) -> Experiment:
    """A trial that cannot run, stored failed.  Its spec is the trial's where that is a valid spec
    (the data or a limit refused it), else the study's base under the trial's name: a stored spec
    is always one the schema describes; the parameters are in ``trial_params`` and the error."""
    try:
        spec = ExperimentSpec.model_validate(body)
    except ValidationError:
        spec = ExperimentSpec.model_validate({**StudySpec.model_validate(study.spec).base,
                                              "name": body["name"], "tags": body.get("tags", [])})
    experiment = experiments_repo.create(
        session, name=spec.name, spec=spec.model_dump(mode="json"), solver=spec.solver.name, tags=spec.tags,
        split_id=study.split_id, queue="cpu", **trial)
    experiment.status, experiment.finished_at = "failed", utcnow()
    experiment.error = f"trial {trial['trial_number']} ({label(trial['trial_params'])}) cannot run: {why}"
    session.flush()
    return experiment


def advance_all(session_factory: sessionmaker[Session], settings: Settings, send: Send) -> None:
    """A pass over every running study, each in its own transaction; a study whose pass fails is
    logged and tried again on the next."""
    with session_scope(session_factory) as session:
        running = repo.running_ids(session)
    for study_id in running:
        try:
            with session_scope(session_factory) as session:
                study = repo.lock_running(session, study_id)
                sends = advance(session, settings, study) if study is not None else []
        except Exception:  # noqa: BLE001 - one study's trouble must not stop the others
            log.warning("study %s: pass failed; the next pass tries again", study_id, exc_info=True)
            continue
        for experiment_id, queue in sends:
            send(experiment_id, queue)
