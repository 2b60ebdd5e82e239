"""Users, tokens and memberships for tests, made straight in the database.

Argon2 costs ~0.2 s a hash, so every test user shares one password hashed once per session
(``PASSWORD``); tokens are real (``store.repositories.tokens.issue``)."""

from __future__ import annotations

from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from core.auth import hash_password
from store.models import DEFAULT_PROJECT, Membership, Project, User, utcnow
from store.repositories import projects as projects_repo
from store.repositories import tokens as tokens_repo

PASSWORD = "correct horse battery"
TEST_HOSTS = ["testserver", "127.0.0.1", "localhost"]


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def make_user(session: Session, username: str, *, is_admin: bool = False, roles: dict[int, str] | None = None
              ) -> User:
    user = User(username=username, password_hash=_password_hash(), is_admin=is_admin, disabled=False,
                created_at=utcnow())
    session.add(user)
    session.flush()
    for project_id, role in (roles or {}).items():
        session.add(Membership(project_id=project_id, user_id=user.id, role=role, created_at=utcnow()))
    session.flush()
    return user


def token_for(session: Session, user: User | None, *, kind: str = "user") -> str:
    return tokens_repo.issue(session, name="test", user=user, kind=kind).secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def default_project_id(session: Session) -> int:
    project = projects_repo.by_name(session, DEFAULT_PROJECT)
    assert project is not None, "the migration creates the default project"
    return project.id


def admin_token(factory: sessionmaker[Session], username: str = "admin") -> str:
    """An admin (owner of ``default``) and a token of theirs, committed."""
    with factory() as session:
        user = make_user(session, username, is_admin=True, roles={default_project_id(session): "owner"})
        token = token_for(session, user)
        session.commit()
    return token


def new_project(factory: sessionmaker[Session], name: str) -> int:
    with factory() as session:
        project = Project(name=name, description="", created_at=utcnow())
        session.add(project)
        session.commit()
        return project.id
