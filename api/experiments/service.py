"""Experiments: validate against the split's data, store as ``queued``, enqueue after commit."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.deps import Enqueuer, after_commit
from api.errors import Conflict, NotFound, PayloadError
from api.experiments.schemas import (
    ExperimentCreate,
    ExperimentListItem,
    ExperimentPage,
    ExperimentPreview,
    ExperimentPublic,
    ExperimentUpdate,
)
from api.limits import quotas
from api.metrics.service import best_public
from api.queue.service import START_WORKER
from core.datasets.builtin import DatasetInfo
from core.metrics import MAX_NAME_LENGTH
from core.settings import Settings
from core.spec import ExperimentSpec, budget, resolve_spec
from core.spec.experiment import SpecError
from core.spec.suggest import with_hints
from core.statuses import FINISHED
from optim import catalog
from store.models import Experiment, MetricSummary, utcnow
from store.repositories import audit
from store.repositories import experiments as repo
from store.repositories import splits as splits_repo
from store.repositories import workers as workers_repo


def to_public(e: Experiment) -> ExperimentPublic:
    return ExperimentPublic.model_validate(e, from_attributes=True)


def load(session: Session, principal: Principal, experiment_id: int, role: str = "viewer") -> Experiment:
    """The experiment, if ``principal`` holds ``role`` in its project (``access.require``)."""
    experiment = repo.get(session, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    access.require(principal, experiment.project_id, role, f"experiment {experiment_id}")
    return experiment


def get(session: Session, principal: Principal, experiment_id: int) -> ExperimentPublic:
    return to_public(load(session, principal, experiment_id))


def _record(session: Session, principal: Principal, action: str, experiment: Experiment, **detail: Any) -> None:
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=experiment.project_id,
                 action=action, target=f"experiment {experiment.id}", detail=detail)


def _queue(session: Session, settings: Settings, device: str) -> str:
    if device == "cuda":
        return "gpu"
    if device == "cpu":
        return "cpu"
    return "gpu" if workers_repo.alive(session, "gpu", workers_repo.alive_within_s(settings)) else "cpu"


def _limit_errors(spec: ExperimentSpec, settings: Settings) -> list[tuple[tuple[str | int, ...], str]]:
    """What the instance's limits refuse in a valid spec, as (location, message)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    minutes = spec.training.max_minutes
    if minutes is not None and minutes > settings.max_run_minutes:
        errors.append((("training", "max_minutes"), f"{minutes:g} is above this instance's maximum of "
                       f"{settings.max_run_minutes:g} minutes (DESCENT_MAX_RUN_MINUTES); ask for at most that"))
    return errors


def _budget_errors(spec: ExperimentSpec, info: DatasetInfo, n_train: int, settings: Settings, queue: str
                   ) -> list[tuple[tuple[str | int, ...], str]]:
    """What the budget of ``queue`` refuses: the model's parameters and its training memory by
    estimate (``core.spec.budget``), the solver's own size limit, and the combinations the
    worker cannot train."""
    max_params = settings.gpu_max_params if queue == "gpu" else settings.cpu_max_params
    max_mb = settings.gpu_max_memory_mb if queue == "gpu" else settings.cpu_max_memory_mb
    return budget.budget_errors(spec, info.feature_shape, budget.n_outputs_of(info), n_train, max_params=max_params,
                                max_memory_bytes=max_mb * 1024 * 1024, queue=queue)


@dataclass(frozen=True)
class Validated:
    """A submission that passed every check: the spec with its data-dependent defaults filled
    in, the queue it goes to and the project it belongs to."""

    spec: ExperimentSpec
    queue: str
    project_id: int
    warning: str | None = None


def validate(session: Session, settings: Settings, principal: Principal, spec: ExperimentCreate) -> Validated:
    """Every check a submission passes, writing nothing.  Order: the body (pydantic, before
    this), the split, then what needs the data, then the instance's limits and budgets.  The
    experiment goes into its split's project, where the caller must be an editor."""
    split = splits_repo.get(session, spec.split_id)
    if split is None or principal.role_in(split.project_id) is None:
        raise PayloadError.at(["body", "split_id"], f"split {spec.split_id} does not exist")
    access.require(principal, split.project_id, "editor", f"split {spec.split_id}")
    checked = check(session, settings, spec, split)
    quotas.check_active_experiments(session, settings, split.project_id)
    return checked


