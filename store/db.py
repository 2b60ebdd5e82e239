"""Engines and sessions for both databases: PostgreSQL through psycopg 3 in production, an
SQLite file as the embedded default.

SQLite gets WAL (readers never block the writer), foreign keys (off by default there) and a
busy timeout (a second writer waits instead of failing).  Its driver's own transaction
handling is switched off so SQLAlchemy begins transactions itself, which makes savepoints
work, and it begins them ``IMMEDIATE``: a deferred transaction that has read and then wants to
write cannot wait for the lock once another writer has committed after its read (SQLite gives
up at once with "database is locked", the busy timeout notwithstanding), so the api answered
500 while the worker wrote metrics.  Taking the write lock at ``BEGIN`` makes a second
transaction wait its turn instead; each is one request or one batch, so the waits are short.
A transaction that only reads (a GET request, a stream poll) says so with :func:`read_only`
and begins deferred: in WAL mode it then never waits for a writer, nor a writer for it.

PostgreSQL connections give up after ``POSTGRES_CONNECT_TIMEOUT_S`` (a server that is down
refuses at once; one that is unreachable or not answering would otherwise be waited on for the
operating system's TCP timeout, minutes).  :func:`unreachable` tells an error that says the
database cannot be reached (the api answers 503, the worker retries its claim) from one that
says a statement is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY = "descent_read_only"  # execution option: this transaction will not write
POSTGRES_CONNECT_TIMEOUT_S = 3  # libpq's connect_timeout: whole seconds
# SQLSTATEs of a server that is shutting down, starting up or crashed (class 57P), or of a lost
# connection (class 08): the database, not the statement, is the problem
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")


def is_sqlite(url_or_engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else url_or_engine
    return str(url).startswith("sqlite")


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``; ``postgresql://`` is read as psycopg 3 (not psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
        return create_engine(url, **kwargs)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process in WAL mode
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (down, restarting, the connection
    lost or refused), as opposed to a statement it refused."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    orig = exc.orig
    if type(orig).__module__.startswith("psycopg"):
        state = getattr(orig, "sqlstate", None)
        return state is None or state.startswith(_UNREACHABLE_STATES)  # no SQLSTATE: no server answered
    return "unable to open database file" in str(orig)  # SQLite: the file or its folder is gone


def read_only(session: Session) -> Session:
    """Mark ``session``'s transaction as one that only reads; call before its first query.
    On SQLite it then begins deferred (see the module docstring); elsewhere nothing changes."""
    session.connection(execution_options={READ_ONLY: True})
    return session


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: objects stay readable after the commit that ends a request or a step
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commits when the block ends normally, rolls back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
