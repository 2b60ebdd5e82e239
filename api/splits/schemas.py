from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.splits import SplitStrategy


class Fractions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: float = Field(0.7, gt=0, le=1, allow_inf_nan=False)
    val: float = Field(0.2, ge=0, lt=1, allow_inf_nan=False)
    test: float = Field(0.1, ge=0, lt=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Fractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class SplitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: int | str = Field(description="a built-in dataset's name or an uploaded dataset's id")
    strategy: SplitStrategy = "random"
    fractions: Fractions = Field(default_factory=Fractions)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class SplitPublic(BaseModel):
    id: int
    dataset: int | str
    strategy: SplitStrategy
    fractions: dict[str, float]
    seed: int
    sizes: dict[str, int]
    class_counts: dict[str, dict[str, int]] | None = None
    created_at: datetime