def check(session: Session, settings: Settings, spec: ExperimentCreate, split: Any,
          loc: tuple[str | int, ...] = ("body",)) -> Validated:
    """What the data, the instance's limits and the queue's budget say of ``spec`` on ``split``
    (its access and the project's quota are the caller's to check); problems are a 422 at
    ``loc`` + their path."""
    info, _ = splits_repo.dataset_of(session, split, settings)
    try:
        resolved = resolve_spec(spec, info, n_train=len(split.train_indices))
    except SpecError as exc:
        raise PayloadError([((*loc, *where), msg) for where, msg in exc.errors]) from None
    queue = _queue(session, settings, resolved.training.device)
    problems = _limit_errors(resolved, settings) + _budget_errors(resolved, info, len(split.train_indices),
                                                                  settings, queue)
    if problems:
        raise PayloadError([((*loc, *where), msg) for where, msg in problems])
    return Validated(resolved, queue, split.project_id, _no_worker_warning(session, settings, queue))


def _no_worker_warning(session: Session, settings: Settings, queue: str) -> str | None:
    """Accepted, but said at once: no worker serving ``queue`` has been seen (``device: cuda`` on a
    machine without a GPU worker would otherwise just wait, saying nothing)."""
    if workers_repo.alive(session, queue, workers_repo.alive_within_s(settings)):
        return None
    other = "training.device: auto or cpu trains it on a CPU worker" if queue == "gpu" else \
        "a worker picks it up as soon as one starts"
    return (f"no worker serving the {queue!r} queue has been seen: the run waits until one starts "
            f"({START_WORKER[queue]}); {other}")


def preview(session: Session, settings: Settings, principal: Principal, spec: ExperimentCreate
            ) -> ExperimentPreview:
    """``?dry_run=true``: what a submission would store and where it would go, storing nothing."""
    checked = validate(session, settings, principal, spec)
    return ExperimentPreview(spec=checked.spec, queue=checked.queue, project_id=checked.project_id,
                             warning=checked.warning)


def create(session: Session, settings: Settings, enqueue: Enqueuer, principal: Principal, spec: ExperimentCreate,
           action: str = "experiment.create") -> ExperimentPublic:
    """Validate (``validate``), store as ``queued`` and enqueue once the transaction commits."""
    checked = validate(session, settings, principal, spec)
    experiment = store(session, checked)
    _record(session, principal, action, experiment, name=checked.spec.name, solver=checked.spec.solver.name)
    experiment_id, queue = experiment.id, checked.queue
    after_commit(session, lambda: enqueue(experiment_id, queue))
    return to_public(experiment)


def store(session: Session, checked: Validated, **trial: Any) -> Experiment:
    """Store a checked submission as ``queued``, marked sent (the caller sends it after commit);
    ``trial``: a study's ``study_id``, ``trial_number`` and ``trial_params``."""
    resolved = checked.spec
    experiment = repo.create(
        session, name=resolved.name, spec=resolved.model_dump(mode="json"), solver=resolved.solver.name,
        tags=resolved.tags, split_id=resolved.split_id, queue=checked.queue, **trial,
    )
    experiment.warning = checked.warning  # cleared by the worker's first checkpoint
    experiment.enqueued_at = utcnow()  # the send happens only if this commit succeeds
    session.flush()
    return experiment


MAX_BEST_NAMES = 10


def parse_best(raw: str | None) -> list[str] | None:
    """``?best=a,b``: metric names in order of preference, or None when not asked."""
    if raw is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:
        raise PayloadError.at(["query", "best"], "name at least one metric")
    if len(names) > MAX_BEST_NAMES:
        raise PayloadError.at(["query", "best"], f"at most {MAX_BEST_NAMES} metric names")
    if any(len(n) > MAX_NAME_LENGTH for n in names):
        raise PayloadError.at(["query", "best"], f"a metric name is at most {MAX_NAME_LENGTH} characters")
    return names


def _item(e: Experiment, best: MetricSummary | None) -> ExperimentListItem:
    item = ExperimentListItem.model_validate(e, from_attributes=True)
    item.best = best_public(best)
    return item


