"""Uploaded dataset rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Dataset, Split
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


def named(session: Session, name: str, project_ids: Sequence[int] | None = None) -> list[Dataset]:
    """Uploads called ``name`` (only ``project_ids``' when given), oldest first."""
    query = select(Dataset).where(Dataset.name == name).order_by(Dataset.id)
    if project_ids is not None:
        query = query.where(Dataset.project_id.in_(list(project_ids)))
    return list(session.scalars(query))


def stored_bytes(session: Session, project_id: int) -> int:
    """The sizes of the project's uploads added up, as uploaded (what its storage quota counts)."""
    return session.scalar(select(func.coalesce(func.sum(Dataset.size_bytes), 0))
                          .where(Dataset.project_id == project_id)) or 0


def splits_using(session: Session, dataset_id: int) -> list[int]:
    """Ids of the splits made from the upload."""
    return list(session.scalars(select(Split.id).where(Split.dataset_id == dataset_id).order_by(Split.id)))


def delete(session: Session, dataset: Dataset) -> bool:
    """Delete the row; whether its stored arrays file is now unused (uploads of the same content
    share one file, named by its digest)."""
    path = dataset.path
    session.delete(dataset)
    session.flush()
    return not session.scalar(select(func.count()).select_from(Dataset).where(Dataset.path == path))
