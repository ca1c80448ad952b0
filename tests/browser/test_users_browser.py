"""In a real browser: an administrator creates a user, who then logs in without Management."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.processes]
NEW_PASSWORD = "violet kettle harbour 318"


def open_new_user_form(page, site) -> None:
    log_in(page, site)
    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_test_id("new-user").click()
    expect(page.get_by_role("heading", name="New user")).to_be_visible()


def fill_new_user(page, username: str, password: str, confirmation: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("First name").fill("Nina")
    page.get_by_label("Last name").fill("Newcomer")
    page.get_by_label("Email address").fill(f"{username}@example.com")
    # Crispy marks a required field's label with an asterisk: "Password*".
    page.get_by_label("Password*", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(confirmation)
    page.get_by_role("button", name="Create user").click()


def test_an_administrator_creates_a_user_who_logs_in_without_management(page, browser, live_site):
    open_new_user_form(page, live_site)
    fill_new_user(page, "nina", NEW_PASSWORD, NEW_PASSWORD)

    expect(page).to_have_url(live_site.url + "/users/")
    expect(page.get_by_role("alert")).to_contain_text("User nina created.")
    row = page.get_by_test_id("user-row").filter(has_text="nina@example.com")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("user-username")).to_have_text("nina")
    expect(row).to_contain_text("Nina Newcomer")
    expect(row.get_by_test_id("active-badge")).to_be_visible()
    expect(row.get_by_test_id("admin-badge")).to_have_count(0)

    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        own_page = context.new_page()
        log_in(own_page, live_site, username="nina", password=NEW_PASSWORD)
        expect(own_page).to_have_url(live_site.url + "/status/")
        expect(own_page.get_by_role("navigation")).to_contain_text("nina")
        expect(own_page.get_by_role("link", name="Reports")).to_be_visible()
        expect(own_page.get_by_role("button", name="Management")).to_have_count(0)
        expect(own_page.get_by_role("link", name="Users", exact=True)).to_have_count(0)
        expect(own_page.get_by_role("link", name="Configuration")).to_have_count(0)
        response = own_page.goto(live_site.url + "/management/failover/")
        assert response.status == 403
        expect(own_page.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        context.close()


def test_a_password_confirmation_that_differs_is_refused_with_its_error(page, live_site):
    open_new_user_form(page, live_site)
    fill_new_user(page, "otto", NEW_PASSWORD, NEW_PASSWORD + " typo")

    expect(page).to_have_url(live_site.url + "/users/new/")
    error = page.get_by_text("The two entries differ; type the same password twice.")
    expect(error).to_be_visible()
    expect(page.get_by_label("Username")).to_have_value("otto")
    page.goto(live_site.url + "/users/?q=otto")
    expect(page.get_by_test_id("no-users")).to_have_text("No user matches “otto”.")
