"""The experiment definition: what ``POST /experiments`` accepts, what the database stores and
what the worker trains.  One pydantic model, shared by api and worker.

Solver, scheduler and architecture sections are discriminated unions on ``name`` built from the
catalogs, so every solver's own hyperparameters are validated with their bounds and appear in
the OpenAPI schema.  The solver's ``lr`` is written ``base_lr`` here (the learning rate that a
scheduler scales).  ``resolve_spec`` fills what depends on the data: the loss from the task,
the scheduler's length fields from the epochs and the split size, its learning-rate bounds
(CyclicLR, OneCycleLR) from the solver's ``base_lr``.

Every solver section has a ``weight_decay``.  Where the solver has its own (SGD's, Adam's,
AdamW's decoupled one...) it is that argument; the others (L-BFGS, BFGS, Newton, Hessian-free,
natural gradient, Rprop, random search: torch's and the papers' versions take none) get an L2
penalty instead: the engine minimises ``loss + weight_decay / 2 * ||theta||^2``, whose gradient
adds ``weight_decay * theta`` exactly as SGD's coupled decay does, and still reports the data
loss as ``train/loss``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.choices import choice
from core.datasets.builtin import DatasetInfo
from core.spec import monitor
from core.spec.architectures import ARCHITECTURES, architecture_fit_errors
from core.spec.from_catalog import models_for_entries, union_of
from core.spec.text import NulFreeStr
from optim import catalog

SOLVER_RENAMES = {"lr": "base_lr"}
L2_PENALTY = "weight_decay"
L2_PENALTY_DOC = (
    "L2 penalty: the loss minimised is loss + weight_decay/2 * ||theta||^2 (this solver has no weight "
    "decay of its own; train/loss reports the data loss)."
)


def has_own_weight_decay(entry: Any) -> bool:
    return any(h.name == L2_PENALTY for h in entry.hyperparameters)


def solver_fields_schema(entry: Any) -> dict[str, Any]:
    """A solver entry's hyperparameters as JSON Schema (``entry.json_schema()``) under the names
    an experiment's ``solver`` section uses (``lr`` is ``base_lr``): a form rendered from it
    posts a valid body."""
    schema = entry.json_schema()
    properties = {}
    for key, prop in schema["properties"].items():
        name = SOLVER_RENAMES.get(key, key)
        properties[name] = {**prop, "title": name} if prop.get("title") == key else prop
    if not has_own_weight_decay(entry):
        properties[L2_PENALTY] = {"type": "number", "title": L2_PENALTY, "default": 0.0, "minimum": 0.0,
                                  "description": L2_PENALTY_DOC}
    return {**schema, "properties": properties,
            "required": [SOLVER_RENAMES.get(k, k) for k in schema.get("required", [])]}


_L2_FIELD = {L2_PENALTY: (float, Field(0.0, ge=0.0, allow_inf_nan=False, description=L2_PENALTY_DOC))}
_WARMUP_FIELDS = {
    "warmup_steps": (int, Field(0, ge=0, description="Optimizer steps of linear warm-up before the schedule.")),
    "warmup_start_factor": (
        float,
        Field(0.0, ge=0.0, le=1.0, description="Warm-up starts at this fraction of base_lr."),
    ),
}

SOLVER_MODELS = models_for_entries(
    catalog.SOLVERS.values(), prefix="Solver", renames=SOLVER_RENAMES,
    extra_fields=lambda e: None if has_own_weight_decay(e) else _L2_FIELD,
)
# a metric scheduler (ReduceLROnPlateau) watches one epoch metric; its `mode` defaults to that
# metric's direction (resolve_spec)
_METRIC_FIELD = {
    "metric": (NulFreeStr, Field(
        monitor.DEFAULT_METRIC, max_length=128,
        description="The epoch metric it watches (val/loss, val/accuracy, train/epoch_loss, …); `mode` defaults to "
                    "its direction (max for accuracy and r2).")),
}
SCHEDULER_MODELS = models_for_entries(
    catalog.SCHEDULERS.values(), prefix="Scheduler",
    extra_fields=lambda e: _WARMUP_FIELDS | (_METRIC_FIELD if e.interval == "metric" else {}),
)
ARCHITECTURE_MODELS = models_for_entries(ARCHITECTURES.values(), prefix="Architecture")


SolverSpec = union_of(SOLVER_MODELS)
SchedulerSpec = union_of(SCHEDULER_MODELS)
ArchitectureSpec = union_of(ARCHITECTURE_MODELS)

LossName = choice("Loss", ("cross_entropy", "hinge", "mse", "huber"),
                  "The training loss: cross_entropy or (multiclass) hinge for classification, mse or huber for "
                  "regression.")
Precision = choice("Precision", ("fp32", "bf16", "fp16"),
                   "Arithmetic of the forward and backward passes: float32, or mixed precision with bfloat16 or "
                   "float16 autocast (CUDA only; the optimizer state stays float32).")
Device = choice("Device", ("auto", "cpu", "cuda"),
                "Where the run trains: cpu, cuda (a GPU worker), or auto (a GPU worker when one is alive, else cpu).")
# the largest batch_size a spec may name; memory is bounded by the queue's budget (core.spec.budget)
MAX_BATCH_SIZE = 1 << 20
CLASSIFICATION_LOSSES = ("cross_entropy", "hinge")
REGRESSION_LOSSES = ("mse", "huber")


# min|max is one named choice in the schema: the plateau scheduler's `mode`, built from its catalog entry
MonitorMode = choice("SchedulerReducelronplateauMode", ("min", "max"),
                     "Whether the monitored value should decrease (min) or increase (max).")


class EarlyStopping(BaseModel):
    """Stop once an epoch metric has not improved for ``patience`` epochs (``core.spec.monitor``);
    the same metric picks the run's best checkpoint."""

    model_config = ConfigDict(extra="forbid")

    metric: NulFreeStr = Field(monitor.DEFAULT_METRIC, min_length=1, max_length=128,
                               description="The epoch metric watched: val/loss, val/accuracy, val/r2, train/epoch_loss, …")
    mode: MonitorMode | None = Field(
        None, description="min: lower is better, max: higher is better; default: the metric's own direction.")
    patience: int = Field(5, ge=1, le=100_000, description="Epochs without improvement before the run stops.")
    min_delta: float = Field(0.0, ge=0.0, allow_inf_nan=False,
                             description="The smallest change that counts as an improvement.")


