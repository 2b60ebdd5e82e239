from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from store.models import Experiment, Split
from store.repositories import experiments
from tests.identity import default_project_id


def make_experiment(session, name: str = "e", tags=(), solver: str = "sgd", queue: str = "cpu") -> int:
    split = Split(project_id=default_project_id(session), builtin="iris", strategy="random", fractions={"train": 1.0}, seed=0,
                  train_indices=list(range(150)), val_indices=[], test_indices=[], summary={})
    session.add(split)
    session.flush()
    return experiments.create(session, name=name, spec={}, solver=solver, tags=list(tags), split_id=split.id,
                              queue=queue).id


def age(session, experiment_id: int, **fields_seconds_ago: float) -> None:
    """Move timestamps into the past (``heartbeat_at=120`` → two minutes ago)."""
    from store.models import utcnow

    now = utcnow()
    values = {k: now - timedelta(seconds=s) for k, s in fields_seconds_ago.items()}
    session.execute(update(Experiment).where(Experiment.id == experiment_id).values(**values))
