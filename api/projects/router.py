"""Projects and their members: any user may create a project (and owns it); owners manage
members; instance admins may give a project its own limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import AdminDep, Principal, UserDep
from api.deps import SessionDep, SettingsDep
from api.errors import Conflict, NotFound, PayloadError, responses
from api.limits import quotas
from api.projects.schemas import (
    MemberPublic,
    MemberSet,
    ProjectCreate,
    ProjectDetail,
    ProjectLimits,
    ProjectLimitsUpdate,
    ProjectPublic,
)
from core.settings import Settings
from core.spec.text import NulFreeStr
from store.models import Project
from store.repositories import audit
from store.repositories import datasets as datasets_repo
from store.repositories import experiments as experiments_repo
from store.repositories import projects as repo
from store.repositories import users as users_repo

router = APIRouter(prefix="/projects", tags=["projects"])
Username = Annotated[NulFreeStr, Path(max_length=64, description="The member's username.")]


def _public(project: Project, role: str) -> ProjectPublic:
    return ProjectPublic(id=project.id, name=project.name, description=project.description, role=role,
                         created_at=project.created_at)


def _limits(session: Session, settings: Settings, project: Project) -> ProjectLimits:
    return ProjectLimits(
        active_experiments=experiments_repo.count_active(session, project.id),
        max_active_experiments=quotas.active_limit(settings, project)[0],
        storage_bytes=datasets_repo.stored_bytes(session, project.id),
        max_storage_mb=quotas.storage_limit_mb(settings, project)[0],
        own_max_active_experiments=project.max_active_experiments, own_max_storage_mb=project.max_storage_mb,
    )


def _get(session: Session, principal: Principal, project_id: int, role: str) -> Project:
    project = repo.get(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    access.require(principal, project.id, role, f"project {project_id}")
    return project


@router.get("", response_model=list[ProjectPublic], responses=responses(401, 403))
def list_projects(principal: UserDep, session: SessionDep) -> list[ProjectPublic]:
    """The projects the caller is a member of (an admin: every project), oldest first."""
    return [_public(p, principal.role_in(p.id)) for p in repo.list_all(session) if principal.role_in(p.id)]


@router.post("", status_code=201, response_model=ProjectPublic, responses=responses(401, 403, 409))
def create_project(body: ProjectCreate, principal: UserDep, session: SessionDep) -> ProjectPublic:
    """A new project owned by the caller."""
    if repo.by_name(session, body.name) is not None:
        raise Conflict(f"a project named {body.name!r} exists already")
    owner = users_repo.get(session, principal.user_id)
    project = repo.create(session, body.name, body.description, owner=owner)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="project.create", target=f"project {project.name}")
    return _public(project, "owner")


@router.get("/{project_id}", response_model=ProjectDetail, responses=responses(401, 403, 404))
def get_project(project_id: int, principal: UserDep, session: SessionDep, settings: SettingsDep) -> ProjectDetail:
    """One project, the caller's role in it, and what it holds against its limits."""
    project = _get(session, principal, project_id, "viewer")
    return ProjectDetail(**_public(project, principal.role_in(project.id)).model_dump(),
                         limits=_limits(session, settings, project))


@router.patch("/{project_id}/limits", response_model=ProjectLimits, responses=responses(401, 403, 404))
def set_project_limits(project_id: int, body: ProjectLimitsUpdate, principal: AdminDep, session: SessionDep,
                       settings: SettingsDep) -> ProjectLimits:
    """Give a project its own limits, or (null) the settings' again; instance admins only, since
    a project's owners are the ones the limits hold back."""
    project = repo.get(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    changes = body.model_dump(exclude_unset=True)
    was = {name: getattr(project, name) for name in changes}
    repo.set_limits(session, project, changes)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="project.limits", target=f"project {project.name}", detail={"set": changes, "was": was})
    return _limits(session, settings, project)


@router.get("/{project_id}/members", response_model=list[MemberPublic], responses=responses(401, 403, 404))
def list_members(project_id: int, principal: UserDep, session: SessionDep) -> list[MemberPublic]:
    """Who is in the project, with their roles."""
    project = _get(session, principal, project_id, "viewer")
    return [MemberPublic(username=u.username, role=m.role, since=m.created_at) for u, m in repo.members(session, project)]


@router.put("/{project_id}/members/{username}", response_model=MemberPublic, responses=responses(401, 403, 404, 409))
def set_member(project_id: int, username: Username, body: MemberSet, principal: UserDep, session: SessionDep
               ) -> MemberPublic:
    """Add a user to the project or change their role (owners only)."""
    project = _get(session, principal, project_id, "owner")
    user = users_repo.by_username(session, username)
    if user is None or user.disabled:
        raise PayloadError.at(["path", "username"], f"no user {username[:64]!r}")
    current = dict((u.id, m.role) for u, m in repo.members(session, project)).get(user.id)
    if current == "owner" and body.role != "owner" and repo.owner_count(session, project) == 1:
        raise Conflict(f"{username} is the project's only owner: make someone else owner first")
    membership = repo.set_role(session, project, user, body.role)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="member.set", target=f"user {username}", detail={"role": body.role, "was": current})
    return MemberPublic(username=user.username, role=membership.role, since=membership.created_at)


@router.delete("/{project_id}/members/{username}", status_code=204, responses=responses(401, 403, 404, 409))
def remove_member(project_id: int, username: Username, principal: UserDep, session: SessionDep) -> Response:
    """Take a user out of the project (owners only; never its last owner)."""
    project = _get(session, principal, project_id, "owner")
    user = users_repo.by_username(session, username)
    roles = {u.id: m.role for u, m in repo.members(session, project)}
    if user is None or user.id not in roles:
        raise NotFound(f"{username[:64]!r} is not a member of project {project_id}")
    if roles[user.id] == "owner" and repo.owner_count(session, project) == 1:
        raise Conflict(f"{username} is the project's only owner: make someone else owner first")
    repo.remove_member(session, project, user)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="member.remove", target=f"user {username}")
    return Response(status_code=204)