class RangeTest(BaseModel):
    """Smith's learning-rate range test (Smith 2017, §3.3; fastai's ``lr_find``): ``num_steps``
    training steps while the learning rate rises geometrically from ``min_lr`` to ``max_lr``,
    stopping once the smoothed loss diverges; the run records ``lr``, ``train/loss`` and
    ``range/smoothed_loss`` per step and ``range/suggested_lr``, ``range/steepest_lr`` and
    ``range/min_loss_lr`` at its end (``core.studies.range_test``)."""

    model_config = ConfigDict(extra="forbid")

    min_lr: float = Field(1e-7, gt=0, allow_inf_nan=False, description="The learning rate of the first step.")
    max_lr: float = Field(10.0, gt=0, allow_inf_nan=False,
                          description="The learning rate of the last step; must exceed min_lr.")
    num_steps: int = Field(100, ge=10, le=10_000,
                           description="Steps from min_lr to max_lr, evenly spaced in log lr; the batches cycle over "
                                       "as many passes over the train part as they need.")
    diverge_factor: float = Field(4.0, gt=1, allow_inf_nan=False,
                                  description="The test stops once the smoothed loss exceeds this many times its "
                                              "best so far (or is not finite).")
    beta: float = Field(0.98, ge=0, lt=1,
                        description="β of the bias-corrected exponential moving average that smooths the loss; "
                                    "0 takes the raw loss.")

    @model_validator(mode="after")
    def _check(self) -> RangeTest:
        if not self.min_lr < self.max_lr:
            raise ValueError(f"max_lr ({self.max_lr:g}) must exceed min_lr ({self.min_lr:g})")
        return self


