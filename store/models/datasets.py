"""Uploaded datasets and frozen splits (built-in datasets are never stored, only named)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import NEVER_REUSE_IDS, Base, UTCDateTime, utcnow


class Dataset(Base):
    """An uploaded table or array file, stored under the data folder with its checksum."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(8))  # "csv" | "npz"
    filename: Mapped[str] = mapped_column(String(255))  # what the client called it
    path: Mapped[str] = mapped_column(String(500))  # relative to Settings.upload_dir
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded file
    arrays_sha256: Mapped[str] = mapped_column(String(64))  # of the parsed x, y stored at ``path``
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[str | None] = mapped_column(String(200))  # label column of a csv
    n_samples: Mapped[int] = mapped_column(Integer)
    feature_shape: Mapped[list[int]] = mapped_column(JSON)
    task: Mapped[str] = mapped_column(String(16))
    n_classes: Mapped[int | None] = mapped_column(Integer)
    class_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("task IN ('classification', 'regression')", name="task"), NEVER_REUSE_IDS)


class Split(Base):
    """Train/val/test index lists, frozen at creation so a split reproduces forever.

    Exactly one of ``builtin`` (a built-in dataset's name) and ``dataset_id`` is set."""

    __tablename__ = "splits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    builtin: Mapped[str | None] = mapped_column(String(64))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"), index=True)
    strategy: Mapped[str] = mapped_column(String(16))
    fractions: Mapped[dict[str, float]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    train_indices: Mapped[list[int]] = mapped_column(JSON)
    val_indices: Mapped[list[int]] = mapped_column(JSON)
    test_indices: Mapped[list[int]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # sizes and class counts per part
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dataset: Mapped[Dataset | None] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint("(builtin IS NULL) <> (dataset_id IS NULL)", name="one_source"),
        CheckConstraint("strategy IN ('random', 'stratified')", name="strategy"),
        NEVER_REUSE_IDS,
    )
