from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import UserDep
from api.errors import responses
from core.spec import ARCHITECTURES
from core.spec.experiment import solver_fields_schema
from optim import catalog

router = APIRouter(tags=["catalog"])


class CatalogItemPublic(BaseModel):
    """One entry of a catalog (a scheduler from ``GET /schedulers``, an architecture from
    ``GET /architectures``); ``hyperparameters`` is a JSON Schema object a client can render as a
    form.  Entries may carry more keys of their own (a scheduler's ``interval``, an
    architecture's ``inputs``)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The key a spec names it by, e.g. `adam`, `cosineannealinglr`, `mlp`.")
    class_path: str = Field(description="Dotted import path of the class implementing it, e.g. `optim.Adam`.")
    family: str = Field(description="The group it belongs to, e.g. `adaptive` or `second_order` for a "
                                    "solver, `decay` or `warmup` for a scheduler, `convolutional` for an "
                                    "architecture.")
    summary: str = Field(description="One line on what it does.")
    reference: str = Field(description="Where it comes from: a paper citation or a documentation URL.")
    hyperparameters: dict[str, Any] = Field(
        description="A JSON Schema object of its hyperparameters under the constructor's names (each with "
                    "its type, default, bounds and description).")


class SolverItemPublic(CatalogItemPublic):
    """One solver from ``GET /solvers``, with its hyperparameters under the constructor's names and
    under the names an experiment's ``solver`` section uses."""

    experiment_fields: dict[str, Any] = Field(
        description="``hyperparameters`` under the names an experiment's ``solver`` section uses "
                    "(the learning rate ``lr`` is ``base_lr``): render a form for POST /experiments from this",
    )


@router.get("/solvers", response_model=list[SolverItemPublic], responses=responses(401, 403))
def list_solvers(principal: UserDep) -> list[dict[str, Any]]:
    """Every solver.  ``hyperparameters`` has the constructor's names (``lr``); an experiment
    writes the learning rate ``base_lr``, as ``experiment_fields`` does."""
    return [{**e.public(), "experiment_fields": solver_fields_schema(e)} for e in catalog.SOLVERS.values()]


@router.get("/schedulers", response_model=list[CatalogItemPublic], responses=responses(401, 403))
def list_schedulers(principal: UserDep) -> list[dict[str, Any]]:
    """Every learning-rate scheduler an experiment's ``scheduler`` section can name, with its
    hyperparameters; ``interval`` says when it steps: after every optimizer step (``step``), every
    epoch (``epoch``), or every epoch with the validation loss (``metric``)."""
    return [e.public() for e in catalog.SCHEDULERS.values()]


@router.get("/architectures", response_model=list[CatalogItemPublic], responses=responses(401, 403))
def list_architectures(principal: UserDep) -> list[dict[str, Any]]:
    """Every model architecture an experiment's ``architecture`` section can name, with its
    hyperparameters; ``inputs`` says which dataset shapes it takes."""
    return [e.public() for e in ARCHITECTURES.values()]
