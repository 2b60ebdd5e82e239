"""Hold every response the api tests receive to the OpenAPI document: its status code must be
one the operation declares, and a JSON body must validate against the schema declared for that
code (JSON Schema 2020-12, references resolved in the document).

``attach(client)`` adds the check to a ``TestClient`` as an httpx response hook; a response
that breaks the document fails the test that received it."""

from __future__ import annotations

import re
from functools import cache

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:openapi"


def validator_for(document: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A JSON Schema 2020-12 validator for ``schema``, its ``#/components/...`` refs resolved in ``document``."""
    return jsonschema.Draft202012Validator(_rebase(schema), registry=_registry(document))


def _registry(document: dict) -> Registry:
    return Registry().with_resource(BASE, Resource(contents=document, specification=DRAFT202012))


class Document:
    def __init__(self, document: dict):
        self.document = document
        self.registry = _registry(document)
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                       for path in document["paths"]]

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for pattern, template in self.routes:
            if pattern.match(path):
                operation = self.document["paths"][template].get(method.lower())
                if operation is not None:
                    return template, operation
        return None

    @cache  # noqa: B019 - one document per test session
    def validator(self, template: str, method: str, code: str) -> jsonschema.Draft202012Validator | None:
        operation = self.document["paths"][template][method]
        media = operation["responses"][code].get("content", {}).get("application/json")
        if media is None or "schema" not in media:
            return None
        return jsonschema.Draft202012Validator(_rebase(media["schema"]), registry=self.registry)

    def check(self, response) -> None:
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None:
            return  # the dashboard's files, /openapi.json, /docs: not api operations
        template, operation = found
        code = str(response.status_code)
        label = f"{request.method} {template} -> {code}"
        assert code in operation["responses"], f"{label}: the document does not declare this status"
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        validator = self.validator(template, request.method.lower(), code)
        if validator is not None:
            response.read()
            errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
            assert not errors, f"{label}: the body breaks its schema: {errors[0].message} at {list(errors[0].path)}"


def _rebase(node):
    if isinstance(node, dict):
        return {k: (BASE + v if k == "$ref" and v.startswith("#/") else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


def attach(client, document: Document) -> None:
    client.event_hooks = {**client.event_hooks,
                          "response": [*client.event_hooks.get("response", []), document.check]}
