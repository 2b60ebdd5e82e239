"""Rate limits and quotas: requests per caller (``rate``), sign-in attempts (``login``), what a
project may hold (``quotas``), and the 429 they answer (``errors``).

:func:`install` puts the request limit on an app, keeps its sign-in counter and declares the
429 on every operation the limit counts, as ``api.openapi`` does the body limit's 413."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from api.limits.login import LoginAttempts
from api.limits.rate import EXEMPT, RateLimit
from core.settings import Settings

TOO_MANY = {
    "description": "Too many requests from this caller in a minute (DESCENT_REQUESTS_PER_MINUTE), too many "
                   "sign-in attempts (DESCENT_LOGIN_ATTEMPTS_PER_MINUTE), or too many of something at once "
                   "(DESCENT_MAX_ACTIVE_EXPERIMENTS); `Retry-After` says in how many seconds to try again.",
    "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                "schema": {"type": "integer", "minimum": 1}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}},
}


def install(app: FastAPI, settings: Settings, prefix: str) -> None:
    """Count requests under ``prefix`` (a middleware: add it where it should sit in the stack)."""
    app.add_middleware(RateLimit, per_minute=settings.requests_per_minute, prefix=prefix)
    app.state.login_attempts = LoginAttempts(settings.login_attempts_per_minute)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        declare_too_many(document, prefix)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def declare_too_many(document: dict[str, Any], prefix: str) -> None:
    """429 with ``Retry-After`` on every operation under ``prefix`` but the exempt ones (idempotent)."""
    for path, item in document.get("paths", {}).items():
        if not path.startswith(prefix + "/") or path[len(prefix):] in EXEMPT:
            continue
        for operation in item.values():
            declared = operation["responses"].setdefault("429", copy.deepcopy(TOO_MANY))
            # a route's own 429 (too many streams) is counted here too and carries the same header
            declared.setdefault("headers", copy.deepcopy(TOO_MANY["headers"]))
