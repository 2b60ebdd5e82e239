"""Typed errors carrying their status code.  422 is for payload problems only and has the same
shape as FastAPI's validation errors (``detail: [{loc, msg, type}]``); a missing id is 404, a
state conflict (cancelling a finished run) 409, an oversized upload 413, a caller past a limit
429 (``api.limits.errors``).  When every connection of the database pool stayed in use for
``DESCENT_DB_POOL_TIMEOUT_S``, the answer is 503 with ``Retry-After`` saying the database is
busy: a request under load waits a bounded time and never hangs or 500s.  When the database
cannot be reached at all (stopped, restarting, a connection refused or lost; see
``store.db.unreachable``; connecting waits at most ``store.db.POSTGRES_CONNECT_TIMEOUT_S``), the
answer is 503 with ``Retry-After`` saying the database is unreachable; any other database error
stays a 500.

FastAPI's own 422 echoes the offending ``input`` (and the constraint in ``ctx``); a body with
``NaN`` or ``1e400`` (Python's json reads both) would make that answer invalid JSON and a 500,
so here non-finite floats in it are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.spec.suggest import with_hints
from store.db import unreachable

log = logging.getLogger(__name__)
Loc = Sequence[str | int]
# seconds a client is told to wait when every pooled database connection stayed busy
DATABASE_BUSY_RETRY_S = 2
DATABASE_BUSY = ("the database is busy (every connection of the api's pool is in use): retry in a few seconds; "
                 "if this persists, raise DESCENT_DB_POOL_SIZE / DESCENT_DB_MAX_OVERFLOW")
# seconds a client is told to wait when the database cannot be reached (a restart takes a few)
DATABASE_UNREACHABLE_RETRY_S = 5
DATABASE_UNREACHABLE = ("the database is unreachable (stopped, restarting or the connection was lost): retry in a "
                        "few seconds; if this persists, ask the operator to check the database server")


class ErrorPublic(BaseModel):
    """The body of every 4xx answer other than 422 (404 for a missing id, 409 for a state
    conflict such as cancelling a finished run, 413 for an oversized upload): what is wrong and
    what to do.  A 422 lists its problems instead: ``{"detail": [{"loc", "msg", "type"}]}``."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"detail": "experiment 42 does not exist"},
        {"detail": "experiment 7 is running: cancel it before deleting"},
    ]})

    detail: str = Field(description="What is wrong and, where there is something to do, what to do about it.")


class ApiError(Exception):
    status_code = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Unauthorized(ApiError):
    """No identity, or one that is no longer valid: answered with ``WWW-Authenticate``."""

    status_code = 401

    def __init__(self, detail: str, error: str | None = None):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": f'Bearer realm="descent", error="{error}"' if error
                        else 'Bearer realm="descent"'}


class Forbidden(ApiError):
    """Known caller, not allowed (a resource of a project the caller is not in is NotFound)."""

    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class TooLarge(ApiError):
    status_code = 413


class ServiceUnavailable(ApiError):
    status_code = 503


class PayloadError(ApiError):
    """One or more problems in the request, each at a location (``["body", "solver", "base_lr"]``)."""

    status_code = 422

    def __init__(self, errors: Sequence[tuple[Loc, str]]):
        self.errors = [(list(loc), msg) for loc, msg in errors]
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.errors))

    @classmethod
    def at(cls, loc: Loc, msg: str) -> PayloadError:
        return cls([(loc, msg)])


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` for the error codes a route may answer (422 is FastAPI's own)."""
    return {code: {"model": ErrorPublic} for code in codes if code != 422}


def json_safe(value: Any) -> Any:
    """``value`` (already JSON-encodable) with every non-finite float replaced by its JSON5 name."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def body_model(request: Request) -> type[BaseModel] | None:
    """The pydantic model of the matched route's JSON body, if it has one."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # "did you mean": an unknown solver, field or choice gets the name it most likely meant
        errors = with_hints(exc.errors(), body_model(request), prefix=("body",))
        return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=422)

    @app.exception_handler(PayloadError)
    async def _payload(_: Request, exc: PayloadError) -> JSONResponse:
        detail = [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in exc.errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, _: PoolTimeout) -> JSONResponse:
        log.warning("%s %s: no database connection within the pool timeout (503)", request.method, request.url.path)
        return JSONResponse({"detail": DATABASE_BUSY}, status_code=503,
                            headers={"Retry-After": str(DATABASE_BUSY_RETRY_S)})

    @app.exception_handler(DBAPIError)
    async def _database_unreachable(request: Request, exc: DBAPIError) -> JSONResponse:
        if not unreachable(exc):
            raise exc  # a statement the database refused is a bug: the plain 500
        log.warning("%s %s: database unreachable (503): %s", request.method, request.url.path,
                    str(exc.orig).splitlines()[0] if exc.orig else exc)
        return JSONResponse({"detail": DATABASE_UNREACHABLE}, status_code=503,
                            headers={"Retry-After": str(DATABASE_UNREACHABLE_RETRY_S)})
