"""A user and a token in a benchmark's scratch database: the api answers signed-in requests only."""

from __future__ import annotations


def user_token(factory, username: str = "bench", *, is_admin: bool = True, role: str | None = None) -> tuple[str, int]:
    """(token, user id) of a new user; ``role`` in the default project, if given."""
    from core.auth import hash_password
    from store.db import session_scope
    from store.models import DEFAULT_PROJECT, Membership, User, utcnow
    from store.repositories import projects, tokens

    with session_scope(factory) as s:
        user = User(username=username, password_hash=hash_password("bench-password"), is_admin=is_admin,
                    disabled=False, created_at=utcnow())
        s.add(user)
        s.flush()
        if role is not None:
            s.add(Membership(project_id=projects.by_name(s, DEFAULT_PROJECT).id, user_id=user.id, role=role,
                             created_at=utcnow()))
        return tokens.issue(s, name="bench", user=user).secret, user.id


def default_project_id(factory) -> int:
    from store.models import DEFAULT_PROJECT
    from store.repositories import projects

    with factory() as s:
        return projects.by_name(s, DEFAULT_PROJECT).id
