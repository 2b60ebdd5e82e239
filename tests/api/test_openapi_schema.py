"""The OpenAPI document as code generators read it: short explicit operation ids, and binary
bodies declared as binary so a generated client sends and returns files, not strings."""

from __future__ import annotations

import pytest

from api.app import create_app
from core.settings import Settings


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")), session_factory=lambda: None,
                     enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
    return app.openapi()


def _endpoint_names() -> list[str]:
    """The names of the functions behind the api's routes, read from each resource's router."""
    from api import health
    from api.catalog import router as catalog
    from api.datasets import router as datasets
    from api.experiments import router as experiments
    from api.metrics import router as metrics
    from api.splits import router as splits

    modules = (catalog, datasets, experiments, metrics, splits, health)
    return [route.endpoint.__name__ for module in modules for route in module.router.routes]


def _operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_id_is_its_endpoints_name(schema):
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(_endpoint_names())


def test_binary_bodies_are_declared_binary(schema):
    document = schema
    upload = document["paths"]["/api/v1/datasets"]["post"]["requestBody"]["content"]["multipart/form-data"]
    body = document["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert body["properties"]["file"]["format"] == "binary"
    checkpoint = document["paths"]["/api/v1/experiments/{experiment_id}/checkpoint"]["get"]["responses"]["200"]
    assert checkpoint["content"]["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}
