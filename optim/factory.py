"""Build optimizers, fill scheduler lengths from catalog names and parameters, and check a
scheduler's fields against each other and the run (:func:`check_scheduler_params`).

Importing this module needs no torch (the api derives scheduler parameters with it); only
:func:`build_optimizer` imports torch, when called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optim import catalog
from optim.catalog.schema import SchedulerEntry


@dataclass(frozen=True)
class RunShape:
    """What a left-out scheduler field derives from: the training length and the solver's lr."""

    epochs: int | None
    steps_per_epoch: int | None
    base_lr: float | None = None


def _need(value: int | None, what: str, field: str) -> int:
    if value is None:
        raise ValueError(f"{field}: left out, and deriving it needs {what}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}: cannot derive from {what}={value!r} (must be an integer >= 1)")
    return value


def _need_lr(run: RunShape, field: str) -> float:
    lr = run.base_lr
    if lr is None or isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"{field}: left out, and deriving it needs the solver's base_lr (> 0), got {lr!r}")
    return float(lr)


# (scheduler, field) -> rule(run, params, field); the table in optim.catalog.schedulers'
# docstring says the same in words.
_Rule = Callable[[RunShape, dict[str, Any], str], Any]


def _epochs(run: RunShape, field: str) -> int:
    return _need(run.epochs, "epochs", field)


