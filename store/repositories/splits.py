"""Splits and the arrays they select: the worker trains on exactly the rows frozen at creation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.datasets.builtin import DatasetInfo, builtin_info, load_builtin
from core.datasets.storage import info_for, load_arrays
from core.settings import Settings
from core.splits import SplitArrays
from store.models import Dataset, Experiment, Split
from store.repositories import valid_id


def get(session: Session, split_id: int) -> Split | None:
    return session.get(Split, split_id) if valid_id(split_id) else None


def list_page(session: Session, *, limit: int, offset: int = 0, project_ids: Sequence[int] | None = None
              ) -> list[Split]:
    """Splits in creation order (only ``project_ids``' when given)."""
    query = select(Split).order_by(Split.id).limit(limit).offset(offset)
    if project_ids is not None:
        query = query.where(Split.project_id.in_(list(project_ids)))
    return list(session.scalars(query))


def add(session: Session, split: Split) -> Split:
    session.add(split)
    session.flush()
    return split


def find_same(session: Session, *, project_id: int, builtin: str | None, dataset_id: int | None, strategy: str,
              fractions: dict[str, float], seed: int) -> Split | None:
    """The project's oldest split of the same data with the same strategy, fractions and seed
    (its rows are the ones a new split would get), or None."""
    query = select(Split).where(Split.project_id == project_id, Split.strategy == strategy, Split.seed == seed)
    query = query.where(Split.builtin == builtin if builtin is not None else Split.dataset_id == dataset_id)
    return next((s for s in session.scalars(query.order_by(Split.id)) if s.fractions == fractions), None)


def dataset_of(session: Session, split: Split, settings: Settings) -> tuple[DatasetInfo, Dataset | None]:
    if split.builtin is not None:
        return builtin_info(split.builtin), None
    dataset = session.get(Dataset, split.dataset_id)
    if dataset is None:  # the foreign key forbids it; a clear message if it happens anyway
        raise LookupError(f"split {split.id}: dataset {split.dataset_id} does not exist")
    return info_for(dataset), dataset


def load_split_arrays(session: Session, split_id: int, settings: Settings) -> SplitArrays:
    """The train/val/test arrays of split ``split_id`` (``LookupError`` when it does not exist)."""
    split = get(session, split_id)
    if split is None:
        raise LookupError(f"split {split_id} does not exist")
    info, dataset = dataset_of(session, split, settings)
    if dataset is None:
        x, y = load_builtin(split.builtin)
    else:
        x, y = load_arrays(settings.upload_dir / dataset.path, dataset.arrays_sha256)
    parts = {}
    for part in ("train", "val", "test"):
        idx = np.asarray(getattr(split, f"{part}_indices"), dtype=np.int64)
        parts[f"x_{part}"], parts[f"y_{part}"] = x[idx], y[idx]
    return SplitArrays(info=info, **parts)


def experiments_using(session: Session, split_id: int) -> list[int]:
    """Ids of the experiments trained (or to be trained) on the split."""
    return list(session.scalars(select(Experiment.id).where(Experiment.split_id == split_id).order_by(Experiment.id)))


def delete(session: Session, split: Split) -> None:
    session.delete(split)
    session.flush()
