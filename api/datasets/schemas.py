from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class DatasetPublic(BaseModel):
    """A built-in (``id`` is its name) or an uploaded dataset (``id`` is a number)."""

    id: int | str
    name: str
    source: Literal["builtin", "upload"]
    description: str = ""
    n_samples: int
    feature_shape: list[int]
    task: Literal["classification", "regression"]
    n_classes: int | None = None
    class_counts: dict[str, int] | None = None
    filename: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    created_at: datetime | None = None
