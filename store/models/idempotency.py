"""What a submission with an ``Idempotency-Key`` answered, so that its retry gets the same
answer instead of a second resource (``api.idempotency`` has the rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """One caller's key and the request it was first sent with (method, path and the SHA-256 of
    the body).  The row is written in the transaction that creates the resource: it is inserted
    first, claiming the key, and ``status_code`` and ``response_json`` are filled in before that
    transaction commits, so a committed row always holds the answer."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_json: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index(None, "created_at"),
    )