def list_page(session: Session, principal: Principal, best: list[str] | None = None, project_id: int | None = None,
              **filters: Any) -> ExperimentPage:
    """A page of the experiments of the caller's projects (of ``project_id`` only, if given);
    with ``best`` (metric names, first preferred) each item carries its best value of the first
    of them it has, read with the page in one query."""
    scope = access.visible_projects(principal, project_id)
    filters["project_ids"] = scope
    if best:
        rows, total = repo.list_page_with_best(session, best=best, **filters)
    else:
        experiments, total = repo.list_page(session, **filters)
        rows = [(e, None) for e in experiments]
    return ExperimentPage(items=[_item(e, s) for e, s in rows], total=total,
                          limit=filters["limit"], offset=filters["offset"])


def cancel(session: Session, principal: Principal, experiment_id: int) -> ExperimentPublic:
    experiment = load(session, principal, experiment_id, "editor")
    if experiment.status in FINISHED:
        raise Conflict(f"experiment {experiment_id} already {experiment.status}")
    repo.request_cancel(session, experiment_id)
    _record(session, principal, "experiment.cancel", experiment)
    return get(session, principal, experiment_id)


def delete(session: Session, settings: Settings, principal: Principal, experiment_id: int) -> None:
    experiment = load(session, principal, experiment_id, "editor")
    project_id, name = experiment.project_id, experiment.name
    if not repo.delete_finished(session, experiment_id):
        raise Conflict(f"experiment {experiment_id} is {experiment.status}: cancel it before deleting")
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project_id,
                 action="experiment.delete", target=f"experiment {experiment_id}", detail={"name": name})
    folder = settings.checkpoint_path(experiment_id).parent
    after_commit(session, lambda: shutil.rmtree(folder, ignore_errors=True))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            same_kind = "name" not in value or value["name"] == out[key].get("name")
            out[key] = _merge(out[key], value) if same_kind else dict(value)
        else:
            out[key] = value
    return out


def _spec_for_clone(stored: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with ``overrides`` merged in.  A section whose ``name`` changes is
    replaced, not merged; scheduler length fields derived from the old training section are
    cleared (so they derive again) unless the overrides set them."""
    merged = _merge(stored, overrides)
    scheduler = merged.get("scheduler")
    if isinstance(scheduler, dict) and scheduler.get("name") in catalog.SCHEDULERS:
        given = overrides.get("scheduler") or {}
        for h in catalog.scheduler(scheduler["name"]).hyperparameters:
            if h.derived_from and h.name not in given:
                scheduler[h.name] = None
    return merged


def clone(session: Session, settings: Settings, enqueue: Enqueuer, principal: Principal, experiment_id: int,
          overrides: dict[str, Any]) -> ExperimentPublic:
    source = load(session, principal, experiment_id, "editor")
    merged = _spec_for_clone(source.spec, overrides)
    if "name" not in overrides:
        merged["name"] = f"{source.name} (copy)"[:200]
    try:
        spec = ExperimentSpec.model_validate(merged)
    except ValidationError as exc:
        raise PayloadError([(("body", *e["loc"]), e["msg"]) for e in with_hints(exc.errors(), ExperimentSpec)]
                           ) from None
    return create(session, settings, enqueue, principal, spec, action="experiment.clone")


def edited_spec(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with ``changes`` (``name``, ``tags``, ``description``) written into it,
    so the spec and the row's columns say the same."""
    return {**stored, **changes}


def edit(session: Session, principal: Principal, experiment_id: int, body: ExperimentUpdate) -> ExperimentPublic:
    """Rename, retag or redescribe an experiment in any state; what it trains is unchanged."""
    experiment = load(session, principal, experiment_id, "editor")
    changes = body.model_dump(exclude_unset=True)
    if changes:
        name = changes.get("name", experiment.name)
        tags = changes.get("tags", experiment.tags)
        spec = edited_spec(experiment.spec or {}, {"name": name, "tags": tags, **changes})
        repo.edit(session, experiment_id, name=name, tags=tags, spec=spec)
        _record(session, principal, "experiment.edit", experiment, **changes)
    return get(session, principal, experiment_id)
