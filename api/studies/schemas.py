"""What ``/studies`` accepts and answers.  The study itself is ``core.studies.StudySpec``; a
tournament is the preset ``core.studies.tournament`` builds one from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.choices import choice
from core.statuses import Status, StudyStatus
from core.studies import StudySpec
from core.studies.space import PrunerName

StudyKind = choice("StudyKind", ("search", "tournament"),
                   "How the study was made: search (POST /studies) or tournament (POST /studies/tournament).")

StudyCreate = StudySpec


class TournamentCreate(BaseModel):
    """The solver tournament: every solver at ``points`` learning rates from ``lr_low`` to
    ``lr_high`` (log-spaced) on one split and architecture, a grid study stopping hopeless trials
    early with ASHA by default."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "base": {"name": "digits-mlp", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "adam"},
                 "training": {"epochs": 20, "batch_size": 64}},
        "solvers": ["adam", "sgd", "rmsprop"], "lr_low": 1e-4, "lr_high": 1.0, "points": 5, "metric": "val/accuracy",
    }]})

    base: dict[str, Any] = Field(description="The experiment spec every trial starts from (as POST /experiments; "
                                             "its solver section is replaced per trial).")
    solvers: list[str] | None = Field(None, min_length=1, max_length=40,
                                      description="Catalog names (GET /solvers); default: the ten Hasty solvers.")
    lr_low: float = Field(1e-5, gt=0, allow_inf_nan=False, description="The smallest base_lr tried.")
    lr_high: float = Field(1.0, gt=0, allow_inf_nan=False, description="The largest base_lr tried.")
    points: int = Field(7, ge=2, le=50, description="Learning rates per solver, log-spaced.")
    pruner: PrunerName = Field("asha", description="How hopeless trials stop early.")
    metric: str = Field("val/loss", min_length=1, max_length=128, description="The objective: its best epoch's value.")
    name: str | None = Field(None, min_length=1, max_length=200, description="Default: '<base name> solver tournament'.")
    parallel: int = Field(4, ge=1, le=1000, description="Trials running at once.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the sampler.")
    per_solver: bool = Field(False, description="Prune each trial against its own solver's trials only, so every "
                                                "solver keeps its best trials (more worker time).")


class TrialPublic(BaseModel):
    """One trial: an experiment the study made, with its parameters and objective value."""

    number: int = Field(description="Its number in the study, from 0 in the order they were made.")
    experiment_id: int = Field(description="The experiment (GET /experiments/{id}).")
    status: Status
    params: dict[str, Any] = Field(description="Dotted spec path -> the value this trial has.")
    label: str = Field(description="The parameters in a few words, e.g. `adam lr=0.001`.")
    value: float | None = Field(description="Its objective value (best or final epoch's, per the objective); null "
                                            "before its first epoch.")
    epoch: int = Field(description="Epochs it completed.")


class StudyPublic(BaseModel):
    """A study, its trials, the best of them and which parameters mattered."""

    id: int = Field(description="The study's id.")
    project_id: int = Field(description="The project it belongs to: its split's.")
    name: str = Field(description="Its name.")
    kind: StudyKind
    status: StudyStatus
    spec: dict[str, Any] = Field(description="The study as stored: the StudySpec with its defaults filled in.")
    split_id: int = Field(description="The split every trial trains on.")
    created_at: datetime = Field(description="When it was created (UTC).")
    finished_at: datetime | None = Field(description="When it ended; null while running.")
    note: str | None = Field(description="Why it stopped, or what keeps it waiting; null when all is well.")
    counts: dict[str, int] = Field(description="Trials by experiment status.")
    max_trials: int = Field(description="Its trial budget.")
    trials: list[TrialPublic] = Field(description="Every trial, by number (empty in list pages).")
    best: TrialPublic | None = Field(description="The trial with the best objective value so far.")
    importance: dict[str, float] = Field(
        description="How much each parameter explains the objective's variation across finished trials "
                    "(fANOVA, summing to 1); empty until there are enough (and in list pages).")


class StudyPage(BaseModel):
    """A page of ``GET /studies``: the caller's studies, newest first, without their trial lists."""

    items: list[StudyPublic] = Field(description="This page's studies, newest first.")
    total: int = Field(description="How many studies the caller can see, over all pages.")
    limit: int = Field(description="The most items a page holds (`?limit=`).")
    offset: int = Field(description="How many studies come before this page (`?offset=`).")
