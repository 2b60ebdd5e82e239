"""What a principal may do with a project's objects — the rule every route applies:

- an object of a project the caller has no role in does not exist for them (404, never 403,
  so ids reveal nothing);
- reading needs ``viewer``; creating, cancelling, cloning and deleting need ``editor``;
  managing members needs ``owner``; an admin is owner everywhere;
- a worker token reaches nothing here (it may only report metrics: ``api.metrics``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth.principal import Principal
from api.errors import Forbidden, NotFound, PayloadError
from core.auth import at_least
from store.models import Project
from store.repositories import projects as projects_repo


def require(principal: Principal, project_id: int, role: str, what: str) -> None:
    """Pass if ``principal`` holds ``role`` in ``project_id``; ``what`` ("experiment 3") names
    the object in the 404 (no role at all) or 403 (a lesser role)."""
    have = principal.role_in(project_id)
    if have is None:
        raise NotFound(f"{what} does not exist")
    if not at_least(have, role):
        raise Forbidden(f"{what}: you are a {have} of its project; this needs {role}")


def visible_projects(principal: Principal, only: int | None = None) -> list[int] | None:
    """The project ids whose objects ``principal`` may list (None: all, for an admin); with
    ``only`` (a list's ``?project_id=``), that project if the caller may see it, else none."""
    if principal.kind != "user":
        return []
    if only is not None:
        return [only] if principal.role_in(only) else []
    return None if principal.is_admin else sorted(principal.roles)


def project_for_new(session: Session, principal: Principal, project_id: int | None, loc: list[str]) -> Project:
    """The project a new dataset or split goes into: ``project_id`` if given (editor needed),
    else the caller's first project where they may create."""
    if project_id is not None:
        project = projects_repo.get(session, project_id)
        if project is None or principal.role_in(project.id) is None:
            raise PayloadError.at(loc, f"project {project_id} does not exist")
        require(principal, project.id, "editor", f"project {project.name}")
        return project
    candidates = [p for p in projects_repo.list_all(session) if at_least(principal.role_in(p.id), "editor")]
    if not candidates:
        raise PayloadError.at(loc, "you are an editor of no project: ask a project owner to add you, or create one "
                                   "(POST /projects)")
    return candidates[0]
