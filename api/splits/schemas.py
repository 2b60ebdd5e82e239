from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.splits import SplitStrategy


class Fractions(BaseModel):
    """The shares of a dataset's rows that go to the train, validation and test parts; they must
    add up to 1."""

    model_config = ConfigDict(extra="forbid")

    train: float = Field(0.7, gt=0, le=1, allow_inf_nan=False, description="Share of the rows to train on.")
    val: float = Field(0.2, ge=0, lt=1, allow_inf_nan=False,
                       description="Share of the rows for validation (the `val/...` metrics); 0 for none.")
    test: float = Field(0.1, ge=0, lt=1, allow_inf_nan=False,
                        description="Share of the rows held out for the `test/...` metrics; 0 for none.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> Fractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class SplitCreate(BaseModel):
    """The body of ``POST /splits``: which dataset to split, and how.  The rows are assigned once
    and frozen, so every experiment on the split sees the same rows."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"dataset": "iris", "strategy": "stratified", "fractions": {"train": 0.7, "val": 0.2, "test": 0.1},
         "seed": 0},
    ]})

    dataset: int | str = Field(description="a built-in dataset's name, or an uploaded dataset's name or id (two uploads of one name: give the id)")
    strategy: SplitStrategy = "random"
    fractions: Fractions = Field(default_factory=Fractions,
                                 description="The shares of train, val and test (default 0.7, 0.2, 0.1).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the shuffle: the same dataset, strategy, "
                                                          "fractions and seed give the same rows.")
    project_id: int | None = Field(None, ge=1, le=2**31 - 1, description=(
        "The project to store it in (default: the uploaded dataset's project, else your first project you may "
        "edit). An uploaded dataset must be in the same project."))


class SplitPublic(BaseModel):
    """A stored split: returned by ``POST /splits`` (201), ``GET /splits`` and ``GET /splits/{id}``;
    an experiment names it by ``id`` in its ``split_id``."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 1, "project_id": 1, "dataset": "iris", "strategy": "stratified",
         "fractions": {"train": 0.7, "val": 0.2, "test": 0.1}, "seed": 0,
         "sizes": {"train": 105, "val": 30, "test": 15},
         "class_counts": {"train": {"0": 35, "1": 35, "2": 35}, "val": {"0": 10, "1": 10, "2": 10},
                          "test": {"0": 5, "1": 5, "2": 5}},
         "created_at": "2025-03-14T09:15:42.306518Z"},
    ]})

    id: int = Field(description="The split's id, which an experiment's `split_id` takes.")
    project_id: int = Field(description="The project it belongs to (its experiments belong to it too).")
    dataset: int | str = Field(description="The dataset split: a built-in's name or an upload's numeric id.")
    strategy: SplitStrategy
    fractions: dict[str, float] = Field(description="The shares asked for, by part (`train`, `val`, `test`).")
    seed: int = Field(description="The seed of the shuffle.")
    sizes: dict[str, int] = Field(description="Rows in each part, by part (`train`, `val`, `test`).")
    class_counts: dict[str, dict[str, int]] | None = Field(
        None, description="Rows per class label in each part, by part then label (labels as in the dataset's "
                          "`class_counts`); null for a regression dataset.")
    created_at: datetime = Field(description="When the split was made (UTC).")
