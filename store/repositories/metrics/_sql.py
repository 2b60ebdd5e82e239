"""Dialect helpers shared by the metrics writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlalchemy.orm import Session


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def is_postgresql(session: Session) -> bool:
    return dialect(session) == "postgresql"


def insert(session: Session, table):
    """The dialect's ``INSERT`` (the one with ``on_conflict_do_*``)."""
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def better(new_value, new_step, old_value, old_step, *, higher: bool):
    """SQL: the new (value, step) beats the stored one (NULL never wins; ties go to the earlier step)."""
    beats = new_value > old_value if higher else new_value < old_value
    return and_(
        new_value.is_not(None),
        (old_value.is_(None)) | beats | ((new_value == old_value) & (new_step < old_step)),
    )


def execute_arrays(session: Session, sql: str, params: dict[str, Any]):
    """Run PostgreSQL ``sql`` whose ``%(name)b`` placeholders take ``params`` as bound
    parameters in binary: psycopg adapts each Python list to a typed array (None is NULL)
    without formatting a text literal per element, and the server range-checks every element
    on the ``CAST``.  Flushes pending ORM changes first, as ``Session.execute`` would."""
    if session.autoflush:
        session.flush()
    return session.connection().exec_driver_sql(sql, params)


def codes(names: list[str]) -> tuple[list[str], list[int]]:
    """The distinct names and, per row, the 1-based position of its name among them: a batch
    sends each name once (``names[code]`` in SQL), not once per row."""
    distinct = sorted(set(names))
    code_of = {n: i + 1 for i, n in enumerate(distinct)}
    return distinct, [code_of[n] for n in names]


def without_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT compiler off for the rest of the transaction.  A series read costs
    one primary-key lookup per series, but the planner, guessing thousands of rows a series,
    prices it past ``jit_above_cost`` and spends ~150 ms compiling a query that runs in 50."""
    session.connection().exec_driver_sql("SET LOCAL jit = off")
