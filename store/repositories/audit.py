"""The audit log: appended in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import AuditEvent, utcnow


def record(session: Session, *, actor: str, user_id: int | None, action: str, target: str,
           project_id: int | None = None, detail: dict[str, Any] | None = None) -> AuditEvent:
    event = AuditEvent(at=utcnow(), actor=actor, user_id=user_id, project_id=project_id, action=action,
                       target=target, detail=detail or {})
    session.add(event)
    session.flush()
    return event


def page(session: Session, *, project_ids: Collection[int] | None, limit: int, offset: int = 0) -> list[AuditEvent]:
    """Newest first; only events of ``project_ids`` (None: every event, for admins)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if project_ids is not None:
        query = query.where(AuditEvent.project_id.in_(list(project_ids)))
    return list(session.scalars(query))
