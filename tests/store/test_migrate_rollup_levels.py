"""Migration 0011 builds the rollup levels added then (64, 1024, 16384, 65536 steps) for points
stored before it: the blocks it derives from the finer levels equal the ones ingest writes."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
from sqlalchemy import delete, select

from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade_engine
from store.models import MetricRollup
from store.repositories import metrics as repo
from tests.services import scratch_database
from tests.store.helpers import make_experiment

NEW_LEVELS = (64, 1024, 16384, 65536)


def _rollups(session, widths):
    r = MetricRollup
    rows = session.execute(
        select(r.experiment_id, r.name, r.width, r.block, r.count, r.min_step, r.min_value, r.max_step, r.max_value)
        .where(r.width.in_(widths)).order_by(r.experiment_id, r.name, r.width, r.block)
    ).all()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_new_levels_are_built_from_the_finer_ones_as_ingest_would(dialect, tmp_path):
    rng = np.random.default_rng(11)
    # dense, then sparse across three 65536-step blocks, then dense again
    steps = np.unique(np.r_[np.arange(3_000), np.arange(0, 140_000, 97), np.arange(200_000, 201_000)])
    values = np.round(rng.normal(size=len(steps)), 1)  # one decimal: many ties, earliest step must win
    values[1000:1300] = np.nan  # whole 16- and 64-step blocks of missing values
    with ExitStack() as stack:
        url = (stack.enter_context(scratch_database(migrate=False)) if dialect == "postgresql"
               else f"sqlite:///{tmp_path / 'm.db'}")
        engine = make_engine(url)
        stack.callback(engine.dispose)
        upgrade_engine(engine, "0010")
        factory = make_sessionmaker(engine)
        with factory() as session:
            eids = [make_experiment(session, name=f"e{i}") for i in range(2)]
            for eid in eids:
                for chunk in np.array_split(rng.permutation(len(steps)), 3):  # merged blocks, out of order
                    chunk = np.sort(chunk)
                    repo.add_points(session, eid, [(name, int(s), None, float(v), 1.0)
                                                   for name in ("loss", "lr")
                                                   for s, v in zip(steps[chunk], values[chunk])])
            written_by_ingest = _rollups(session, NEW_LEVELS)
            session.execute(delete(MetricRollup).where(MetricRollup.width.in_(NEW_LEVELS)))  # as before 0011
            session.commit()
            assert written_by_ingest and not _rollups(session, NEW_LEVELS)
        upgrade_engine(engine)
        with factory() as session:
            assert _rollups(session, NEW_LEVELS) == written_by_ingest
