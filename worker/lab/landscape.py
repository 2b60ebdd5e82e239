"""A trained run's loss landscape (``core.lab.landscape``): load the finished run's spec, split and
stored weights, draw filter-normalised directions (``worker.lab.directions``), evaluate the loss
and quality at every grid point on the train and validation subsets, and project where training
started onto the same axes.

The run's initial weights are rebuilt the way the engine builds them (``worker.engine.loop``:
the seed ``training.seed``, then the model), so nothing extra is stored per run.  Evaluation is
the engine's own (``worker.engine.metrics.evaluate``: eval mode, the run's loss, float64 sums) on
the CPU, which makes the centre's validation loss the run's recorded ``val/loss``."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import torch

from core.lab.landscape import LandscapeSpec, axis
from core.spec import ExperimentSpec
from store.db import session_scope
from store.repositories import experiments, splits
from worker.architectures import build_model
from worker.data import EVAL_CHUNK, Part, TrainingData, prepare
from worker.engine.metrics import LOSSES, evaluate
from worker.lab import directions as dirs

DEVICE = torch.device("cpu")


class LandscapeRefused(ValueError):
    """The run cannot have a landscape (not succeeded, no stored weights); the text says why and what to do."""


def subset(part: Part, size: int, generator: torch.Generator) -> Part:
    """``size`` examples of ``part`` drawn without replacement (in their stored order); the whole
    part, in order, when it holds no more."""
    if len(part) <= size:
        return part
    index = torch.randperm(len(part), generator=generator)[:size].sort().values
    return Part(part.x[index], part.y[index])


def initial_model(spec: ExperimentSpec, data: TrainingData) -> torch.nn.Module:
    """The run's model at step 0: seeded as the engine seeds it before building the model (the
    global generator's state is put back afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.training.seed)
        return build_model(spec.architecture.name, spec.architecture_hparams(), data.feature_shape, data.n_outputs)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _load_run(experiment_id: int, runtime) -> tuple[ExperimentSpec, int]:
    with session_scope(runtime.sessions) as session:
        experiment = experiments.get(session, experiment_id)
        if experiment is None:
            raise LandscapeRefused(f"experiment {experiment_id} no longer exists")
        if experiment.status != "succeeded":
            raise LandscapeRefused(f"experiment {experiment_id} is {experiment.status}: a landscape needs a run "
                                   "that succeeded and stored its weights")
        return ExperimentSpec.model_validate(experiment.spec), experiment.split_id


def _weights_path(runtime, experiment_id: int, which: str):
    path = runtime.settings.model_path(experiment_id, "state_dict", which)
    if not path.is_file():
        hint = ("a run stores best weights only when it has a validation part; use which=last"
                if which == "best" else "a run stores them when it succeeds (an LR range test stores none)")
        raise LandscapeRefused(f"experiment {experiment_id} has no stored {which} weights: {hint}")
    return path


def _chunks(part: Part):
    for start in range(0, len(part), EVAL_CHUNK):
        yield part.x[start:start + EVAL_CHUNK], part.y[start:start + EVAL_CHUNK]


def _evaluate_grid(model: torch.nn.Module, theta: dirs.Direction, directions: list[dirs.Direction],
                   points: list[tuple[float, ...]], parts: dict[str, Part],
                   measure) -> dict[str, dict[str, list[float | None]]]:
    """``measure(chunks)`` of every part at every point θ* + Σ c_k d_k, in ``points`` order (a
    non-finite value None); the model is left at θ*."""
    values: dict[str, dict[str, list[float | None]]] = {name: {} for name in parts}
    for point in points:
        dirs.place(model, theta, directions, point)
        for name, part in parts.items():
            if len(part) == 0:  # a split without a validation part
                continue
            for metric, value in measure(_chunks(part)).items():
                values[name].setdefault(metric, []).append(_finite(value))
    dirs.place(model, theta, directions, (0.0,) * len(directions))
    return values


def compute_landscape(job: dict[str, Any], runtime) -> dict[str, Any]:
    """The landscape ``job['spec']`` asks for around experiment ``job['experiment_id']``'s weights.

    Returns JSON-ready data: ``axis`` (the coordinates along each axis), ``train`` and ``val``
    (``loss`` and the task's quality, ``accuracy`` or ``r2``: a list for a line, rows over β of
    columns over α for a plane; a non-finite value is null), ``centre`` (the values at the run's
    weights), ``start`` (the initial weights' coordinates and the share of their distance the axes
    leave out), ``end`` (the run's weights: the origin), the subset sizes and timings.  Raises
    :class:`LandscapeRefused` for a run that did not succeed or lacks the weights."""
    started = time.perf_counter()
    spec = LandscapeSpec.model_validate(job["spec"])
    experiment_id = int(job["experiment_id"])
    run_spec, split_id = _load_run(experiment_id, runtime)
    path = _weights_path(runtime, experiment_id, spec.which)
    with session_scope(runtime.sessions) as session:
        arrays = splits.load_split_arrays(session, split_id, runtime.settings)
    data = prepare(arrays, DEVICE)
    model = initial_model(run_spec, data)
    start = dirs.weights(model)
    model.load_state_dict(torch.load(path, map_location=DEVICE, weights_only=True))
    model.eval()
    theta = dirs.weights(model)
    generator = torch.Generator().manual_seed(spec.seed)
    directions = [dirs.random_direction(theta, generator) for _ in range(spec.dims)]
    parts = {"train": subset(data.train, spec.train_examples, generator),
             "val": subset(data.val, spec.val_examples, generator)}
    loaded = time.perf_counter()

    loss_fn = LOSSES[run_spec.training.loss or ("cross_entropy" if data.info.task == "classification" else "mse")]
    coords = axis(spec)
    points = [(a,) for a in coords] if spec.dims == 1 else [(a, b) for b in coords for a in coords]
    values = _evaluate_grid(model, theta, directions, points, parts,
                            lambda chunks: evaluate(model, chunks, loss_fn, data.info.task, contextlib.nullcontext))
    centre = {name: {metric: series[len(points) // 2] for metric, series in metrics.items()}
              for name, metrics in values.items() if metrics}
    evaluated = time.perf_counter()

    delta = [s - t for s, t in zip(start, theta, strict=True)]
    start_coords, left_out = dirs.project(delta, directions)
    n = spec.points
    grids = {name: {metric: (series if spec.dims == 1 else [series[i * n:(i + 1) * n] for i in range(n)])
                    for metric, series in metrics.items()} for name, metrics in values.items()}
    return {
        "dims": spec.dims,
        "axis": coords,
        **grids,
        "centre": centre,
        "start": {"coords": start_coords, "left_out": left_out,
                  "distance": dirs.flat(delta).norm().item()},
        "end": {"coords": [0.0] * spec.dims},
        "examples": {name: len(part) for name, part in parts.items()},
        "parameters": sum(t.numel() for t in theta),
        "timings": {"load_s": loaded - started, "grid_s": evaluated - loaded,
                    "per_point_ms": 1000 * (evaluated - loaded) / len(points),
                    "total_s": time.perf_counter() - started},
    }
