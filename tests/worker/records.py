"""Rows the worker tests need, made through the repositories: a split with the frozen indices of
``tests.worker.splits``, queued experiments, and a sessionmaker for a database URL (the scratch
database itself comes from ``tests.services.scratch_database``)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from store.db import make_engine, make_sessionmaker, session_scope
from store.models import Metric, Split
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


def metric_steps(sessions, experiment_id: int) -> list[tuple[str, int]]:
    """Every stored (metric name, step) of the experiment, duplicates included."""
    with session_scope(sessions) as session:
        rows = session.execute(select(Metric.name, Metric.step).where(Metric.experiment_id == experiment_id)).all()
    return [tuple(r) for r in rows]


def assert_every_step_once(sessions, experiment_id: int, steps_per_epoch: int, epochs: int) -> None:
    """Each training step's loss and each epoch's validation loss stored, each exactly once."""
    rows = metric_steps(sessions, experiment_id)
    assert max(Counter(rows).values()) == 1
    assert sorted(s for n, s in rows if n == "train/loss") == list(range(1, epochs * steps_per_epoch + 1))
    assert sorted(s for n, s in rows if n == "val/loss") == [steps_per_epoch * e for e in range(1, epochs + 1)]
