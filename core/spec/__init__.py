"""The experiment spec the api validates and stores and the worker loads: pydantic models built
from optim's catalog (solvers, schedulers) and from the architecture and dataset metadata here,
all without torch."""

from core.spec.architectures import ARCHITECTURES, architecture_fit_errors
from core.spec.experiment import (
    ArchitectureSpec,
    ExperimentSpec,
    SchedulerSpec,
    SolverSpec,
    TrainingSpec,
    resolve_spec,
)

__all__ = [
    "ARCHITECTURES",
    "ArchitectureSpec",
    "ExperimentSpec",
    "SchedulerSpec",
    "SolverSpec",
    "TrainingSpec",
    "architecture_fit_errors",
    "resolve_spec",
]
