from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from optim import catalog
from store.spec import ARCHITECTURES

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


@router.get("/solvers", response_model=list[CatalogItemPublic])
def list_solvers() -> list[dict[str, Any]]:
    """Every solver.  In an experiment the learning rate ``lr`` is written ``base_lr``."""
    return [e.public() for e in catalog.SOLVERS.values()]


@router.get("/schedulers", response_model=list[CatalogItemPublic])
def list_schedulers() -> list[dict[str, Any]]:
    return [e.public() for e in catalog.SCHEDULERS.values()]


@router.get("/architectures", response_model=list[CatalogItemPublic])
def list_architectures() -> list[dict[str, Any]]:
    return [e.public() for e in ARCHITECTURES.values()]
