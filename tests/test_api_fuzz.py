"""schemathesis against the site's own OpenAPI schema: no operation answers a server error.

The site runs in-process (its WSGI application) against the test database, with an
administrator's API token, fresh heartbeats and a real Redis, so every operation, including
/check_health, must answer below 500 whatever schemathesis sends, valid or not.

schemathesis's pytest integration (`from_fixture(...).parametrize()`) reads a pytest
attribute that pytest 9.2 removed, so this drives its Hypothesis strategies directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from appliance.models import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.health_test_urls")]

OPENAPI_JSON = "application/vnd.oai.openapi+json"
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def site_api(healthy_site, settings, tmp_path) -> Iterator[schemathesis.BaseSchema]:
    # Slow examples must not let the heartbeats go stale halfway through the run.
    settings.HEARTBEAT_SECONDS = 3600
    settings.MEDIA_ROOT = tmp_path / "media"
    # As in Django's test client: neither the start nor the end of a request may close
    # the database connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        from appliance.wsgi import application

        yield schemathesis.openapi.from_wsgi(
            "/api/schema/", application, headers={"Accept": OPENAPI_JSON}
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(admin_user) -> str:
    return ApiToken.issue(admin_user)


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, token: str) -> None:
    """Send EXAMPLES_PER_OPERATION generated requests; raise on the first server error."""
    strategy = operation.as_strategy(mode, headers={"Authorization": f"Token {token}"})

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    send()


def test_no_operation_answers_a_server_error(site_api, admin_token):
    operations = [result.ok() for result in site_api.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"GET /api/command", "GET /api/v1/health/", "GET /check_health"} <= labels
    failures = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz(operation, mode, admin_token)
            except Unsatisfiable as error:
                # An operation without parameters or body has no invalid request to send.
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no request could be generated: {error}")
            except FailureGroup as error:
                failures.append(f"{operation.label} ({mode.value} examples):\n{error}")
    assert not failures, "\n\n".join(failures)
