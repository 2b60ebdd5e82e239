"""Users.  The first admin created becomes the owner of the ``default`` project (which holds
whatever existed before projects did), so an upgraded instance has an owner for its old runs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import hash_password
from store.models import DEFAULT_PROJECT, Membership, Project, User, utcnow
from store.repositories import valid_id


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id) if valid_id(user_id) else None


def by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_all(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create(session: Session, username: str, password: str, *, is_admin: bool = False) -> User:
    """A new user (``username`` and ``password`` already checked by ``core.auth``)."""
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin, disabled=False,
                created_at=utcnow())
    session.add(user)
    session.flush()
    if is_admin:
        _adopt_default_project(session, user)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    session.flush()


def set_disabled(session: Session, user: User, disabled: bool) -> None:
    user.disabled = disabled
    session.flush()


def _adopt_default_project(session: Session, user: User) -> None:
    project = session.scalar(select(Project).where(Project.name == DEFAULT_PROJECT))
    if project is None:
        return
    has_owner = session.scalar(select(Membership).where(Membership.project_id == project.id,
                                                        Membership.role == "owner"))
    if has_owner is None:
        session.add(Membership(project_id=project.id, user_id=user.id, role="owner", created_at=utcnow()))
        session.flush()
