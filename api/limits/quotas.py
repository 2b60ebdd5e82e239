"""What a project may hold at once, checked by the services that add to it: queued and running
experiments (``DESCENT_MAX_ACTIVE_EXPERIMENTS``, 429: it frees itself as runs finish) and the
stored size of its dataset uploads (``DESCENT_MAX_PROJECT_STORAGE_MB``, 413: deleting datasets
frees it).  An admin may give a project its own limits instead (``PATCH /projects/{id}/limits``).
The counts are read in the request's transaction; two requests racing for the last place may
both get it, which a quota may allow."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.errors import TooLarge
from api.limits.errors import TooManyRequests
from core.settings import Settings
from store.models import Project
from store.repositories import datasets as datasets_repo
from store.repositories import experiments as experiments_repo
from store.repositories import projects as projects_repo

MIB = 1024 * 1024
# a run takes minutes: a client told to come back after one has a fair chance of a free place
ACTIVE_RETRY_AFTER_S = 60


def active_limit(settings: Settings, project: Project) -> tuple[int, str]:
    """The most queued and running experiments ``project`` may have, and where that is set."""
    if project.max_active_experiments is not None:
        return project.max_active_experiments, f"project {project.id}'s own limit, PATCH /projects/{project.id}/limits"
    return settings.max_active_experiments, "DESCENT_MAX_ACTIVE_EXPERIMENTS"


def storage_limit_mb(settings: Settings, project: Project) -> tuple[int, str]:
    """The most MiB ``project``'s uploads may add up to, and where that is set."""
    if project.max_storage_mb is not None:
        return project.max_storage_mb, f"project {project.id}'s own limit, PATCH /projects/{project.id}/limits"
    return settings.max_project_storage_mb, "DESCENT_MAX_PROJECT_STORAGE_MB"


def check_active_experiments(session: Session, settings: Settings, project_id: int) -> None:
    """Raise 429 when the project already has its most queued and running experiments."""
    project = projects_repo.get(session, project_id)
    limit, source = active_limit(settings, project) if project is not None else (
        settings.max_active_experiments, "DESCENT_MAX_ACTIVE_EXPERIMENTS")
    active = experiments_repo.count_active(session, project_id)
    if active >= limit:
        raise TooManyRequests(
            f"project {project_id} has {active} queued or running experiments, the most it may have at once "
            f"({limit}, {source}): wait for some to finish or cancel some, then submit again",
            ACTIVE_RETRY_AFTER_S,
        )


def check_storage(session: Session, settings: Settings, project: Project, adding_bytes: int) -> None:
    """Raise 413 when an upload of ``adding_bytes`` would take the project's uploads past its limit."""
    limit_mb, source = storage_limit_mb(settings, project)
    used = datasets_repo.stored_bytes(session, project.id)
    if used + adding_bytes > limit_mb * MIB:
        raise TooLarge(
            f"project {project.name} stores {_mib(used)} of dataset uploads; this upload of {_mib(adding_bytes)} "
            f"would take it past its limit of {limit_mb} MiB ({source}): delete datasets it no longer needs "
            "(DELETE /datasets/{id}) and upload again"
        )


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB / 10 or n == 0 else f"{n} bytes"
