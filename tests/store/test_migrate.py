"""The real migrations on both databases: they reach head, match the models, and go back down."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import make_engine
from store.migrate import current_revision_is_head, downgrade_engine, upgrade, upgrade_engine
from store.models import Base
from tests.db_fixtures import scratch_postgres_url


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_migrations_reach_head_match_models_and_downgrade(dialect, tmp_path):
    if dialect == "postgresql":
        url, drop = scratch_postgres_url()
    else:
        url, drop = f"sqlite:///{tmp_path / 'm.db'}", lambda: None
    engine = make_engine(url)
    try:
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
    finally:
        engine.dispose()
        drop()
