"""The shapes of what the api answers, as ``TypedDict``s for the client's return types.

The client imports nothing of the server.  The metric shapes (series, summary rows, best
points, comparisons) are declared once in the shared ``core.metrics``, which the api serves;
the others are written out here, and a test holds each to the server's OpenAPI schema (same
keys, same required keys), so they cannot drift apart.  At
run time they are plain dicts: ``run["status"]`` as before, with a type checker's help.  (No
``from __future__ import annotations`` here: TypedDict reads ``NotRequired`` only from
evaluated annotations.)"""

from typing import Any, NotRequired, TypedDict

from core.metrics import BestPublic as Best
from core.metrics import CompareExperiment, SummaryRow
from core.metrics import ComparePublic as Comparison
from core.metrics import SeriesPublic as SeriesJSON


class Experiment(TypedDict):
    id: int
    name: str
    status: str  # queued | running | succeeded | failed | cancelled
    spec: dict[str, Any]  # the resolved experiment definition the worker trains
    solver: str
    tags: list[str]
    split_id: int
    project_id: int  # its split's project
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
    warning: str | None  # a problem the run goes on despite (a checkpoint the disk refused)
    attempt: int
    crashes: int  # times its training process died without an outcome (killed for memory, crashed)
    cancel_requested: bool
    stop_reason: NotRequired[str | None]  # why early stopping ended a succeeded run
    study_id: NotRequired[int | None]  # the study that made it as a trial; None outside a study
    trial_number: NotRequired[int | None]  # its number among that study's trials


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
    project_id: int  # its experiments belong to it too
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
    project_id: NotRequired[int | None]  # an upload's project; None for a built-in, which everyone sees


class CatalogItem(TypedDict):
    name: str
    class_path: str
    family: str
    summary: str
    reference: str
    hyperparameters: dict[str, Any]  # JSON Schema of the constructor's arguments


class SolverItem(CatalogItem):
    experiment_fields: dict[str, Any]  # the same under an experiment body's names (base_lr)










class Health(TypedDict):
    status: str  # ok | degraded
    database: NotRequired[bool]  # signed-in callers only
    broker: NotRequired[bool]
    data_dir_writable: NotRequired[bool | None]
    data_dir_free_bytes: NotRequired[int | None]
    database_error: NotRequired[str | None]  # admins only
    broker_error: NotRequired[str | None]
    data_dir_error: NotRequired[str | None]


class QueueDepth(TypedDict):
    queued: int  # every project's
    running: int
    workers: int  # alive workers serving the queue
    idle_workers: int
    oldest_queued_s: float | None


class Waiting(TypedDict):
    id: int
    name: str
    project_id: int
    queue: str  # gpu | cpu
    position: int  # 1: next to start, among every project's queued runs of its queue
    waited_s: float
    cause: str  # unsent | no_worker | busy | starting
    reason: str  # the cause in a sentence, with what to do


class Queue(TypedDict):
    queues: dict[str, QueueDepth]  # by queue name
    waiting: list[Waiting]  # the caller's projects' queued runs, by queue then position

class StudyTrial(TypedDict):
    number: int  # 0, 1, ... in the order the study made them
    experiment_id: int
    status: str  # the experiment's: queued | running | succeeded | failed | cancelled | pruned
    params: dict[str, Any]  # dotted spec path -> the value this trial tried
    label: str  # the params in a few words: "adam lr=0.001"
    value: float | None  # the objective (its best or final epoch's), None before its first epoch
    epoch: int


class Study(TypedDict):
    id: int
    project_id: int
    name: str
    kind: str  # search | tournament
    status: str  # running | done | stopped
    spec: dict[str, Any]  # the study spec as stored (core.studies.space.StudySpec), defaults filled
    split_id: int
    created_at: str
    finished_at: str | None
    note: str | None  # why it stopped, or what keeps it waiting
    counts: dict[str, int]  # its trials by experiment status
    max_trials: int
    trials: list[StudyTrial]  # empty in list pages
    best: StudyTrial | None
    importance: dict[str, float]  # parameter -> its share of the objective's variation; empty until known


class StudyPage(TypedDict):
    items: list[Study]
    total: int
    limit: int
    offset: int


# the api's OpenAPI component each shape mirrors
OPENAPI_COMPONENTS = {
    Experiment: "ExperimentPublic", ExperimentListItem: "ExperimentListItem", ExperimentPage: "ExperimentPage",
    Split: "SplitPublic", Dataset: "DatasetPublic", CatalogItem: "CatalogItemPublic",
    SolverItem: "SolverItemPublic", Health: "HealthPublic", QueueDepth: "QueueDepthPublic", Waiting: "WaitingPublic",
    Queue: "QueuePublic", Study: "StudyPublic", StudyTrial: "TrialPublic", StudyPage: "StudyPage",
}

__all__ = [
    "Best", "CatalogItem", "CompareExperiment", "Comparison", "Dataset", "Experiment", "ExperimentListItem",
    "ExperimentPage", "Health", "Queue", "QueueDepth", "SeriesJSON", "SolverItem", "Split", "Study", "StudyPage",
    "StudyTrial", "SummaryRow", "Waiting",
]
