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


class MemberSet(BaseModel):
    """The role to give a user in a project."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "editor"}]})

    role: Role = Field(description="viewer, editor or owner.")


class MemberPublic(BaseModel):
    """A member of a project and their role."""

    username: str = Field(description="The member's username.")
    role: Role = Field(description="Their role in the project.")
    since: datetime = Field(description="When they were given a role in it.")
