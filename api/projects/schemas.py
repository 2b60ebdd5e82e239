from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.auth import Role
from core.spec.text import NulFreeStr

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")


class ProjectCreate(BaseModel):
    """A new project; its creator becomes its owner."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "vision",
                                                                               "description": "CNNs on images"}]})

    name: str = Field(min_length=1, max_length=100, description="A unique name (letters, digits, `. _ -` and spaces).")
    description: NulFreeStr = Field("", max_length=1000, description="What the project is for.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not PROJECT_NAME.match(v):
            raise ValueError("use letters, digits, '.', '_', '-' and spaces, starting with a letter or digit")
        return v


class ProjectPublic(BaseModel):
    """A project the caller can see, with the caller's role in it."""

    id: int = Field(description="The project's id.")
    name: str = Field(description="The project's unique name.")
    description: str = Field(description="What the project is for.")
    role: Role = Field(description="The caller's role in it (an admin is owner everywhere).")
    created_at: datetime = Field(description="When it was created.")


class ProjectLimits(BaseModel):
    """What a project holds against what it may hold: its queued and running experiments and
    its dataset uploads' stored size, each with the limit that applies (the project's own, set
    by an admin, else the setting's)."""

    active_experiments: int = Field(description="Queued and running experiments now.")
    max_active_experiments: int = Field(
        description="The most it may have at once (429 past it): its own limit, else DESCENT_MAX_ACTIVE_EXPERIMENTS.")
    storage_bytes: int = Field(description="Its dataset uploads' sizes as uploaded, added up.")
    max_storage_mb: int = Field(
        description="The most MiB its uploads may add up to (413 past it): its own limit, else "
                    "DESCENT_MAX_PROJECT_STORAGE_MB.")
    own_max_active_experiments: int | None = Field(description="The project's own limit (null: the setting's).")
    own_max_storage_mb: int | None = Field(description="The project's own limit in MiB (null: the setting's).")


class ProjectDetail(ProjectPublic):
    """A project the caller can see, with the caller's role in it and its usage against its limits."""

    limits: ProjectLimits = Field(description="What it holds against what it may hold.")


class ProjectLimitsUpdate(BaseModel):
    """A project's own limits (admins only): a field left out stays as it is, null gives the
    project the setting's limit again."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"max_active_experiments": 20, "max_storage_mb": 102400}, {"max_storage_mb": None}]})

    max_active_experiments: int | None = Field(
        None, ge=1, le=1_000_000, description="Most queued and running experiments at once; null: "
                                              "DESCENT_MAX_ACTIVE_EXPERIMENTS.")
    max_storage_mb: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Most MiB of dataset uploads; null: DESCENT_MAX_PROJECT_STORAGE_MB.")


class MemberSet(BaseModel):
    """The role to give a user in a project."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "editor"}]})

    role: Role = Field(description="viewer, editor or owner.")


class MemberPublic(BaseModel):
    """A member of a project and their role."""

    username: str = Field(description="The member's username.")
    role: Role = Field(description="Their role in the project.")
    since: datetime = Field(description="When they were given a role in it.")
