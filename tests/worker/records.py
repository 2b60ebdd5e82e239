"""Rows the worker tests need, made through the repositories: a split with the frozen indices of
``tests.worker.splits``, queued experiments, and a sessionmaker for a database URL (the scratch
database itself comes from ``tests.services.scratch_database``)."""

from __future__ import annotations

from store.db import make_engine, make_sessionmaker, session_scope
from store.models import Split
from store.repositories import experiments, splits
from tests.identity import default_project_id
from tests.worker.splits import builtin_indices


def add_builtin_split(sessions, dataset: str) -> int:
    """A split row whose frozen indices are the ones ``tests.worker.splits.builtin_split`` uses."""
    parts = dict(zip(("train", "val", "test"), (idx.tolist() for idx in builtin_indices(dataset))))
    with session_scope(sessions) as session:
        split = splits.add(session, Split(
            project_id=default_project_id(session), builtin=dataset, strategy="stratified", fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0,
            train_indices=parts["train"], val_indices=parts["val"], test_indices=parts["test"],
            summary={p: len(v) for p, v in parts.items()},
        ))
        return split.id


def add_experiment(sessions, spec, queue: str = "cpu", stored: dict | None = None) -> int:
    """A queued experiment of ``spec`` (``stored``: the JSON to store instead, for broken specs)."""
    with session_scope(sessions) as session:
        experiment = experiments.create(
            session, name=spec.name, spec=stored or spec.model_dump(mode="json"), solver=spec.solver.name, tags=list(spec.tags),
            split_id=spec.split_id, queue=queue,
        )
        return experiment.id


def sessions_for(url: str):
    return make_sessionmaker(make_engine(url))