def _milestones(run: RunShape, p: dict, f: str) -> list[int]:
    epochs = _epochs(run, f)
    half = max(1, epochs // 2)
    return [half, max(half + 1, 3 * epochs // 4)]


def _warm_restart_t0(run: RunShape, p: dict, f: str) -> int:
    t_mult = p.get("T_mult", 1)
    return max(1, _epochs(run, f) // (1 + t_mult + t_mult**2))


def scheduled_steps(epochs: int, steps_per_epoch: int, warmup_steps: int = 0) -> int:
    """How many times a step-interval scheduler is stepped in a run: every optimizer step after
    the warm-up (:class:`optim.schedulers.LinearWarmup`), ``E * S - W`` and at least 0."""
    return max(0, epochs * steps_per_epoch - warmup_steps)


def _one_cycle_steps(run: RunShape, p: dict, f: str) -> int:
    per_epoch = _need(run.steps_per_epoch, "steps_per_epoch", f)
    return max(1, scheduled_steps(_epochs(run, f), per_epoch, p.get("warmup_steps", 0)))


# Smith 2017 (section 3.3): the upper bound of a cycle is 3-4 times the lower one.
CYCLIC_LR_RANGE = 4.0
# ExponentialLR left without gamma decays to this fraction of base_lr by the last epoch.
EXPONENTIAL_FINAL_FACTOR = 0.01

DERIVATIONS: dict[tuple[str, str], _Rule] = {
    ("steplr", "step_size"): lambda run, p, f: max(1, _epochs(run, f) // 3),
    ("multisteplr", "milestones"): _milestones,
    ("exponentiallr", "gamma"): lambda run, p, f: EXPONENTIAL_FINAL_FACTOR ** (1.0 / _epochs(run, f)),
    ("cosineannealinglr", "T_max"): lambda run, p, f: _epochs(run, f),
    ("cosineannealingwarmrestarts", "T_0"): _warm_restart_t0,
    ("cycliclr", "base_lr"): lambda run, p, f: _need_lr(run, f),
    ("cycliclr", "max_lr"): lambda run, p, f: CYCLIC_LR_RANGE * p["base_lr"],
    ("cycliclr", "step_size_up"): lambda run, p, f: 2 * _need(run.steps_per_epoch, "steps_per_epoch", f),
    ("onecyclelr", "max_lr"): lambda run, p, f: _need_lr(run, f),
    ("onecyclelr", "total_steps"): _one_cycle_steps,
    ("linearlr", "total_iters"): lambda run, p, f: _epochs(run, f),
    ("polynomiallr", "total_iters"): lambda run, p, f: _epochs(run, f),
}


def derive_scheduler_params(
    entry: SchedulerEntry, params: dict[str, Any], epochs: int | None, steps_per_epoch: int | None,
    base_lr: float | None = None,
) -> dict[str, Any]:
    """Return ``params`` with every derived field that is missing (or null) filled in.

    Pure: no torch, no side effects.  ``epochs`` is the training length, ``steps_per_epoch``
    the optimizer steps per epoch and ``base_lr`` the solver's learning rate; a field whose
    rule needs one of them raises ``ValueError`` naming the field when it is None.  Fields
    are filled in the entry's order (CyclicLR's ``max_lr`` follows its ``base_lr``).  Values
    the caller gave are kept as they are."""
    run = RunShape(epochs, steps_per_epoch, base_lr)
    out = dict(params)
    for h in entry.hyperparameters:
        if not h.derived_from or out.get(h.name) is not None:
            continue
        rule = DERIVATIONS.get((entry.name, h.name))
        if rule is None:
            raise ValueError(f"{h.name}: no derivation rule for {entry.name!r}")
        out[h.name] = h.check(rule(run, out, h.name))
    return out


def check_scheduler_params(
    entry: SchedulerEntry, params: dict[str, Any], epochs: int | None, steps_per_epoch: int | None,
) -> list[tuple[str, str]]:
    """Problems between fields (and the run's length) that torch would only meet mid-run, as
    ``(field, message)`` pairs; empty when there are none.  ``params`` are the scheduler's
    values after :func:`derive_scheduler_params` (warm-up fields included, when given).

    * ``onecyclelr.total_steps`` below ``E * S - W``: OneCycleLR raises once stepped past it.
    * ``cycliclr.max_lr`` below ``base_lr``: the cycle would run upside down.

    Pure: no torch.  A value that is missing or not a number is left to the field's own check."""
    def number(key: str) -> float | None:
        value = params.get(key)
        return None if isinstance(value, bool) or not isinstance(value, int | float) else value

    problems: list[tuple[str, str]] = []
    if entry.name == "onecyclelr":
        total, warmup = number("total_steps"), number("warmup_steps") or 0
        if total is not None and isinstance(epochs, int) and isinstance(steps_per_epoch, int):
            needed = scheduled_steps(epochs, steps_per_epoch, int(warmup))
            if total < needed:
                problems.append(("total_steps", (
                    f"{total} is fewer than the {needed} steps the schedule takes ({epochs} epochs x "
                    f"{steps_per_epoch} steps per epoch - {int(warmup)} warm-up steps); OneCycleLR cannot step "
                    "past total_steps: raise it to at least that, or leave it out to derive it"
                )))
    elif entry.name == "cycliclr":
        base, top = number("base_lr"), number("max_lr")
        if base is not None and top is not None and top < base:
            problems.append(("max_lr", f"{top:g} is below base_lr {base:g}: a cycle's upper bound cannot be "
                                       "below its lower one"))
    return problems


def build_optimizer(
    params_or_groups, solver_name: str, hparams: dict[str, Any] | None = None, *, model=None, foreach=None,
    fused=None,
):
    """Build the catalog solver ``solver_name`` over ``params_or_groups``.

    ``hparams`` are validated against the catalog (defaults filled, bad values raise
    ``ValueError`` naming the field).  Solvers that need the model get ``model=``; a wrapper
    (Lookahead) first builds its ``base`` solver on the parameters with the same ``lr`` and
    ``weight_decay``, then wraps it.  Whether ``step`` needs a closure is the entry's
    ``needs_closure``: the caller reads it from ``optim.catalog.solver(name)``.  ``foreach``
    (not a catalog field: the service leaves it to the default) is passed on when given, to the
    wrapper and its base alike; a solver without the flag raises ``ValueError``.  ``fused`` (not
    a catalog field either: the engine sets it, ``worker.engine.fused_default``) likewise, to a
    wrapper's base only; a solver taking it as a group key (RMSprop) gets it in every group, and
    one without a fused step (:func:`has_fused_step` false) raises ``ValueError``.

    Example:
        >>> opt = build_optimizer(model.parameters(), "adamw", {"lr": 3e-4, "weight_decay": 0.05})
    """
    try:
        entry = catalog.solver(solver_name)
    except KeyError as exc:
        raise ValueError(f"solver: {exc.args[0]}") from None
    values = entry.validate_params(dict(hparams or {}))
    cls = catalog.load_class(entry)
    if entry.needs_model:
        if model is None:
            raise ValueError(f"model: solver {entry.name!r} needs the model (pass model=)")
        values["model"] = model
    if foreach is not None:
        if "foreach" not in inspect.signature(cls).parameters:
            raise ValueError(f"foreach: solver {entry.name!r} has no foreach flag")
        values["foreach"] = foreach
    if entry.wraps:
        return _build_wrapper(cls, entry.name, params_or_groups, values, model, fused)
    if fused is None:
        return cls(params_or_groups, **values)
    from optim import _fused

    if not _fused.supports(cls):
        raise ValueError(f"fused: solver {entry.name!r} has no fused step")
    if "fused" in inspect.signature(cls).parameters:
        return cls(params_or_groups, **values, fused=fused)
    optimizer = cls(params_or_groups, **values)
    for group in optimizer.param_groups:  # RMSprop: torch's signature, the flag a group key
        group["fused"] = fused
    return optimizer


def has_fused_step(solver_name: str, hparams: dict[str, Any] | None = None) -> bool:
    """Whether the catalog solver ``solver_name`` steps through ``optim._fused`` given
    ``fused``: its class has a fused update (``optim._fused.supports``), or, for a wrapper, the
    ``base`` its ``hparams`` name (else the default base) does.  Imports torch."""
    from optim import _fused

    entry = catalog.solver(solver_name)
    if entry.wraps:
        base = (hparams or {}).get("base") or entry.hyperparameter("base").default
        return base is not None and not catalog.solver(base).wraps and has_fused_step(base)
    return _fused.supports(catalog.load_class(entry))


# hyperparameters a wrapper hands to the solver it wraps
_SHARED_WITH_BASE = ("lr", "weight_decay")


def _build_wrapper(cls, name: str, params_or_groups, values: dict[str, Any], model, fused=None):
    base_name = values.pop("base", None)
    if base_name is None:
        raise ValueError(f"base: solver {name!r} wraps another solver; name it in 'base'")
    base_entry = catalog.solver(base_name)
    if base_entry.wraps:
        raise ValueError(f"base: {base_name!r} is itself a wrapper")
    base_known = {h.name for h in base_entry.hyperparameters}
    base_hparams = {k: values[k] for k in _SHARED_WITH_BASE if k in values and k in base_known}
    inner = build_optimizer(params_or_groups, base_name, base_hparams, model=model, foreach=values.get("foreach"),
                            fused=fused)
    accepted = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in values.items() if k not in _SHARED_WITH_BASE or k in accepted}
    return cls(inner, **kwargs)


__all__ = [
    "DERIVATIONS", "RunShape", "build_optimizer", "check_scheduler_params", "derive_scheduler_params",
    "has_fused_step", "scheduled_steps",
]