class TrainingSpec(BaseModel):
    """How to train: length, batching, loss, seed, numerics and the gradient tools."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1, le=100_000, description="Passes over the train part (a range test ignores it).")
    batch_size: int | None = Field(
        64, ge=1, le=MAX_BATCH_SIZE,
        description="Samples per step; null trains full batch (plain gradient descent).",
    )
    loss: LossName | None = Field(None, description="Default: cross_entropy for classification, mse for regression.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds model init, batching and noise.")
    grad_clip_norm: float | None = Field(None, gt=0, allow_inf_nan=False, description="Clip the global grad norm.")
    grad_clip_value: float | None = Field(None, gt=0, allow_inf_nan=False, description="Clip each grad element.")
    gradient_noise: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="η of annealed Gaussian gradient noise, variance η/(1+t)^0.55 (Neelakantan et al. 2015).",
    )
    diagnostics_every: int = Field(
        10, ge=1, le=1_000_000,
        description="Record grad_norm and update_ratio on every n-th step only (steps 1, 1+n, 1+2n, …): measuring "
                    "them costs memory passes over weights and gradients, ~10% of a small model's step. "
                    "train/loss and lr are recorded at every step; 1 measures every step.",
    )
    early_stopping: EarlyStopping | None = Field(
        None, description="Stop when an epoch metric stops improving; null trains every epoch. The best checkpoint "
                          "(GET /experiments/{id}/model?which=best) is the best epoch by this metric, by val/loss "
                          "without it.")
    precision: Precision = Field("fp32", description="Mixed precision on CUDA.")
    device: Device = Field("auto", description="auto: a GPU worker when one is alive.")
    max_minutes: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="Wall-clock limit: a run still training after this many minutes stops and fails, saying so. "
                    "Default and upper bound: the instance's DESCENT_MAX_RUN_MINUTES.",
    )
    range_test: RangeTest | None = Field(
        None,
        description="Run Smith's LR range test instead of training: num_steps steps with the learning rate rising "
                    "geometrically from min_lr to max_lr, stopping when the smoothed loss diverges (that is a "
                    "success). The scheduler and epochs are ignored and no model is stored; the run's summary "
                    "suggests a base_lr (range/suggested_lr).",
    )


EXAMPLE_SPEC: dict[str, Any] = {
    "name": "iris-adam-cosine", "description": "MLP on iris, Adam, cosine decay after 20 warm-up steps",
    "split_id": 1, "tags": ["tour", "iris"],
    "architecture": {"name": "mlp", "depth": 2, "width": 32, "activation": "relu"},
    "solver": {"name": "adam", "base_lr": 0.01, "betas": [0.9, 0.999], "weight_decay": 0.0},
    "scheduler": {"name": "cosineannealinglr", "eta_min": 0.0001, "warmup_steps": 20},
    "training": {"epochs": 30, "batch_size": 16, "seed": 0},
}


def _default_scheduler() -> Any:
    for model in SCHEDULER_MODELS:
        if model.model_fields["name"].annotation == Literal["constant"]:
            return model(name="constant")
    return None


class ExperimentSpec(BaseModel):
    """A whole experiment.  Only ``name``, ``split_id``, ``architecture.name`` and ``solver.name``
    are required; everything else defaults from the catalogs."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_SPEC]})

    name: NulFreeStr = Field(min_length=1, max_length=200, description="A name to list and compare the run by.")
    description: NulFreeStr = Field("", max_length=10_000, description="Free text: what this run tries.")
    split_id: int = Field(ge=1, description="The split (POST /splits) whose train part it trains on.")
    architecture: ArchitectureSpec = Field(
        description="The model: `name` picks one of GET /architectures, the other fields are its hyperparameters.")
    solver: SolverSpec = Field(
        description="The optimizer: `name` picks one of GET /solvers, `base_lr` is its learning rate, the other "
                    "fields its hyperparameters (torch's names).")
    scheduler: Annotated[SchedulerSpec | None, Field(
        default_factory=_default_scheduler,
        description="How the learning rate changes over the run (GET /schedulers); default constant, null for none. "
                    "A range test (training.range_test) ignores it: the test sets the rate itself.",
    )]
    training: TrainingSpec = Field(default_factory=TrainingSpec,
                                   description="Length, batching, loss, seed, numerics and gradient tools.")
    tags: list[Annotated[NulFreeStr, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32, description="Labels to filter the experiment list by.")

    def solver_hparams(self) -> dict[str, Any]:
        """The solver's constructor arguments in catalog names (base_lr → lr); an L2 penalty
        standing in for a weight decay the solver lacks is not one (see :meth:`l2_penalty`)."""
        back = {v: k for k, v in SOLVER_RENAMES.items()}
        exclude = {"name"} if self._own_weight_decay() else {"name", L2_PENALTY}
        return {back.get(k, k): v for k, v in self.solver.model_dump(exclude=exclude).items()}

    def l2_penalty(self) -> float:
        """The coefficient of ``||theta||^2 / 2`` the engine adds to the loss: the section's
        ``weight_decay`` for a solver without its own, else 0."""
        return 0.0 if self._own_weight_decay() else float(getattr(self.solver, L2_PENALTY, 0.0))

    def _own_weight_decay(self) -> bool:
        return has_own_weight_decay(catalog.solver(self.solver.name))

    def scheduler_hparams(self) -> dict[str, Any]:
        """The scheduler's own arguments (warm-up fields excluded)."""
        if self.scheduler is None:
            return {}
        return self.scheduler.model_dump(exclude={"name", *_WARMUP_FIELDS, *_METRIC_FIELD})

    def watch(self) -> monitor.Watch:
        """What the best checkpoint and early stopping watch."""
        stopping = self.training.early_stopping
        if stopping is None:
            return monitor.Watch()
        return monitor.Watch(stopping.metric, stopping.mode, stopping.min_delta)

    def architecture_hparams(self) -> dict[str, Any]:
        return self.architecture.model_dump(exclude={"name"})


class SpecError(ValueError):
    """Problems that need the data to see: each is (location path, message)."""

    def __init__(self, errors: list[tuple[tuple[str | int, ...], str]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in errors))


def steps_per_epoch(n_train: int, batch_size: int | None) -> int:
    return 1 if batch_size is None else max(1, math.ceil(n_train / batch_size))


def resolve_spec(spec: ExperimentSpec, dataset: DatasetInfo, n_train: int) -> ExperimentSpec:
    """A copy of ``spec`` with the data-dependent defaults filled in, or ``SpecError``.

    The loss defaults from the task and must suit it; the architecture must take the dataset's
    sample shape; the scheduler's length fields left out derive from the epochs and the number
    of steps per epoch, and the fields given must agree with each other and with the run (a
    OneCycleLR at least as long as the run, a CyclicLR's max_lr not below its base_lr)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    training = spec.training.model_copy()
    if training.loss is None:
        training.loss = "cross_entropy" if dataset.task == "classification" else "mse"
    if dataset.task == "classification" and training.loss not in CLASSIFICATION_LOSSES:
        errors.append((("training", "loss"), f"{training.loss} is a regression loss; this dataset is classification"))
    if dataset.task == "regression" and training.loss not in REGRESSION_LOSSES:
        errors.append((("training", "loss"), f"{training.loss} needs class labels; this dataset is regression"))
    for field, msg in architecture_fit_errors(spec.architecture.name, spec.architecture_hparams(),
                                              dataset.feature_shape):
        # the path pydantic gives a bad value of this architecture's field, or the section itself
        errors.append((("architecture", spec.architecture.name, field) if field else ("architecture",),
                       f"{field}: {msg}" if field else msg))
    if training.batch_size is not None and training.batch_size > n_train:
        training.batch_size = n_train  # one step per epoch either way; keeps steps_per_epoch honest
    if training.early_stopping is not None:
        stopping = training.early_stopping
        errors += monitor.metric_errors(stopping.metric, dataset.task, ("training", "early_stopping", "metric"))
        if stopping.mode is None:
            training.early_stopping = stopping.model_copy(update={"mode": monitor.mode_for(stopping.metric)})
    scheduler = spec.scheduler
    if scheduler is not None and "metric" in type(scheduler).model_fields:
        errors += monitor.metric_errors(scheduler.metric, dataset.task, ("scheduler", "metric"))
        if "mode" not in scheduler.model_fields_set:
            scheduler = scheduler.model_copy(update={"mode": monitor.mode_for(scheduler.metric)})
    if scheduler is not None:
        scheduler = _resolve_scheduler(
            scheduler, training.epochs, steps_per_epoch(n_train, training.batch_size),
            getattr(spec.solver, "base_lr", None), errors,
        )
    if errors:
        raise SpecError(errors)
    return spec.model_copy(update={"training": training, "scheduler": scheduler})


def _resolve_scheduler(scheduler, epochs: int, per_epoch: int, base_lr: float | None, errors) -> Any:
    """Fill the left-out derived fields (``optim.factory.derive_scheduler_params``, with the
    warm-up: a step schedule starts after it), then check the fields against each other and the
    run's length (``check_scheduler_params``); problems go to ``errors`` at
    ``scheduler.<field>``."""
    from optim import factory

    entry = catalog.scheduler(scheduler.name)
    own = scheduler.model_dump(exclude={"name"})
    given = {k: v for k, v in own.items() if v is not None}
    try:
        filled = factory.derive_scheduler_params(
            entry, given, epochs=epochs, steps_per_epoch=per_epoch, base_lr=base_lr
        )
    except ValueError as exc:
        errors.append((("scheduler",), str(exc)))
        return scheduler
    for field, msg in factory.check_scheduler_params(entry, filled, epochs, per_epoch):
        errors.append((("scheduler", field), msg))
    return scheduler.model_copy(update=filled)
