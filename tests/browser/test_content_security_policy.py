"""In a real browser: every page works under the site's Content Security Policy.

Chromium reports each script, style or image the policy blocks on the console;
a page that needed an inline script or style would report one here.
"""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

PAGES = [
    "/login",
    "/status/",
    "/configuration/",
    "/users/",
    "/reports/",
    "/management/api-accounts/",
    "/management/audit/",
    "/management/security/",
    "/management/failover/",
    "/management/failover/history/",
]


def test_no_page_breaks_the_policy_and_each_says_it(page, live_site):
    blocked = []
    page.on(
        "console",
        lambda message: (
            blocked.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    log_in(page, live_site)
    expect(page).to_have_url(live_site.url + "/status/")
    for path in PAGES:
        answer = page.goto(live_site.url + path)
        assert answer.ok, path
        assert "script-src 'self'" in answer.headers["content-security-policy"], path
        # The page's own script ran: Bootstrap's dropdown opens the Management menu.
        page.get_by_role("button", name="Management").click()
        expect(page.get_by_role("link", name="Security")).to_be_visible()
    assert blocked == []
