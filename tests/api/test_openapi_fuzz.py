"""Generated input from the OpenAPI schema (schemathesis, in-process ASGI) on PostgreSQL: no
5xx, no status code the operation does not declare, and no response that breaks its own schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app


@pytest.fixture
def api_schema(settings, postgresql_engine, enqueued):
    from sqlalchemy.orm import sessionmaker

    connection = postgresql_engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    app = create_app(settings, session_factory=factory, enqueuer=enqueued, reconcile_interval_s=0,
                     broker_check=lambda: None)
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    outer.rollback()
    connection.close()


EXAMPLES_PER_OPERATION = 25


def test_generated_requests_get_no_server_error_and_match_the_schema(api_schema):
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

        check()
        checked.append(operation.label)
    assert len(checked) >= 15, checked
