"""The OpenAPI document, as code generators and API consumers read it.

FastAPI builds it from the routes and models; this adds what FastAPI leaves out: the servers
and licence, the security schemes (a Bearer token, or the dashboard's session cookie) required
by every operation but the public ones, descriptions on FastAPI's own validation-error models,
and the server-sent events
of ``GET /experiments/{id}/stream`` (the event names, and each event's ``data`` as a named
schema under ``x-events``, since OpenAPI 3.1 has no field for a stream's items)."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from api.auth.middleware import PUBLIC_PATHS
from api.auth.principal import SESSION_COOKIE
from api.metrics.stream import STREAM_EVENTS

LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
SERVERS = [{"url": "/", "description": "the Descent server that serves this document"}]
API_PREFIX = "/api/v1"
STREAM_PATH = f"{API_PREFIX}/experiments/{{experiment_id}}/stream"
# the packages whose models the document holds (see _restore_example_nulls)
MODEL_PACKAGES = ("api", "core")

_FASTAPI_MODELS = {
    "HTTPValidationError": (
        "The body of a 422: every problem found in the request, each at its location.",
        {"detail": "One entry per problem."},
    ),
    "ValidationError": (
        "One problem in a request: where it is and what is wrong.",
        {
            "loc": "Where the problem is: `body`, `query` or `path`, then the field names and list indices "
                   "down to the bad value (`[\"body\", \"solver\", \"base_lr\"]`).",
            "msg": "What is wrong, in words.",
            "type": "A machine-readable kind of problem (`missing`, `greater_than_equal`, `value_error`, ...).",
            "input": "The value that was rejected (non-finite numbers written as the strings \"NaN\", \"Infinity\").",
            "ctx": "The constraint that was broken (`{\"ge\": 0}`), where there is one.",
        },
    ),
}


def install(app: FastAPI) -> None:
    """Serve :func:`build` (computed once) as the app's schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes,
        servers=SERVERS, license_info=LICENSE, separate_input_output_schemas=app.separate_input_output_schemas,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _add_security(document)
    _declare_body_limit(document)
    _describe_fastapi_models(schemas)
    _restore_example_nulls(schemas)
    if STREAM_PATH in document.get("paths", {}):
        _describe_stream(document["paths"][STREAM_PATH]["get"], schemas)
    return document


SECURITY_SCHEMES = {
    "bearerToken": {
        "type": "http", "scheme": "bearer",
        "description": "An API token (`dsc_…`): `descent login`, `descent token create`, or POST /tokens. "
                       "A missing or bad token is 401 with `WWW-Authenticate: Bearer`.",
    },
    "sessionCookie": {
        "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
        "description": "The dashboard's session (POST /auth/login). A state-changing request must also send "
                       "the session's CSRF token in `X-CSRF-Token` and come from the api's own origin.",
    },
}


def _declare_body_limit(document: dict[str, Any]) -> None:
    """A body above the request limit is refused with 413 (``api.body_limit``), on every operation
    that takes one."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if "requestBody" in operation and "413" not in operation["responses"]:
                operation["responses"]["413"] = {
                    "description": "The body is larger than the limit (DESCENT_MAX_REQUEST_BYTES).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}},
                }


def _add_security(document: dict[str, Any]) -> None:
    """Every operation needs one of the schemes, except the public ones (``security: []``)."""
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"bearerToken": []}, {"sessionCookie": []}]
    for path, item in document.get("paths", {}).items():
        if path.removeprefix(API_PREFIX) in PUBLIC_PATHS:
            for operation in item.values():
                operation["security"] = []


def _describe_fastapi_models(schemas: dict[str, Any]) -> None:
    for name, (description, properties) in _FASTAPI_MODELS.items():
        schema = schemas.get(name)
        if schema is None:
            continue
        schema["description"] = description
        for key, text in properties.items():
            if key in schema.get("properties", {}):
                schema["properties"][key]["description"] = text


def _restore_example_nulls(schemas: dict[str, Any]) -> None:
    """FastAPI writes the document with ``exclude_none``, which also drops every null inside an
    example (fastapi/fastapi#5559): ``"error": null`` vanishes from a succeeded run's example,
    which then fails its own schema.  Put back each component's examples as its model declares them
    (every model is in a module of ``api`` or ``core``, all loaded by the time the app exists)."""
    modules = [m for name, m in list(sys.modules.items()) if m is not None and name.split(".")[0] in MODEL_PACKAGES]
    for module in modules:
        for name, obj in vars(module).items():
            if isinstance(obj, type) and "examples" in schemas.get(name, {}):
                schemas[name]["examples"] = TypeAdapter(obj).json_schema()["examples"]


def _describe_stream(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The stream's events: ``event: <name>`` lines, each followed by ``data: <json>`` that
    conforms to the named schema."""
    refs, definitions = models_json_schema(
        [(model, "serialization") for model in STREAM_EVENTS.values()],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    events = {name: refs[(model, "serialization")] for name, model in STREAM_EVENTS.items()}
    listing = "; ".join(f"`event: {name}` with data {ref['$ref'].rsplit('/', 1)[-1]}" for name, ref in events.items())
    media = operation["responses"]["200"]["content"]["text/event-stream"]
    media["schema"] = {
        "type": "string",
        "description": f"Server-sent events (text/event-stream): {listing}. The stream ends after the run ends.",
    }
    media["x-events"] = events
