"""Optuna as a calculator: the stored trials are replayed into a fresh in-memory Optuna study
each time, and it proposes the next parameters, judges pruning, or ranks parameter importance.
The database stays the one source of truth; nothing of Optuna's is kept between calls.

A conditional parameter gets its own Optuna name per branch, ``solver.base_lr[solver.name=adam]``,
so each solver's learning-rate range is its own distribution; :func:`spec_path` maps it back.
Running trials are replayed as RUNNING, so TPE's constant liar (Optuna's ``constant_liar``)
steers parallel proposals apart.  Pruning replays ASHA's rung records (``completed_rung_<r>``:
a trial's value at the first epoch at or past rung r's, min_resource * reduction_factor**r) as
Optuna's SuccessiveHalvingPruner writes them when it is asked at every epoch."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from core.studies.grid import enumerate_grid
from core.studies.params import active_params
from core.studies.space import CategoricalParam, FloatParam, Space, StudySpec, when_key

TrialStateName = Literal["running", "complete", "pruned", "failed"]
_STATES = {"running": TrialState.RUNNING, "complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
           "failed": TrialState.FAIL}
IMPORTANCE_SEED = 0


@dataclass(frozen=True)
class TrialRecord:
    """A stored trial: its parameters (spec path -> value), state, objective value and the
    objective's value after each epoch."""

    number: int
    params: dict[str, Any]
    state: TrialStateName
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)


def optuna_name(path: str, conditions: tuple[tuple[str, Any], ...] = ()) -> str:
    """``path``, suffixed with the branch it lives on: ``solver.base_lr[solver.name=adam]``."""
    if not conditions:
        return path
    return f"{path}[{','.join(f'{p}={when_key(v)}' for p, v in conditions)}]"


def spec_path(name: str) -> str:
    """The spec path of an Optuna parameter name."""
    return name.split("[", 1)[0]


def _distribution(param: Any) -> BaseDistribution:
    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(param.values)
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log)
    return IntDistribution(param.low, param.high, log=param.log, step=param.step)


def _walk(space: Space, params: dict[str, Any], conditions=()) -> Iterator[tuple[str, str, BaseDistribution]]:
    """(Optuna name, spec path, distribution) of each active parameter of ``params``."""
    for path, param in space.items():
        if path not in params:
            continue
        yield optuna_name(path, conditions), path, _distribution(param)
        if isinstance(param, CategoricalParam):
            yield from _walk(param.subspace(params[path]), params, (*conditions, (path, params[path])))


def distributions(space: Space, params: dict[str, Any]) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a trial's active parameters, by Optuna name."""
    return {name: dist for name, _, dist in _walk(space, params)}


def _suggest(trial: optuna.Trial, space: Space, conditions=()) -> dict[str, Any]:
    """Define-by-run over ``space``: each parameter, then the subspace of the value picked."""
    params: dict[str, Any] = {}
    for path, param in space.items():
        name = optuna_name(path, conditions)
        if isinstance(param, CategoricalParam):
            value = trial.suggest_categorical(name, param.values)
        elif isinstance(param, FloatParam):
            value = trial.suggest_float(name, param.low, param.high, log=param.log)
        else:
            value = trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
        params[path] = value
        if isinstance(param, CategoricalParam):
            params |= _suggest(trial, param.subspace(value), (*conditions, (path, value)))
    return params


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's info logs and experimental-feature warnings off, for this call only."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def _frozen(space: Space, record: TrialRecord, system_attrs: dict[str, Any] | None = None):
    """The Optuna trial of a record, or None where its parameters no longer fit the space."""
    active = active_params(space, record.params)
    dists = distributions(space, active)
    names = {name: path for name, path, _ in _walk(space, active)}
    value = record.value if record.state == "complete" else None
    try:
        return optuna.trial.create_trial(
            state=_STATES[record.state], value=value, params={n: active[p] for n, p in names.items()},
            distributions=dists, intermediate_values=dict(record.intermediate), system_attrs=system_attrs or {},
        )
    except ValueError:  # a value outside the (since edited) space, or a complete trial without a value
        return None


def _study(spec: StudySpec, sampler=None, pruner=None) -> optuna.Study:
    """An in-memory study; where nothing is sampled a seeded RandomSampler spares TPE's set-up."""
    return optuna.create_study(storage=None, sampler=sampler or optuna.samplers.RandomSampler(seed=spec.seed),
                               pruner=pruner, direction=spec.objective.direction)


def _replay(study: optuna.Study, spec: StudySpec, trials: list[TrialRecord], attrs=None) -> None:
    for record in sorted(trials, key=lambda t: t.number):
        frozen = _frozen(spec.space, record, attrs(record) if attrs else None)
        if frozen is not None:
            study.add_trial(frozen)


