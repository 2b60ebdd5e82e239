"""``descent bench tournament``: the solver tournament with ASHA against without pruning.

The study is ``core.studies.tournament``: the ten Hasty solvers x 7 learning rates from 1e-5 to 1
(log-spaced) on ``digits`` (the 60/20/20 stratified split of seed 0), an MLP 2x128, batch 64, 20
epochs, seed 0, optimising ``val/accuracy`` (its best epoch's).  Each arm runs the same grid with
another pruner, in process and without servers, one trial after another as a single worker would
(parallel 1): the trials come from ``next_params`` over the arm's records so far, each trains with
the real engine (``worker.engine.train`` into a ``ListSink``), and at every epoch's end the hook
asks ``should_prune`` with the records of every trial of the arm so far, exactly as
``worker.pruning`` does from the database.  A trial that raises (``Diverged``) is failed.

An arm's worker time is the sum of its trials' training wall times, the pruner's asks included
(a worker pays them); the asks are also shown alone.  Its best trial is the study's best: the
complete trial with the highest ``val/accuracy``; its test accuracy is that trial's
``test/accuracy``.  The first arm (``none``) is the baseline of the ratios.  The goal (issue):
ASHA within 40% of the worker time, its best trial's test accuracy within 1 point.

An arm is a pruner name, optionally with ASHA's settings: ``asha:rf=4`` (reduction_factor),
``asha:min=2`` (min_resource), ``asha:by=solver.name`` (each solver judged against its own
trials only), ``asha:rf=4:min=2``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.table import Table, ratio

DEFAULT_ARMS = ["none", "asha"]
METRIC = "val/accuracy"
_SETTINGS = {"rf": "reduction_factor", "min": "min_resource"}


@dataclass
class Trial:
    number: int
    solver: str
    lr: float
    status: str  # succeeded, pruned or failed
    epochs: int  # epochs completed
    seconds: float  # training wall time, the pruner's asks included
    cpu_seconds: float  # the same by this thread's CPU time
    ask_seconds: float  # of which asking the pruner
    by_epoch: dict[int, float]  # the objective after each epoch
    test_accuracy: float | None = None
    error: str | None = None


@dataclass
class Arm:
    name: str
    pruner: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)
    records: list = field(default_factory=list)  # TrialRecord, as the study sees its trials
    study: Any = None

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trials)

    @property
    def cpu_seconds(self) -> float:
        return sum(t.cpu_seconds for t in self.trials)

    @property
    def ask_seconds(self) -> float:
        return sum(t.ask_seconds for t in self.trials)

    @property
    def epochs(self) -> int:
        return sum(t.epochs for t in self.trials)

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)

    def value(self, trial: Trial | None) -> float | None:
        """A trial's objective value (its best epoch's), as the study sees it."""
        return None if trial is None else self.records[trial.number].value

    def best(self, solver: str | None = None) -> Trial | None:
        """The study's best trial (of ``solver``'s trials): complete, highest value, lowest number."""
        from core.studies.sampling import best

        records = [r for r, t in zip(self.records, self.trials) if solver is None or t.solver == solver]
        record = best(self.study, records)
        return None if record is None else self.trials[record.number]


def parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    """``asha:rf=4:min=2`` -> (the arm's label, its study's ``pruner`` section)."""
    name, *settings = text.strip().split(":")
    pruner: dict[str, Any] = {"name": name}
    for setting in settings:
        key, _, value = setting.partition("=")
        if key == "by" and value:
            pruner["group_by"] = value
            continue
        if key not in _SETTINGS or not value.isdigit():
            raise ValueError(f"arm {text!r}: settings are rf=N, min=N and by=PARAM, got {setting!r}")
        pruner[_SETTINGS[key]] = int(value)
    return text.strip(), pruner


def _epoch_values(sink, metric: str) -> dict[int, float]:
    """``{epoch: value}`` of ``metric`` as the database's ``epoch_values`` reads it."""
    return {p.epoch: p.value for p in sink.points if p.name == metric and p.epoch is not None}


