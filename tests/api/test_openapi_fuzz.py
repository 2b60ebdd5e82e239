"""Generated input from the OpenAPI schema (schemathesis, in-process ASGI) on PostgreSQL, signed
in as an admin: no 5xx, no status code the operation does not declare, and no response that
breaks its own schema.  Then the same operations with no credentials: nothing but the public
ones answers 2xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from api.auth.middleware import PUBLIC_PATHS
from tests.identity import admin_token, bearer

EXAMPLES_PER_OPERATION = 25
# the fuzzer must not end its own session or revoke its own token half-way (the access-rule
# table covers both)
SELF_ENDING = {"POST /api/v1/auth/logout", "DELETE /api/v1/tokens/{token_id}"}


@pytest.fixture
def fuzzed(settings, postgresql_engine, enqueued, lab_sent):
    from sqlalchemy.orm import sessionmaker

    connection = postgresql_engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    app = create_app(settings, session_factory=factory, enqueuer=enqueued, reconcile_interval_s=0,
                     broker_check=lambda: None, lab_sender=lab_sent)
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app), bearer(admin_token(factory))
    outer.rollback()
    connection.close()


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_generated_requests_get_no_server_error_and_match_the_schema(fuzzed):
    schema, headers = fuzzed
    checked = []
    statuses: list[int] = []
    for operation in _operations(schema):
        if operation.label in SELF_ENDING:
            continue

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(headers=headers)
            if case.operation.label != "POST /api/v1/auth/login":  # a wrong password is its 401
                statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     response_schema_conformance])

        check()
        checked.append(operation.label)
    assert len(checked) >= 30, checked
    assert 401 not in statuses  # every generated request was signed in
    assert sum(200 <= s < 300 for s in statuses) > len(statuses) / 10


def test_no_operation_answers_2xx_without_credentials(fuzzed):
    schema, _ = fuzzed
    answered = []
    for operation in _operations(schema):
        @settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            if case.operation.path[len("/api/v1"):] not in PUBLIC_PATHS:
                assert response.status_code == 401, (case.operation.label, response.status_code, response.text[:200])
                assert response.headers["www-authenticate"][0].startswith("Bearer")

        check()
        answered.append(operation.label)
    assert len(answered) >= 30
