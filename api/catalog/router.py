from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from core.spec import ARCHITECTURES
from core.spec.experiment import solver_fields_schema
from optim import catalog

router = APIRouter(tags=["catalog"])


class CatalogItemPublic(BaseModel):
    """One catalog entry; ``hyperparameters`` is a JSON Schema object a client can render as a form."""

    model_config = ConfigDict(extra="allow")

    name: str
    class_path: str
    family: str
    summary: str
    reference: str
    hyperparameters: dict[str, Any]


class SolverItemPublic(CatalogItemPublic):
    experiment_fields: dict[str, Any] = Field(
        description="``hyperparameters`` under the names an experiment's ``solver`` section uses "
                    "(the learning rate ``lr`` is ``base_lr``): render a form for POST /experiments from this",
    )


@router.get("/solvers", response_model=list[SolverItemPublic])
def list_solvers() -> list[dict[str, Any]]:
    """Every solver.  ``hyperparameters`` has the constructor's names (``lr``); an experiment
    writes the learning rate ``base_lr``, as ``experiment_fields`` does."""
    return [{**e.public(), "experiment_fields": solver_fields_schema(e)} for e in catalog.SOLVERS.values()]


@router.get("/schedulers", response_model=list[CatalogItemPublic])
def list_schedulers() -> list[dict[str, Any]]:
    return [e.public() for e in catalog.SCHEDULERS.values()]


@router.get("/architectures", response_model=list[CatalogItemPublic])
def list_architectures() -> list[dict[str, Any]]:
    return [e.public() for e in ARCHITECTURES.values()]
