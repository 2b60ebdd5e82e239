"""The shapes of what the api answers, as ``TypedDict``s for the client's return types.

The client imports nothing of the server, so these are written out here; a test holds each to
the server's OpenAPI schema (same keys, same required keys), so they cannot drift apart.  At
run time they are plain dicts: ``run["status"]`` as before, with a type checker's help.  (No
``from __future__ import annotations`` here: TypedDict reads ``NotRequired`` only from
evaluated annotations.)"""

from typing import Any, NotRequired, TypedDict


class Experiment(TypedDict):
    id: int
    name: str
    status: str  # queued | running | succeeded | failed | cancelled
    spec: dict[str, Any]  # the resolved experiment definition the worker trains
    solver: str
    tags: list[str]
    split_id: int
    queue: str  # gpu | cpu
    progress: float  # 0..1
    epoch: int
    step: int
    created_at: str
    enqueued_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    worker_host: str | None
    device: str | None
    error: str | None  # what went wrong and what to try, for a failed run
    attempt: int
    cancel_requested: bool


class Best(TypedDict):
    name: str
    value: float
    step: int
    higher_is_better: bool  # the api's direction for the metric: the CLI keeps no rule of its own


class ExperimentListItem(Experiment):
    best: NotRequired[Best | None]  # with ``experiments(best=...)``, else None


class ExperimentPage(TypedDict):
    items: list[ExperimentListItem]
    total: int
    limit: int
    offset: int


class Split(TypedDict):
    id: int
    dataset: int | str  # an upload's id or a built-in's name
    strategy: str
    fractions: dict[str, float]
    seed: int
    sizes: dict[str, int]
    class_counts: NotRequired[dict[str, dict[str, int]] | None]
    created_at: str


class Dataset(TypedDict):
    id: int | str
    name: str
    source: str
    description: NotRequired[str]
    n_samples: int
    feature_shape: list[int]
    task: str  # classification | regression
    n_classes: NotRequired[int | None]
    class_counts: NotRequired[dict[str, int] | None]
    filename: NotRequired[str | None]
    sha256: NotRequired[str | None]
    size_bytes: NotRequired[int | None]
    created_at: NotRequired[str | None]


class CatalogItem(TypedDict):
    name: str
    class_path: str
    family: str
    summary: str
    reference: str
    hyperparameters: dict[str, Any]  # JSON Schema of the constructor's arguments


class SolverItem(CatalogItem):
    experiment_fields: dict[str, Any]  # the same under an experiment body's names (base_lr)


class SeriesJSON(TypedDict):
    steps: list[int]
    values: list[float | None]
    higher_is_better: bool


class CompareExperiment(TypedDict):
    id: int
    name: str
    status: str
    series: dict[str, SeriesJSON]


class SummaryRow(TypedDict):
    experiment_id: int
    name: str
    count: int
    best_value: float | None
    best_step: int | None
    final_value: float | None
    final_step: int
    time_to_best_s: float | None
    higher_is_better: bool


class Comparison(TypedDict):
    experiments: list[CompareExperiment]
    summary: list[SummaryRow]


class Health(TypedDict):
    status: str
    database: bool
    broker: bool
    database_error: NotRequired[str | None]
    broker_error: NotRequired[str | None]


# the api's OpenAPI component each shape mirrors
OPENAPI_COMPONENTS = {
    Experiment: "ExperimentPublic", Best: "BestPublic", ExperimentListItem: "ExperimentListItem",
    ExperimentPage: "ExperimentPage", Split: "SplitPublic",
    Dataset: "DatasetPublic", CatalogItem: "CatalogItemPublic", SolverItem: "SolverItemPublic",
    SeriesJSON: "SeriesPublic", CompareExperiment: "CompareExperiment", SummaryRow: "SummaryRow",
    Comparison: "ComparePublic", Health: "HealthPublic",
}