def run_arm(arm: Arm, base: dict[str, Any], split, data, log=None) -> Iterator[Trial]:
    """Every trial of ``arm``'s study, one after another, each yielded once it has ended."""
    from core.spec import ExperimentSpec, resolve_spec
    from core.studies import should_prune
    from core.studies.params import apply
    from core.studies.records import trial_record
    from core.studies.sampling import next_params
    from worker.engine import train
    from worker.sink import ListSink

    study, label = arm.study, arm.name
    metric, total = study.objective.metric, study.budget.max_trials
    while proposals := next_params(study, arm.records, 1):
        params, number = proposals[0], len(arm.records)
        sink, asked = ListSink(), [0.0]

        def on_epoch(epoch: int, values: dict[str, float], number=number, params=params, sink=sink, asked=asked):
            start = time.perf_counter()
            own = _epoch_values(sink, metric)
            records = [*arm.records, trial_record(study, number, params, "running", own)]
            prune = should_prune(study, records, number, own)
            asked[0] += time.perf_counter() - start
            return f"pruned after epoch {epoch}" if prune else None

        status, error, test = "failed", None, None
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            body = apply(base, params) | {"name": f"trial {number}"}
            spec = resolve_spec(ExperimentSpec.model_validate(body), split.info, len(split.x_train))
            start, cpu = time.perf_counter(), time.thread_time()
            result = train(spec, data, sink=sink, on_epoch=on_epoch if study.pruner.name != "none" else None)
            status, test = result.status, result.summary.get("test/accuracy")
        except Exception as exc:  # noqa: BLE001 - a trial that raises is failed, as the worker records it
            error = f"{type(exc).__name__}: {exc}"
        seconds, cpu = time.perf_counter() - start, time.thread_time() - cpu
        by_epoch = _epoch_values(sink, metric)
        trial = Trial(number, params["solver.name"], params["solver.base_lr"], status, len(by_epoch), seconds,
                      cpu, asked[0], by_epoch, test, error)
        arm.trials.append(trial)
        arm.records.append(trial_record(study, number, params, status, by_epoch))
        if log is not None:
            value = arm.records[-1].value
            log(f"[{label} {number + 1}/{total}] {trial.solver} lr={trial.lr:.3g}: {status} after {trial.epochs} "
                f"epochs, best {metric} {'-' if value is None else f'{value:.4f}'}, {seconds:.2f} s")
        yield trial


def make_arm(text: str, base: dict[str, Any], solvers: list[str], points: int, lr_low: float,
             lr_high: float) -> Arm:
    """The arm ``text`` names (``asha:rf=4``) with its tournament study."""
    from core.studies.space import StudySpec
    from core.studies.tournament import tournament

    label, pruner = parse_arm(text)
    study = tournament(base, solvers=solvers, lr_low=lr_low, lr_high=lr_high, points=points,
                       pruner=pruner["name"], metric=METRIC, parallel=1)
    study = StudySpec.model_validate({**study.model_dump(), "pruner": pruner})
    return Arm(label, pruner, study=study)


def warm_up(base: dict[str, Any], split, data) -> None:
    """One short training before anything is timed: lazy imports, first-touch allocations."""
    from core.spec import ExperimentSpec, resolve_spec
    from worker.engine import train
    from worker.sink import ListSink

    body = base | {"training": base["training"] | {"epochs": 2}}
    spec = resolve_spec(ExperimentSpec.model_validate(body), split.info, len(split.x_train))
    train(spec, data, sink=ListSink(), on_epoch=lambda epoch, values: None)


def run_tournament(arms: list[str] | None = None, solvers: list[str] | None = None, points: int = 7,
                   epochs: int = 20, lr_low: float = 1e-5, lr_high: float = 1.0, batch_size: int = 64,
                   device: str = "cpu", threads: int | None = 1, log=None) -> list[Arm]:
    """Each arm's tournament on digits, the first arm the baseline.  The arms take turns, one
    trial each; each arm's study sees its own trials only."""
    import torch

    from bench.engine import digits_split
    from core.studies.tournament import HASTY_SOLVERS
    from worker.data import prepare

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        split = digits_split()
        data = prepare(split, device)
        base = {
            "name": "digits tournament", "split_id": 1,
            "architecture": {"name": "mlp", "depth": 2, "width": 128},
            "solver": {"name": "adam", "base_lr": 1e-3},
            "training": {"epochs": epochs, "batch_size": batch_size, "seed": 0, "device": device},
        }
        chosen = list(solvers or HASTY_SOLVERS)
        out = [make_arm(a, base, chosen, points, lr_low, lr_high) for a in (arms or DEFAULT_ARMS)]
        warm_up(base, split, data)
        running = [run_arm(arm, base, split, data, log) for arm in out]
        while running:  # trial by trial in turn, so that load changes hit every arm alike
            running = [r for r in running if next(r, None) is not None]
        return out
    finally:
        torch.set_num_threads(previous)


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _points(value: float | None, baseline: float | None) -> str:
    return "-" if value is None or baseline is None else f"{100 * (value - baseline):+.2f}"


COMPARISON_COLUMNS = ("arm", "worker time, s", "vs none", "CPU time, s", "vs none", "of which pruner asks, s",
                      "epochs trained", "vs none",
                      "trials pruned", "trials failed", "best val/accuracy", "test/accuracy of that trial",
                      "Δ test (points)", "goal met")


