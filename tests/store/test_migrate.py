"""The real migrations on both databases: they reach head, match the models, and go back down."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import make_engine
from store.migrate import current_revision_is_head, downgrade_engine, upgrade, upgrade_engine
from store.models import Base
from tests.services import scratch_database


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_migrations_reach_head_match_models_and_downgrade(dialect, tmp_path):
    with ExitStack() as stack:
        if dialect == "postgresql":
            url = stack.enter_context(scratch_database(migrate=False))
        else:
            url = f"sqlite:///{tmp_path / 'm.db'}"
        engine = make_engine(url)
        stack.callback(engine.dispose)
        assert not current_revision_is_head(engine)
        upgrade(url)
        assert current_revision_is_head(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        downgrade_engine(engine)
        assert not current_revision_is_head(engine)
        upgrade_engine(engine)
        assert current_revision_is_head(engine)
