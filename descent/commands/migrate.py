"""``descent migrate``: upgrade the database to the newest schema (Alembic)."""

from __future__ import annotations

import argparse


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="default: DESCENT_DATABASE_URL, else the SQLite file in the data folder")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")


def run(args: argparse.Namespace) -> int:
    from core.settings import Settings
    from store.db import make_engine
    from store.migrate import current_revision, upgrade

    settings = Settings()
    url = args.database_url or settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(url, args.revision)
    engine = make_engine(url)
    try:
        print(f"database at migration {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0
