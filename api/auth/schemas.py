from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.auth import Role
from core.spec.text import NulFreeStr


class LoginBody(BaseModel):
    """A username and password, to start a dashboard session."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"username": "alice",
                                                                               "password": "correct horse"}]})

    username: NulFreeStr = Field(min_length=1, max_length=64, description="The user's name.")
    password: str = Field(min_length=1, max_length=1024, description="The user's password.")


class ProjectRole(BaseModel):
    """A project the caller can see, and their role in it."""

    id: int = Field(description="The project's id.")
    name: str = Field(description="The project's name.")
    role: Role = Field(description="The caller's role in it (an admin is owner everywhere).")


class MePublic(BaseModel):
    """The caller: who they are, their projects and, for a dashboard session, the CSRF token
    every state-changing request must send in ``X-CSRF-Token``."""

    id: int = Field(description="The user's id.")
    username: str = Field(description="The user's name.")
    is_admin: bool = Field(description="Whether the user is an instance admin (owner of every project).")
    projects: list[ProjectRole] = Field(description="Every project the user can see, oldest first.")
    csrf_token: str | None = Field(None, description="The session's CSRF token (null when calling with a token).")
