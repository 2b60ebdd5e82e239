"""The client's typed shapes against the server's own OpenAPI schema: the same keys, the same
required keys, so a field added to or renamed in the api fails here until the client follows."""

from __future__ import annotations

import pytest

from api.app import create_app
from core.settings import Settings
from descent.client_types import OPENAPI_COMPONENTS


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), database_url=None)
    app = create_app(settings, session_factory=lambda: None, enqueuer=lambda *a: None, reconcile_interval_s=0,
                     broker_check=lambda: None)
    return app.openapi()["components"]["schemas"]


@pytest.mark.parametrize("shape", list(OPENAPI_COMPONENTS), ids=lambda t: t.__name__)
def test_client_shape_matches_the_api_schema(shape, components):
    schema = components[OPENAPI_COMPONENTS[shape]]
    assert set(shape.__required_keys__) | set(shape.__optional_keys__) == set(schema["properties"])
    assert set(shape.__required_keys__) == set(schema.get("required", []))
