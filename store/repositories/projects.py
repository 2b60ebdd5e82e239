"""Projects and their members."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Membership, Project, User, utcnow
from store.repositories import valid_id


def get(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id) if valid_id(project_id) else None


def by_name(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def list_all(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def create(session: Session, name: str, description: str = "", *, owner: User | None = None) -> Project:
    project = Project(name=name, description=description, created_at=utcnow())
    session.add(project)
    session.flush()
    if owner is not None:
        set_role(session, project, owner, "owner")
    return project


def roles_of(session: Session, user_id: int) -> dict[int, str]:
    """Project id → the user's role, for every project the user is a member of."""
    rows = session.execute(select(Membership.project_id, Membership.role).where(Membership.user_id == user_id))
    return {project_id: role for project_id, role in rows}


def members(session: Session, project: Project) -> list[tuple[User, Membership]]:
    rows = session.execute(select(User, Membership).join(Membership, Membership.user_id == User.id)
                           .where(Membership.project_id == project.id).order_by(User.username))
    return [(user, membership) for user, membership in rows]


def set_role(session: Session, project: Project, user: User, role: str) -> Membership:
    membership = session.get(Membership, (project.id, user.id))
    if membership is None:
        membership = Membership(project_id=project.id, user_id=user.id, role=role, created_at=utcnow())
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def remove_member(session: Session, project: Project, user: User) -> bool:
    membership = session.get(Membership, (project.id, user.id))
    if membership is None:
        return False
    session.delete(membership)
    session.flush()
    return True


def owner_count(session: Session, project: Project) -> int:
    return session.scalar(select(func.count()).select_from(Membership)
                          .where(Membership.project_id == project.id, Membership.role == "owner")) or 0


def set_limits(session: Session, project: Project, limits: dict[str, int | None]) -> None:
    """Set the project's own limits named in ``limits`` (``max_active_experiments``,
    ``max_storage_mb``; None: back to the settings')."""
    for name in ("max_active_experiments", "max_storage_mb"):
        if name in limits:
            setattr(project, name, limits[name])
    session.flush()
