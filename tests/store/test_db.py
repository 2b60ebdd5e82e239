from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from store.db import make_engine, session_scope
from store.models import Split
from tests.identity import default_project_id


def test_sqlite_engine_turns_on_wal_foreign_keys_and_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    engine.dispose()


def test_session_scope_commits_or_rolls_back(session_factory, connection):
    with session_factory() as s:
        project_id = default_project_id(s)

    def count() -> int:
        return connection.execute(text("SELECT count(*) FROM splits WHERE builtin = 'wine'")).scalar()

    def split() -> Split:
        return Split(project_id=project_id, builtin="wine", strategy="random", fractions={}, seed=0, train_indices=[0],
                     val_indices=[], test_indices=[], summary={})

    with session_scope(session_factory) as s:
        s.add(split())
    assert count() == 1
    with pytest.raises(RuntimeError), session_scope(session_factory) as s:
        s.add(split())
        s.flush()
        raise RuntimeError("boom")
    assert count() == 1


def test_foreign_keys_are_enforced(session):
    from sqlalchemy.exc import IntegrityError

    from store.repositories import experiments

    with pytest.raises(IntegrityError):
        experiments.create(session, name="orphan", spec={}, solver="sgd", tags=[], split_id=999_999, queue="cpu")


def test_sqlite_transaction_that_reads_then_writes_waits_for_a_concurrent_writer(tmp_path):
    """A reads, B writes and commits, then A writes.  With deferred transactions SQLite fails
    A's write at once ("database is locked": its snapshot is stale and the busy timeout does
    not apply); with the write lock taken at BEGIN, B waits until A commits and both land."""
    import threading

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (who TEXT)")
    a_has_read, errors = threading.Event(), []

    def writer_a():
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
                a_has_read.set()
                time.sleep(0.3)  # B tries to write meanwhile
                conn.exec_driver_sql("INSERT INTO t VALUES ('a')")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            a_has_read.set()

    def writer_b():
        a_has_read.wait(5)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES ('b')")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.exec_driver_sql("SELECT who FROM t")) == ["a", "b"]
    engine.dispose()


def test_sqlite_read_only_transaction_does_not_wait_for_a_writer(tmp_path):
    """While a writer holds the write lock, a transaction marked read-only still reads (the
    committed state: WAL), instead of queueing behind the writer as every other one does."""
    import threading

    from store.db import make_sessionmaker, read_only

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (who TEXT)")
    factory = make_sessionmaker(engine)
    holding, read_done, seen = threading.Event(), threading.Event(), []

    def writer():
        with session_scope(factory) as s:
            s.execute(text("INSERT INTO t VALUES ('w')"))
            holding.set()
            seen.append(("reader finished while the writer held the lock", read_done.wait(5)))

    def reader():
        holding.wait(5)
        with session_scope(factory) as s:
            read_only(s)
            seen.append(("rows", s.execute(text("SELECT count(*) FROM t")).scalar()))
        read_done.set()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert dict(seen) == {"reader finished while the writer held the lock": True, "rows": 0}
    engine.dispose()
