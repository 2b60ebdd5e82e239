"""Which way a metric improves, and the JSON shapes in which metrics travel.

The store ranks "best" points with ``higher_is_better``; the api sends the answer with every
series, summary row and best point, so the dashboard and the CLI read it instead of restating
it.  The shapes are declared once, here: the api serves them (FastAPI builds their schema) and
``descent.client`` types its results with them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

# "best" is the largest value for these (matched on the last path component, alone or as a
# ``_suffix``: ``val/accuracy``, ``val/top1_acc``, ``test/r2``), the smallest for every other metric
HIGHER_IS_BETTER = ("accuracy", "acc", "bacc", "r2", "f1", "precision", "recall", "auc")


# the longest metric name the store keeps (its column width) and the api accepts
MAX_NAME_LENGTH = 128


def higher_is_better(name: str) -> bool:
    leaf = name.rsplit("/", 1)[-1].lower()
    return any(leaf == word or leaf.endswith("_" + word) for word in HIGHER_IS_BETTER)


Direction = Annotated[bool, Field(description="true: the largest value is the best (accuracy, r2, ...); "
                                              "false: the smallest (losses)")]


class SeriesPublic(TypedDict):
    """One metric of one experiment: its points in step order (downsampled when long)."""

    steps: list[int]
    values: Annotated[list[float | None], Field(description="null where the value was not finite")]
    higher_is_better: Direction


class SummaryRow(TypedDict):
    """The best and the last point of one metric of one experiment."""

    experiment_id: int
    name: str
    count: int
    best_value: float | None
    best_step: int | None
    final_value: float | None
    final_step: int
    time_to_best_s: Annotated[float | None, Field(description="seconds from the metric's first point to its best")]
    higher_is_better: Direction


class BestPublic(TypedDict):
    """One experiment's best value of one metric (from its stored summary)."""

    name: str
    value: float
    step: int
    higher_is_better: Direction


class CompareExperiment(TypedDict):
    id: int
    name: str
    status: str
    series: dict[str, SeriesPublic]


class ComparePublic(TypedDict):
    experiments: list[CompareExperiment]
    summary: list[SummaryRow]
