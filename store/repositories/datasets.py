"""Uploaded dataset rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Dataset
from store.repositories import valid_id


def get(session: Session, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id) if valid_id(dataset_id) else None


def add(session: Session, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def list_all(session: Session, project_ids: Sequence[int] | None = None) -> list[Dataset]:
    """Uploads in upload order (only ``project_ids``' when given)."""
    query = select(Dataset).order_by(Dataset.id)
    if project_ids is not None:
        query = query.where(Dataset.project_id.in_(list(project_ids)))
    return list(session.scalars(query))
