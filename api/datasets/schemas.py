from __future__ import annotations

from datetime import datetime

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

from core.datasets.builtin import DatasetSource, Task
from core.spec.text import NulFreeStr


class DatasetPublic(BaseModel):
    """A built-in (``id`` is its name) or an uploaded dataset (``id`` is a number)."""

    id: int | str
    name: str
    source: DatasetSource
    description: str = ""
    n_samples: int
    feature_shape: list[int]
    task: Task
    n_classes: int | None = None
    class_counts: dict[str, int] | None = None
    filename: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    created_at: datetime | None = None


class DatasetUpload(BaseModel):
    """The multipart form of ``POST /datasets``: a file and what to call it."""

    model_config = ConfigDict(extra="forbid")

    file: UploadFile = Field(
        description="A .csv with a header row and a label column (`target`), or a .npz with arrays `x` (N, ...) "
                    "and `y` (N,).",
        json_schema_extra={"format": "binary"},
    )
    name: NulFreeStr = Field(min_length=1, max_length=200, description="A name to list the dataset under.")
    target: NulFreeStr | None = Field(None, max_length=200,
                                      description="The label column of a csv (default: a column named `target`).")
    task: Task | None = Field(None, description="Default: inferred from the labels.")
