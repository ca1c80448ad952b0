"""In a real browser: the two sites of the `make run` pair, side by side in one browser.

Cookies belong to a host, not to a port, so two sites on 127.0.0.1 would share
them; each site's cookie names carry its name, so one login does not log the
other out.
"""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, log_in
from tests.sites import Site

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    base = tmp_path_factory.mktemp("two-sites")
    sites = [Site("site-a", base), Site("site-b", base)]
    try:
        for site in sites:
            site.manage("ensureadmin", "admin", stdin=ADMIN_PASSWORD + "\n")
            site.launch()
        for site in sites:
            site.wait_ready()
        yield sites
    finally:
        for site in sites:
            site.destroy()


def test_one_browser_stays_logged_into_both_sites(browser, two_sites):
    site_a, site_b = two_sites
    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        log_in(page, site_a)
        expect(page).to_have_url(site_a.url + "/status/")
        log_in(page, site_b)
        expect(page).to_have_url(site_b.url + "/status/")
        expect(page.get_by_role("navigation")).to_contain_text("site-b")

        page.goto(site_a.url + "/status/")
        expect(page).to_have_url(site_a.url + "/status/")
        expect(page.get_by_role("navigation")).to_contain_text("site-a")
        page.goto(site_b.url + "/status/")
        expect(page).to_have_url(site_b.url + "/status/")

        names = {cookie["name"] for cookie in context.cookies()}
        assert {"sessionid-site-a", "sessionid-site-b"} <= names
        assert {"csrftoken-site-a", "csrftoken-site-b"} <= names
    finally:
        context.close()


def test_logging_out_of_one_site_leaves_the_other_logged_in(browser, two_sites):
    site_a, site_b = two_sites
    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        log_in(page, site_a)
        log_in(page, site_b)
        expect(page).to_have_url(site_b.url + "/status/")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(site_b.url + "/login")
        page.goto(site_a.url + "/status/")
        expect(page).to_have_url(site_a.url + "/status/")
    finally:
        context.close()
