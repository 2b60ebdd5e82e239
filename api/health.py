"""``GET /health``: can the api reach its database and its broker?  Open to everyone (load
balancers and compose health checks call it); the reasons for a failure go to admins only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from core.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    """Whether the api reaches its database and its broker: answered with 200 when both answer,
    with 503 (and the same body) when either does not."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "database": True, "broker": True, "database_error": None, "broker_error": None},
        {"status": "degraded", "database": True, "broker": False, "database_error": None,
         "broker_error": "[Errno 111] Connection refused"},
    ]})

    status: str = Field(description="`ok` when the database and the broker both answer (HTTP 200), "
                                    "else `degraded` (HTTP 503).")
    database: bool | None = Field(None, description="Whether the database answered a `SELECT 1` (signed-in "
                                                    "callers only).")
    broker: bool | None = Field(None, description="Whether the message broker accepted a connection (signed-in "
                                                  "callers only).")
    database_error: str | None = Field(None, description="Why the database check failed (at most 500 "
                                                         "characters); null when it passed.")
    broker_error: str | None = Field(None, description="Why the broker check failed (at most 500 "
                                                       "characters); null when it passed.")


def check_broker(settings: Settings) -> None:
    """Raise unless the broker answers."""
    from kombu import Connection

    with Connection(settings.resolved_broker_url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _caller(request: Request):
    """The signed-in caller, or None (anonymous, or the database is what failed)."""
    from api.auth.principal import authenticate

    if "authorization" not in request.headers and "cookie" not in request.headers:
        return None
    try:
        with request.app.state.session_factory() as session:
            return authenticate(request, session)
    except Exception:
        return None


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def get_health(request: Request):
    """Check that the api reaches its database and its broker: 200 when both answer, 503 when
    either does not.  Anyone may ask and learns only ``ok`` or ``degraded``; a signed-in user also
    which check failed, an admin also why."""
    state = request.app.state
    result = {"database": True, "broker": True}
    try:
        with state.session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        result.update(database=False, database_error=str(exc)[:500])
    try:
        state.broker_check()
    except Exception as exc:
        result.update(broker=False, broker_error=str(exc)[:500])
    ok = result["database"] and result["broker"]
    if not ok:
        log.warning("health: %s", result)
    caller = _caller(request)
    if caller is None or caller.kind != "user":
        result = {}
    elif not caller.is_admin:  # why a check failed names hosts and paths: admins only
        result.pop("database_error", None)
        result.pop("broker_error", None)
    body = HealthPublic(status="ok" if ok else "degraded", **result)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ok else 503)
