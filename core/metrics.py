"""Which way a metric improves, and the JSON shapes in which metrics travel.

The store ranks "best" points with ``higher_is_better``; the api sends the answer with every
series, summary row and best point, so the dashboard and the CLI read it instead of restating
it.  The shapes are declared once, here: the api serves them (FastAPI builds their schema) and
``descent.client`` types its results with them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from core.statuses import Status

# "best" is the largest value for these (matched on the last path component, alone or as a
# ``_suffix``: ``val/accuracy``, ``val/top1_acc``, ``test/r2``), the smallest for every other metric
HIGHER_IS_BETTER = ("accuracy", "acc", "bacc", "r2", "f1", "precision", "recall", "auc")


# the longest metric name the store keeps (its column width) and the api accepts
MAX_NAME_LENGTH = 128


# diagnostics describe the optimisation, not the model's quality (``lr``, ``grad_norm``,
# ``update_ratio``, ``epoch_time``, ``state_bytes``): they have a latest value but no "best",
# and no run wins on them
DIAGNOSTIC = ("lr", "learning_rate", "momentum", "norm", "ratio", "time", "bytes")


def _leaf_matches(name: str, words: tuple[str, ...]) -> bool:
    leaf = name.rsplit("/", 1)[-1].lower()
    return any(leaf == word or leaf.endswith("_" + word) for word in words)


def higher_is_better(name: str) -> bool:
    return _leaf_matches(name, HIGHER_IS_BETTER)


def is_diagnostic(name: str) -> bool:
    """True for a metric about the training itself (matched as ``higher_is_better`` is, on the last
    path component alone or as a ``_suffix``); every other metric is a loss or a score."""
    return _leaf_matches(name, DIAGNOSTIC)


Direction = Annotated[bool, Field(description="true: the largest value is the best (accuracy, r2, ...); "
                                              "false: the smallest (losses)")]
Diagnostic = Annotated[bool, Field(description="true for a metric about the optimisation itself (lr, grad_norm, "
                                               "update_ratio, timings): it has a latest value but no best, and no "
                                               "run wins on it (`core.metrics.is_diagnostic`)")]


class SeriesPublic(TypedDict):
    """One metric of one experiment: its points in step order.  A series with more points than
    ``max_points`` is downsampled: its steps are cut into equal buckets and each bucket keeps its
    smallest and its largest value, so spikes stay visible."""

    steps: Annotated[list[int], Field(description="The points' steps, ascending.")]
    values: Annotated[list[float | None], Field(description="The value at each of `steps` (same length); "
                                                            "null where the value was not finite")]
    higher_is_better: Direction
    diagnostic: Diagnostic


class SummaryRow(TypedDict):
    """The best and the last point of one metric of one experiment, from every stored point (not
    only those of the downsampled series)."""

    experiment_id: Annotated[int, Field(description="The experiment the metric belongs to.")]
    name: Annotated[str, Field(description="The metric's name.")]
    count: Annotated[int, Field(description="How many points the metric has stored.")]
    best_value: Annotated[float | None, Field(
        description="Its best finite value (the largest or the smallest, by `higher_is_better`); null when "
                    "none of its values is finite.")]
    best_step: Annotated[int | None, Field(
        description="The step of the best value (the earliest on a tie); null when `best_value` is.")]
    final_value: Annotated[float | None, Field(description="The value at its last step; null when that value "
                                                           "was not finite.")]
    final_step: Annotated[int, Field(description="Its last (largest) step.")]
    time_to_best_s: Annotated[float | None, Field(
        description="seconds from the metric's first point to its best (by the points' wall times); null "
                    "when `best_value` is")]
    higher_is_better: Direction
    diagnostic: Diagnostic


class BestPublic(TypedDict):
    """One experiment's best value of one metric (from its stored summary)."""

    name: Annotated[str, Field(description="The metric's name: the first of those asked for that the run "
                                           "has a finite value of.")]
    value: Annotated[float, Field(description="Its best value (the largest or the smallest, by "
                                              "`higher_is_better`).")]
    step: Annotated[int, Field(description="The step of that value (the earliest on a tie).")]
    higher_is_better: Direction


class CompareExperiment(TypedDict):
    """One experiment of a comparison: what it is, where it is, and its series."""

    id: Annotated[int, Field(description="The experiment's id.")]
    name: Annotated[str, Field(description="The experiment's name.")]
    status: Status
    series: Annotated[dict[str, SeriesPublic], Field(
        description="Its metrics by name (those asked for with `?names=`, else all), each downsampled to at "
                    "most `max_points` points.")]


_COMPARE_EXAMPLE = {
    "experiments": [
        {"id": 21, "name": "iris-adam", "status": "succeeded", "series": {"val/accuracy": {
            "steps": [7, 14, 21, 28, 35],
            "values": [0.6333333333333333, 0.8, 0.9, 0.9666666666666667, 0.9333333333333333],
            "higher_is_better": True, "diagnostic": False}}},
        {"id": 22, "name": "iris-sgd", "status": "running", "series": {"val/accuracy": {
            "steps": [7, 14, 21], "values": [0.3333333333333333, 0.5666666666666667, 0.7],
            "higher_is_better": True, "diagnostic": False}}},
    ],
    "summary": [
        {"experiment_id": 21, "name": "val/accuracy", "count": 5, "best_value": 0.9666666666666667,
         "best_step": 28, "final_value": 0.9333333333333333, "final_step": 35, "time_to_best_s": 0.41,
         "higher_is_better": True, "diagnostic": False},
        {"experiment_id": 22, "name": "val/accuracy", "count": 3, "best_value": 0.7, "best_step": 21,
         "final_value": 0.7, "final_step": 21, "time_to_best_s": 0.27, "higher_is_better": True, "diagnostic": False},
    ],
}


@with_config(ConfigDict(json_schema_extra={"examples": [_COMPARE_EXAMPLE]}))
class ComparePublic(TypedDict):
    """The answer of ``GET /compare``: every experiment's series and a summary table (best value
    and its step, final value, time to best) in one request."""

    experiments: Annotated[list[CompareExperiment], Field(description="The experiments, in the order of "
                                                                      "`?ids=`.")]
    summary: Annotated[list[SummaryRow], Field(
        description="One row per metric of each experiment that has points (only those of `?names=` when "
                    "given), by experiment id, then metric name.")]
