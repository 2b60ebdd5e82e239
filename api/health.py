"""``GET /health``: can the api reach its database and its broker?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from core.settings import Settings

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    status: str
    database: bool
    broker: bool
    database_error: str | None = None
    broker_error: str | None = None


def check_broker(settings: Settings) -> None:
    """Raise unless the broker answers."""
    from kombu import Connection

    with Connection(settings.resolved_broker_url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def get_health(request: Request):
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
    body = HealthPublic(status="ok" if ok else "degraded", **result)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