def _sampler(spec: StudySpec, n_done: int) -> optuna.samplers.BaseSampler:
    seed = spec.seed + n_done
    if spec.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def _grid_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v) if isinstance(v, bool) or v is None else v) for k, v in params.items()))


def next_params(spec: StudySpec, trials: list[TrialRecord], n: int) -> list[dict[str, Any]]:
    """The parameters of the next ``n`` trials (fewer when the budget or the grid runs out).

    grid: the first grid points no trial has had, in grid order; random and tpe: Optuna's
    sampler seeded with ``seed + len(trials)``, so the same stored trials give the same
    proposals."""
    n = max(0, min(n, (spec.budget.max_trials or 0) - len(trials)))
    if n == 0:
        return []
    if spec.strategy == "grid":
        used = {_grid_key(active_params(spec.space, t.params)) for t in trials}
        return [p for p in enumerate_grid(spec.space) if _grid_key(p) not in used][:n]
    with _quiet():
        study = _study(spec, sampler=_sampler(spec, len(trials)))
        _replay(study, spec, trials)
        return [_suggest(study.ask(), spec.space) for _ in range(n)]


def pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The Optuna pruner a study's ``pruner`` section names."""
    p = spec.pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)
    if p.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.min_resource, reduction_factor=p.reduction_factor,
                                                      min_early_stopping_rate=0, bootstrap_count=0)
    return optuna.pruners.NopPruner()


def rung_values(spec: StudySpec, intermediate: dict[int, float]) -> dict[str, float]:
    """ASHA's rung records of a trial with these per-epoch values: for each rung it reached,
    ``completed_rung_<r>`` -> its value at the first epoch at or past the rung's."""
    if spec.pruner.name != "asha" or not intermediate:
        return {}
    steps, last = sorted(intermediate), max(intermediate)
    records, rung = {}, 0
    while (at := spec.pruner.min_resource * spec.pruner.reduction_factor ** rung) <= last:
        records[f"completed_rung_{rung}"] = intermediate[next(s for s in steps if s >= at)]
        rung += 1
    return records


def should_prune(spec: StudySpec, trials: list[TrialRecord], trial_number: int,
                 intermediate: dict[int, float]) -> bool:
    """Whether the pruner stops trial ``trial_number`` after its last epoch in ``intermediate``,
    judged against every other stored trial (with ``pruner.group_by``, those sharing its value of
    that parameter).  The trial is replayed live, asked at each epoch
    as a worker would ask; the answer at the last epoch counts."""
    if spec.pruner.name == "none" or not intermediate:
        return False
    group = spec.pruner.group_by
    if group is not None:  # only the trials sharing this one's value of the grouping parameter count
        own = next((t.params.get(group) for t in trials if t.number == trial_number), None)
        trials = [t for t in trials if t.params.get(group) == own]
    with _quiet():
        study = _study(spec, pruner=pruner(spec))
        _replay(study, spec, [t for t in trials if t.number != trial_number],
                attrs=lambda t: rung_values(spec, t.intermediate))
        live = study.ask()
        decision = False
        for step in sorted(intermediate):
            live.report(intermediate[step], step)
            decision = bool(live.should_prune())
        return decision


def importance(spec: StudySpec, trials: list[TrialRecord]) -> dict[str, float]:
    """Each parameter's share of the objective's variance over the complete trials (fANOVA,
    Hutter et al. 2014, seeded), by spec path; {} with fewer than two complete trials or nothing
    that varies.  Only parameters every complete trial has, with two values at least, are ranked."""
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if len(complete) < 2:
        return {}
    named = [{name: t.params[path] for name, path, _ in _walk(spec.space, active_params(spec.space, t.params))}
             for t in complete]
    shared = set.intersection(*(set(n) for n in named))
    varied = sorted(n for n in shared if len({repr(p[n]) for p in named}) > 1)
    if not varied:
        return {}
    with _quiet():
        study = _study(spec)
        _replay(study, spec, complete)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
        try:
            ranked = optuna.importance.get_param_importances(study, evaluator=evaluator, params=varied)
        except (ValueError, RuntimeError):  # e.g. a trial replay dropped (its value left the space)
            return {}
    paths = [spec_path(name) for name in ranked]
    return {(spec_path(name) if paths.count(spec_path(name)) == 1 else name): float(v) for name, v in ranked.items()}


def best(spec: StudySpec, trials: list[TrialRecord]) -> TrialRecord | None:
    """The complete trial with the best value (the lowest number among equals), or None."""
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if not complete:
        return None
    sign = -1 if spec.objective.mode == "max" else 1
    return min(complete, key=lambda t: (sign * t.value, t.number))
