"""Request dependencies: one transaction per request (committed when the endpoint returns,
rolled back when it raises) and hooks that run only after that commit succeeded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.settings import Settings
from store.db import read_only

log = logging.getLogger(__name__)
AFTER_COMMIT = "descent.after_commit"
Enqueuer = Callable[[int, str], None]
# sends an optimizer-lab job (task name, row id) after commit (``core.queue.send_lab_job``)
LabSender = Callable[[str, int], None]


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the request's transaction has committed (never if it rolls back)."""
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def _session(request: Request) -> Iterator[Session]:
    session = request.app.state.session_factory()
    if request.method in ("GET", "HEAD"):  # these only read: on SQLite they never wait for a writer
        read_only(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        session.info.pop(AFTER_COMMIT, None)
        raise
    finally:
        hooks = session.info.pop(AFTER_COMMIT, [])
        session.close()
    for hook in hooks:
        try:
            hook()
        except Exception:  # the record is safe; the reconciler re-sends what did not go out
            log.exception("after-commit hook failed")


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


def _lab_sender(request: Request) -> LabSender:
    return request.app.state.send_lab


# scope="function": commit before the response is sent, so a 201 means the record is stored
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
EnqueuerDep = Annotated[Enqueuer, Depends(_enqueuer)]
LabSenderDep = Annotated[LabSender, Depends(_lab_sender)]
