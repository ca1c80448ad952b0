"""In a real browser: the DNS swing's settings, its Test button and the hooks card.

One real site (the browser conftest's `live_site`) and a real Knot server, both
on loopback. The Test button asks the server with the key typed in; the secret
is stored encrypted and the page never shows it again.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.dns_server import KEY_NAME, NAME, ZONE, Knot, make_secret, require_knot
from tests.sites import Site, free_port

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def knot():
    require_knot()
    with Knot("127.0.0.1", free_port()) as server:
        yield server


def open_failover(page, site: Site) -> None:
    log_in(page, site)
    expect(page).to_have_url(site.url + "/status/")
    page.goto(site.url + "/management/failover/")


def fill(form, knot: Knot, secret: str) -> None:
    form.get_by_label("DNS swing").check()
    form.get_by_label("DNS server").fill("127.0.0.1")
    form.get_by_label("Port").fill(str(knot.port))
    form.get_by_label("Zone").fill(ZONE)
    form.get_by_label("Name", exact=True).fill(NAME)
    form.get_by_label("This site's IPv4 address (A)").fill("198.51.100.11")
    form.get_by_label("TSIG key name").fill(KEY_NAME)
    form.get_by_label("TSIG secret").fill(secret)


def saved(site: Site) -> dict:
    return json.loads(
        site.shell(
            "import json\nfrom failover.models import DNSSwing\ns = DNSSwing.load()\n"
            "print(json.dumps({'enabled': s.enabled, 'name': s.name, "
            "'secret': s.encrypted_secret and s.reveal_secret()}))"
        )
    )


def test_the_test_button_names_a_wrong_secret_and_saving_keeps_the_right_one_hidden(
    page, live_site, knot
):
    open_failover(page, live_site)
    form = page.get_by_test_id("dns-form")
    wrong = make_secret()
    fill(form, knot, wrong)
    serial = knot.serial()
    form.get_by_role("button", name="Test").click()
    expect(form).to_contain_text(f"rejected the signature made with TSIG key {KEY_NAME} (BADSIG)")
    expect(form).to_contain_text("the secret entered here differs from the server's")
    assert wrong not in page.content()
    assert saved(live_site)["enabled"] is False, "Test saved the settings"

    form = page.get_by_test_id("dns-form")
    fill(form, knot, knot.secret)
    form.get_by_role("button", name="Test").click()
    expect(page.get_by_test_id("dns-test-result")).to_contain_text(
        f"serves zone {ZONE} at serial {serial} and accepts TSIG key {KEY_NAME}"
    )
    assert knot.serial() == serial, "Test changed the zone"

    form = page.get_by_test_id("dns-form")
    fill(form, knot, knot.secret)
    form.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"DNS swing enabled: {NAME} points here whenever this site becomes primary."
    )
    assert saved(live_site) == {"enabled": True, "name": NAME, "secret": knot.secret}
    page.reload()
    secret_field = page.get_by_test_id("dns-form").get_by_label("TSIG secret")
    expect(secret_field).to_have_value("")
    expect(secret_field).to_have_attribute("placeholder", "(saved; leave empty to keep it)")
    assert knot.secret not in page.content()


def test_the_hooks_card_says_where_hooks_come_from(page, live_site):
    open_failover(page, live_site)
    card = page.get_by_test_id("hooks")
    expect(card).to_contain_text("FAILOVER_HOOKS_DIR")
    expect(page.get_by_test_id("hooks-none")).to_contain_text("No hooks")
    expect(card.locator("input, textarea")).to_have_count(0)