def comparison(arms: list[Arm], goal_time: float = 0.40, goal_points: float = 1.0) -> Table:
    """One row per arm; ratios and differences against the first."""
    base = arms[0]
    study = base.study
    n = len(base.trials)
    head = (f"solver tournament on digits (mlp 2×128, batch {study.base['training']['batch_size']}, "
            f"{study.base['training']['epochs']} epochs): {study.description}, {n} trials per arm, one after "
            f"another; goal: ≤ {goal_time:.0%} of {base.name}'s worker time, test accuracy within "
            f"{goal_points:g} point")
    out = Table(head, COMPARISON_COLUMNS)
    base_best = base.best()
    base_test = base_best.test_accuracy if base_best else None
    for arm in arms:
        top = arm.best()
        time_ratio = arm.seconds / base.seconds if base.seconds else None
        test = top.test_accuracy if top else None
        if arm is base:
            met = "(baseline)"
        else:
            ok = (time_ratio is not None and time_ratio <= goal_time and test is not None and base_test is not None
                  and 100 * (test - base_test) >= -goal_points)
            met = "yes" if ok else "no"
        out.add(arm.name, f"{arm.seconds:.1f}", ratio(time_ratio), f"{arm.cpu_seconds:.1f}",
                ratio(arm.cpu_seconds / base.cpu_seconds if base.cpu_seconds else None), f"{arm.ask_seconds:.1f}",
                arm.epochs,
                ratio(arm.epochs / base.epochs if base.epochs else None), arm.count("pruned"), arm.count("failed"),
                _acc(arm.value(top)), _acc(test),
                _points(test, base_test) if arm is not base else "-", met)
        if top is not None:
            out.notes.append(f"{arm.name}: best trial {top.number}, {top.solver} lr={top.lr:.3g}")
    errors = sorted({t.error for arm in arms for t in arm.trials if t.error and not t.error.startswith("Diverged")})
    out.notes += [f"failed otherwise than by diverging: {e}" for e in errors]
    return out


def best_lrs(arms: list[Arm]) -> Table:
    """Per solver, each arm's best learning rate and its val accuracy."""
    columns = ["solver"]
    for arm in arms:
        columns += [f"best lr ({arm.name})", f"val/accuracy ({arm.name})"]
    columns.append("same lr")
    out = Table("per solver: the learning rate of its best complete trial in each arm, and that trial's best "
                "val/accuracy", tuple(columns))
    for solver in dict.fromkeys(t.solver for t in arms[0].trials):
        cells, lrs = [solver], []
        for arm in arms:
            top = arm.best(solver)
            lrs.append(top.lr if top else None)
            cells += [f"{top.lr:.3g}" if top else "-", _acc(arm.value(top))]
        cells.append("yes" if len(set(lrs)) == 1 and lrs[0] is not None else "no")
        out.add(*cells)
    return out


ARM_COLUMNS = ("solver", "trials", "complete", "pruned", "failed", "epochs trained", "worker time, s", "share")


def arm_table(arm: Arm) -> Table:
    """Per solver: what the arm ran and how long it took."""
    out = Table(f"arm {arm.name} (pruner {arm.study.pruner.model_dump(exclude={'n_startup_trials', 'n_warmup_steps'})}"
                f"): per solver", ARM_COLUMNS)
    total = arm.seconds or math.inf
    for solver in [*dict.fromkeys(t.solver for t in arm.trials), None]:
        trials = [t for t in arm.trials if solver is None or t.solver == solver]
        seconds = sum(t.seconds for t in trials)
        out.add(solver or "all", len(trials), sum(t.status == "succeeded" for t in trials),
                sum(t.status == "pruned" for t in trials), sum(t.status == "failed" for t in trials),
                sum(t.epochs for t in trials), f"{seconds:.1f}", f"{seconds / total:.0%}")
    return out


def tables(arms: list[Arm]) -> list[Table]:
    return [comparison(arms), best_lrs(arms), *(arm_table(a) for a in arms)]


# -- descent bench tournament ---------------------------------------------------------------

TITLE = "Solver tournament: ASHA against no pruning"
HELP = "the ten-solver x 7-LR tournament on digits, ASHA against no pruning: worker time and best accuracy"
QUICK = {"solvers": ["sgd", "adam"], "points": 3, "epochs": 4}


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arms", type=_names, default=list(DEFAULT_ARMS),
                   help="comma-separated pruners, the first the baseline; asha:rf=N:min=N sets ASHA's "
                        "reduction_factor and min_resource (default none,asha)")
    p.add_argument("--solvers", type=lambda t: [n.lower() for n in _names(t)], default=None,
                   help="comma-separated solver names (default: the ten Hasty solvers)")
    p.add_argument("--points", type=int, default=7, help="learning rates per solver (default 7)")
    p.add_argument("--lr-low", type=float, default=1e-5, help="lowest learning rate (default 1e-5)")
    p.add_argument("--lr-high", type=float, default=1.0, help="highest learning rate (default 1)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each trial (default 20)")
    p.add_argument("--batch-size", type=int, default=64, help="(default 64)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, as one worker)")
    p.add_argument("--quiet", action="store_true", help="no line per trial on stderr")


def measure(args: argparse.Namespace) -> list[Table]:
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    arms = run_tournament(args.arms, args.solvers, args.points, args.epochs, args.lr_low, args.lr_high,
                          args.batch_size, args.device, args.threads, log=None if args.quiet else log)
    return tables(arms)


__all__ = ["Arm", "Trial", "comparison", "parse_arm", "run_tournament", "tables"]
