"""The OpenAPI schema at /api/schema/: valid, free of warnings, and describing the health API."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.health_test_urls")]

OPENAPI_JSON = "application/vnd.oai.openapi+json"


@pytest.fixture
def schema(anon_client) -> dict:
    response = anon_client.get("/api/schema/", HTTP_ACCEPT=OPENAPI_JSON)
    assert response.status_code == 200
    return response.json()


def test_the_schema_validates_without_a_single_warning(tmp_path):
    GENERATOR_STATS.reset()
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--urlconf",
        "tests.health_test_urls",
        "--file",
        str(tmp_path / "schema.yaml"),
    )
    assert "/check_health:" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_documents_the_command_api_as_xml_for_api_accounts_and_tokens(schema, method):
    operation = schema["paths"]["/api/command"][method]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert list(parameters) == ["action", "data_sync_first", "force", "role"]
    assert parameters["action"]["required"] is True
    assert parameters["action"]["schema"]["enum"] == ["check_health", "set_failover_role"]
    assert operation["security"] == [{"apiAccount": []}, {"tokenAuth": []}]
    for status in ("200", "202", "400", "401", "403", "409"):
        assert list(operation["responses"][status]["content"]) == ["application/xml"]
    answers = operation["responses"]["200"]["content"]["application/xml"]["schema"]["oneOf"]
    health_check = answers[0]
    assert health_check["xml"] == {"name": "health_check"}
    assert list(health_check["properties"]) == [
        "appliance",
        "version",
        "success",
        "error_message",
        "failover_role",
        "enabled_shared_ips",
        "last_data_sync_time",
        "last_data_sync_status",
    ]
    assert schema["components"]["securitySchemes"]["apiAccount"]["flows"] == {
        "clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {}}
    }


def test_it_documents_the_json_health_report(schema):
    operation = schema["paths"]["/api/v1/health/"]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/SiteHealth"}
    assert "last_data_sync_time" in schema["components"]["schemas"]["SiteHealth"]["properties"]


def test_it_documents_check_health_as_unauthenticated_with_200_and_500(schema):
    operation = schema["paths"]["/check_health"]["get"]
    assert "security" not in operation
    assert "security" not in schema
    assert set(operation["responses"]) == {"200", "500"}
    for answer in operation["responses"].values():
        assert list(answer["content"]) == ["text/plain"]
