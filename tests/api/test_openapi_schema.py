"""The OpenAPI document as code generators and API consumers read it: short explicit operation
ids, named request bodies and enums, binary bodies declared binary, a description on every
schema, property and operation, an example on every request body that its own schema accepts,
the 4xx each operation can answer, and a document openapi-spec-validator accepts."""

from __future__ import annotations

from collections import Counter

import pytest
from openapi_spec_validator import validate

from api.app import create_app
from core.settings import Settings
from tests.api.conformance import validator_for

ERROR_MODELS = {"#/components/schemas/ErrorPublic", "#/components/schemas/HTTPValidationError"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")), session_factory=lambda: None,
                     enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
    return app.openapi()


def _endpoint_names() -> list[str]:
    """The names of the functions behind the api's routes, read from each resource's router."""
    from api import health
    from api.audit import router as audit
    from api.auth import router as auth
    from api.catalog import router as catalog
    from api.datasets import router as datasets
    from api.experiments import router as experiments
    from api.landscapes import router as landscapes
    from api.metrics import router as metrics
    from api.projects import router as projects
    from api.queue import router as queue
    from api.races import router as races
    from api.splits import router as splits
    from api.studies import router as studies
    from api.tokens import router as tokens

    modules = (auth, projects, tokens, catalog, datasets, experiments, studies, metrics, splits, queue, audit, health,
               landscapes, races)
    return [route.endpoint.__name__ for module in modules for route in module.router.routes]


def _operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _component(document, node):
    """The component a ``$ref`` (possibly inside ``anyOf`` with null) points at, else None."""
    for option in [node, *node.get("anyOf", [])]:
        if "$ref" in option:
            return document["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
    return None


def test_the_document_is_valid_openapi_with_servers_and_license(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.1")
    assert schema["servers"] and schema["info"]["license"]["identifier"] == "Apache-2.0"


def test_every_operation_but_the_public_ones_requires_a_token_or_the_session(schema):
    from api.auth.middleware import PUBLIC_PATHS

    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearerToken": []}, {"sessionCookie": []}]
    public = {path for path, _, operation in _operations(schema) if operation.get("security") == []}
    assert public == {"/api/v1" + p for p in PUBLIC_PATHS} & set(schema["paths"])


def test_every_operation_id_is_its_endpoints_name(schema):
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(_endpoint_names())


def test_every_operation_is_described(schema):
    undescribed = [operation["operationId"] for _, _, operation in _operations(schema)
                   if len(operation.get("description", "")) < 20]
    assert undescribed == []


def test_every_schema_and_property_is_described(schema):
    """A property is described by its own ``description`` or by the named schema it refers to."""
    missing = []
    for name, component in schema["components"]["schemas"].items():
        if not component.get("description"):
            missing.append(name)
        for key, prop in component.get("properties", {}).items():
            target = _component(schema, prop)
            if not prop.get("description") and not (target and target.get("description")):
                missing.append(f"{name}.{key}")
    assert missing == []


def test_request_bodies_are_named_and_carry_an_example_their_schema_accepts(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" not in operation:
            continue
        for media_type, media in operation["requestBody"]["content"].items():
            target = _component(schema, media["schema"])
            assert target is not None, f"{method} {path}: the {media_type} body is not a named schema"
            assert not target["title"].startswith("Body_"), f"{method} {path}: FastAPI's default body name"
            examples = [*media["schema"].get("examples", []), *target.get("examples", [])]
            if "example" in media:
                examples.append(media["example"])
            assert examples, f"{method} {path}: no example"
            if media_type == "application/json":  # a multipart example cannot carry the file's bytes
                for example in examples:
                    validator_for(schema, media["schema"]).validate(example)


def test_every_example_in_a_component_is_valid_against_it(schema):
    checked = 0
    for name, component in schema["components"]["schemas"].items():
        for example in component.get("examples", []):
            validator_for(schema, {"$ref": f"#/components/schemas/{name}"}).validate(example)
            checked += 1
    assert checked >= 10


def test_main_responses_have_examples(schema):
    components = schema["components"]["schemas"]
    for name in ("ExperimentPublic", "ExperimentPage", "DatasetPublic", "SplitPublic", "MetricsPublic",
                 "ComparePublic", "HealthPublic", "ErrorPublic"):
        assert components[name].get("examples"), name


def test_enums_are_named_components_with_distinct_value_sets(schema):
    components = schema["components"]["schemas"]
    enums = {name: tuple(sorted(map(str, c["enum"]))) for name, c in components.items() if "enum" in c}
    assert {"Status", "TaskType", "SplitStrategy", "Device", "Precision", "Activation"} <= set(enums)
    shared = [values for values, n in Counter(enums.values()).items() if n > 1]
    assert shared == []

    inline = []

    def walk(node, where):
        if isinstance(node, dict):
            if "enum" in node and where not in {f"/components/schemas/{n}" for n in enums}:
                inline.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert inline == []
    status_filter = next(p for p in schema["paths"]["/api/v1/experiments"]["get"]["parameters"] if p["name"] == "status")
    assert _component(schema, status_filter["schema"]) is components["Status"]


def test_experiment_spec_is_typed_where_it_is_read_back(schema):
    spec = schema["components"]["schemas"]["ExperimentPublic"]["properties"]["spec"]
    assert spec["$ref"] == "#/components/schemas/ExperimentSpec"


def test_each_operation_declares_the_4xx_it_can_answer(schema):
    """404 wherever a path names a resource, 422 wherever there is input to reject, 413 on the
    upload, 409 where the run's state can forbid it; every error body a named schema."""
    for path, method, operation in _operations(schema):
        codes = set(operation["responses"])
        params = operation.get("parameters", [])
        label = f"{method} {path}"
        if any(p["in"] == "path" for p in params):
            assert "404" in codes, label
        if params or "requestBody" in operation:
            assert "422" in codes, label
        if operation.get("security") != []:  # everything but the public operations needs a caller
            assert {"401", "403"} <= codes, label
        for code, response in operation["responses"].items():
            if code.startswith("4"):
                refs = {media["schema"].get("$ref") for media in response["content"].values()}
                assert refs <= ERROR_MODELS, (label, code, refs)
    responses = schema["paths"]
    assert "413" in responses["/api/v1/datasets"]["post"]["responses"]
    for method, path in (("post", "/api/v1/experiments/{experiment_id}/cancel"),
                         ("delete", "/api/v1/experiments/{experiment_id}")):
        assert "409" in responses[path][method]["responses"]


def test_binary_bodies_are_declared_binary(schema):
    document = schema
    upload = document["paths"]["/api/v1/datasets"]["post"]["requestBody"]["content"]["multipart/form-data"]
    body = document["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert body["properties"]["file"]["format"] == "binary"
    checkpoint = document["paths"]["/api/v1/experiments/{experiment_id}/checkpoint"]["get"]["responses"]["200"]
    assert checkpoint["content"]["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}


def test_the_event_stream_names_its_events_and_their_payload_schemas(schema):
    media = schema["paths"]["/api/v1/experiments/{experiment_id}/stream"]["get"]["responses"]["200"]["content"]
    events = media["text/event-stream"]["x-events"]
    assert set(events) == {"metrics", "status"}
    for ref in events.values():
        assert _component(schema, ref)["description"]
