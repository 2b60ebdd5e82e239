"""Idempotency keys: claimed by inserting the row (the unique ``(user_id, key)`` decides who
claimed it first), answered by filling the row in, found again for a replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import IdempotencyKey

# expired rows deleted per request at most, so that cleaning up after a quiet day stays cheap
DELETE_BATCH = 100


def delete_expired(session: Session, created_before: datetime) -> None:
    """Delete up to ``DELETE_BATCH`` rows (anyone's) created before ``created_before``, skipping
    rows another transaction holds, so no request waits for another's cleanup."""
    stale = (select(IdempotencyKey.id).where(IdempotencyKey.created_at < created_before)
             .limit(DELETE_BATCH).with_for_update(skip_locked=True))
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(stale.scalar_subquery())))


def claim(session: Session, *, user_id: int, key: str, method: str, path: str, request_sha256: str,
          now: datetime, created_before: datetime) -> int | None:
    """Insert the row for ``(user_id, key)`` (its answer still empty) and return its id, or None
    when a live row for them exists (one created before ``created_before`` is replaced).  On
    PostgreSQL the insert waits for a concurrent transaction holding the same key to end: after
    it commits this returns None, after it rolls back the key is claimed here."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key,
                                                 IdempotencyKey.created_at < created_before))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(IdempotencyKey)
        .values(user_id=user_id, key=key, method=method, path=path, request_sha256=request_sha256, created_at=now)
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.user_id, IdempotencyKey.key])
        .returning(IdempotencyKey.id)
    ).scalar_one_or_none()
    return inserted


def find(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one_or_none()


def answer(session: Session, key_id: int, status_code: int, response_json: Any) -> None:
    """Store what the claimed request answered (in the transaction that claimed it)."""
    session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id)
                    .values(status_code=status_code, response_json=response_json))
