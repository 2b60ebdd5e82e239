from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.auth import TokenKind
from core.spec.text import NulFreeStr


class TokenCreate(BaseModel):
    """A new API token: a name to recognise it by and, optionally, when it expires."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "laptop",
                                                                               "expires_in_days": 90}]})

    name: NulFreeStr = Field(min_length=1, max_length=100,
                             description="What the token is for (shown in the token list).")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Days until it stops working; null: never.")
    kind: TokenKind = Field("user", description="`worker` makes a token that may only report metrics (admins only).")


class TokenPublic(BaseModel):
    """An API token as listed: never its secret, only the first characters to tell it apart."""

    id: int = Field(description="The token's id (to revoke it).")
    name: str = Field(description="What the token is for.")
    kind: TokenKind = Field(description="A user's token or a worker's.")
    prefix: str = Field(description="The secret's first characters, e.g. `dsc_Ab3xY9q2`.")
    username: str | None = Field(description="Whose token it is (null for a worker token).")
    created_at: datetime = Field(description="When it was created.")
    expires_at: datetime | None = Field(description="When it stops working (null: never).")
    last_used_at: datetime | None = Field(description="When it was last used (to the minute; null: never).")
    revoked_at: datetime | None = Field(description="When it was revoked (null: it is live).")


class TokenCreated(TokenPublic):
    """A token just created, with its secret: shown this once and stored only as a hash."""

    token: str = Field(description="The secret to send as `Authorization: Bearer <token>`; it is not shown again.")
