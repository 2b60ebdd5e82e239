from __future__ import annotations

from datetime import datetime

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

from core.datasets.builtin import DatasetSource, Task
from core.spec.text import NulFreeStr


class DatasetPublic(BaseModel):
    """A dataset a split can be made from: a built-in (``id`` is its name) or an upload (``id`` is
    a number).  Returned by ``GET /datasets`` (built-ins first), ``GET /datasets/{id}`` and the
    upload itself."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "iris", "name": "iris", "source": "builtin",
         "description": "Iris flowers (scikit-learn, 150 samples, 4 features, 3 classes)",
         "n_samples": 150, "feature_shape": [4], "task": "classification", "n_classes": 3,
         "class_counts": {"0": 50, "1": 50, "2": 50}, "filename": None, "sha256": None, "size_bytes": None,
         "created_at": None},
        {"id": 3, "name": "penguins", "source": "upload", "description": "uploaded penguins.csv",
         "n_samples": 333, "feature_shape": [4], "task": "classification", "n_classes": 3,
         "class_counts": {"Adelie": 146, "Chinstrap": 68, "Gentoo": 119}, "filename": "penguins.csv",
         "sha256": "5f3c8e0a9b1d4c7e2f6a8b0c1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e",
         "size_bytes": 11482, "created_at": "2025-03-14T09:12:05.118204Z"},
    ]})

    id: int | str = Field(description="A built-in's name, or an upload's numeric id: what a split's "
                                      "`dataset` takes.")
    project_id: int | None = Field(None, description="The project an upload belongs to (null for a built-in, "
                                                     "which every user sees).")
    name: str = Field(description="A built-in's name, or the name an upload was given.")
    source: DatasetSource
    description: str = Field("", description="A built-in's one-line description; `uploaded <filename>` for "
                                             "an upload.")
    n_samples: int = Field(description="Number of rows (samples).")
    feature_shape: list[int] = Field(description="The shape of one sample's features: `[4]` for four feature "
                                                 "columns, `[28, 28]` for 28×28 images.")
    task: Task
    n_classes: int | None = Field(None, description="Number of classes; null for a regression dataset.")
    class_counts: dict[str, int] | None = Field(
        None, description="Rows per class, by label (a built-in's labels are its class indices `0`, `1`, "
                          "...; an upload's are the labels in its file); null for a regression dataset.")
    filename: str | None = Field(None, description="The uploaded file's name; null for a built-in.")
    sha256: str | None = Field(None, description="SHA-256 of the uploaded file, in hex; null for a built-in.")
    size_bytes: int | None = Field(None, description="Bytes in the uploaded file; null for a built-in.")
    created_at: datetime | None = Field(None, description="When it was uploaded (UTC); null for a built-in.")


class DatasetUpload(BaseModel):
    """The multipart form of ``POST /datasets``: a file and what to call it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"file": "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,species\n"
                 "39.1,18.7,181,3750,Adelie\n46.5,17.9,192,3500,Chinstrap\n46.1,13.2,211,4500,Gentoo\n",
         "name": "penguins", "target": "species"},
    ]})

    file: UploadFile = Field(
        description="A .csv with a header row and a label column (`target`), or a .npz with arrays `x` (N, ...) "
                    "and `y` (N,).",
        json_schema_extra={"format": "binary"},
    )
    name: NulFreeStr = Field(min_length=1, max_length=200, description="A name to list the dataset under.")
    target: NulFreeStr | None = Field(None, max_length=200,
                                      description="The label column of a csv (default: a column named `target`).")
    task: Task | None = Field(None, description="Default: inferred from the labels.")
    project_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="The project to store it in (default: your first project you may "
                                               "edit).")
