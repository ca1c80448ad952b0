"""In a real browser: Management > API Accounts makes an account whose secret a script then uses."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.command_api import as_dict
from tests.sites import Site

pytestmark = [pytest.mark.browser, pytest.mark.processes]


def token_status(site: Site, client_id: str, secret: str) -> tuple[int, str]:
    """What /oauth2/token answers a script holding these credentials: (status, token)."""
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own site
        site.url + "/oauth2/token",
        data=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.load(response)["access_token"]
    except urllib.error.HTTPError as error:
        return error.code, ""


def check_health(site: Site, token: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own site
        site.url + "/api/command?action=check_health",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return as_dict(response.read())["health_check"]


def test_an_administrator_makes_an_api_account_and_a_script_uses_its_secret(page, live_site):
    log_in(page, live_site)
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name="API Accounts").click()
    expect(page.get_by_role("heading", name="API Accounts")).to_be_visible()
    expect(page.get_by_test_id("no-api-accounts")).to_be_visible()

    page.get_by_test_id("new-api-account").click()
    page.get_by_label("Name").fill("monitoring")
    page.get_by_label("Read-only: check_health").check()
    page.get_by_role("button", name="Create API account").click()
    expect(page.get_by_role("status")).to_contain_text("API account monitoring created.")
    client_id = page.get_by_test_id("client-id").inner_text()
    secret = page.get_by_test_id("client-secret").inner_text()
    expect(page.get_by_role("alert")).to_contain_text("shown this once")

    status, token = token_status(live_site, client_id, secret)
    assert status == 200
    assert check_health(live_site, token)["appliance"]["#text"] == live_site.name

    page.get_by_role("link", name="Done").click()
    row = page.get_by_test_id("api-account-row").filter(has_text="monitoring")
    expect(row).to_contain_text("Read-only")
    expect(row.get_by_test_id("api-account-client-id")).to_have_text(client_id)
    expect(row.get_by_test_id("api-account-last-used")).not_to_have_text("Never")
    expect(page.locator("body")).not_to_contain_text(secret)

    # A new secret: the old one and its token stop working, the new one is shown once.
    row.get_by_test_id("api-account-name").click()
    page.get_by_test_id("regenerate-secret").click()
    expect(page.get_by_role("status")).to_contain_text("New client secret of monitoring made")
    new_secret = page.get_by_test_id("client-secret").inner_text()
    assert new_secret != secret
    assert token_status(live_site, client_id, secret)[0] == 401
    assert token_status(live_site, client_id, new_secret)[0] == 200
