"""In a real browser: log in, fail a login, set the key and see its fingerprint."""

import pytest
from playwright.sync_api import expect

from security import keys
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser
KEY = "browser shared passphrase 2026"


def test_an_administrator_logs_in_and_sees_the_status_tab(page, live_site):
    log_in(page, live_site)
    expect(page).to_have_url(live_site.url + "/status/")
    expect(page.get_by_role("heading", name="Status")).to_be_visible()
    expect(page.get_by_test_id("role-badge")).to_have_text("None")
    expect(page.get_by_role("button", name="Management")).to_be_visible()


def test_a_wrong_password_is_refused_with_a_message(page, live_site):
    log_in(page, live_site, password="not the password")
    expect(page).to_have_url(live_site.url + "/login")
    expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()


def test_an_administrator_sets_the_key_and_sees_its_fingerprint(page, live_site):
    log_in(page, live_site)
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_test_id("no-key")).to_be_visible()
    page.get_by_label("Inter-appliance Communication Pre-shared Key").fill("too short")
    page.get_by_label("Confirm the key").fill("too short")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("use at least 16")).to_be_visible()
    page.get_by_label("Inter-appliance Communication Pre-shared Key").fill(KEY)
    page.get_by_label("Confirm the key").fill(KEY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("fingerprint")).to_have_text(keys.fingerprint(KEY))
    assert KEY not in page.content()
    assert live_site.status()["key_fingerprint"] == keys.fingerprint(KEY)


def test_the_admin_logs_out(page, live_site):
    log_in(page, live_site)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(live_site.url + "/login")
    page.goto(live_site.url + "/status/")
    expect(page).to_have_url(live_site.url + "/login?next=/status/")
