"""In a real browser: Management > Audit trail, filtered by user, action and time, paged,
exported as CSV; the JSON API answers the same events."""

import csv
import io
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture(scope="module")
def trail(live_site):
    """60 settings changes by carol an hour ago and more, then two role changes by dave."""
    live_site.shell(
        "import datetime as dt\n"
        "from django.utils import timezone\n"
        "from appliance.models import AuditEvent\n"
        "now = timezone.now()\n"
        "for minute in range(60):\n"
        "    event = AuditEvent.record('carol', 'site_settings.changed', f'Change {minute}')\n"
        "    event.at = now - dt.timedelta(hours=1, minutes=minute)\n"
        "    event.save()\n"
        "for epoch in (7, 8):\n"
        "    AuditEvent.record('dave', 'failover.role_changed', f'epoch {epoch}')\n"
    )
    return live_site


def open_audit_trail(page, site) -> None:
    log_in(page, site)
    page.get_by_role("button", name="Management").click()
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()


def test_an_administrator_filters_pages_and_exports_the_audit_trail(page, trail):
    open_audit_trail(page, trail)

    page.get_by_label("User").fill("carol")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("audit-count")).to_have_text("60 events")
    expect(page.get_by_test_id("audit-row")).to_have_count(50)
    expect(page.get_by_test_id("audit-page")).to_have_text("Page 1 of 2")
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_test_id("audit-row")).to_have_count(10)
    expect(page.get_by_test_id("audit-row").last).to_contain_text("Change 59")

    with page.expect_download() as download:
        page.get_by_test_id("audit-export").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert rows[0] == ["time", "site", "user", "action", "detail"]
    assert len(rows) == 61
    assert {row[2] for row in rows[1:]} == {"carol"}

    page.get_by_label("User").fill("")
    page.get_by_label("Action").select_option("failover.role_changed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("audit-row")).to_have_count(2)
    expect(page.get_by_test_id("audit-user").filter(has_text="dave")).to_have_count(2)
    expect(page.get_by_test_id("audit-row").first).to_contain_text("epoch 8")


def test_a_time_window_narrows_the_trail_and_a_reversed_one_is_explained(page, trail):
    open_audit_trail(page, trail)
    half_an_hour_ago = trail.shell(
        "import datetime as dt\n"
        "from django.utils import timezone\n"
        "moment = timezone.localtime() - dt.timedelta(minutes=30)\n"
        "print(moment.strftime('%Y-%m-%dT%H:%M'))"
    ).strip()
    page.get_by_label("From", exact=True).fill(half_an_hour_ago)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"since="))
    expect(page.get_by_test_id("audit-user").filter(has_text="dave")).to_have_count(2)
    users = page.get_by_test_id("audit-user").all_inner_texts()
    assert "dave" in users and "carol" not in users

    page.get_by_label("To", exact=True).fill("2000-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("“To” is before “From”")).to_be_visible()
    expect(page.get_by_test_id("audit-row")).to_have_count(0)


def test_the_api_answers_the_same_events_to_the_signed_in_administrator(page, trail):
    log_in(page, trail)
    answer = page.request.get(trail.url + "/api/v1/audit/?user=dave")
    assert answer.status == 200
    body = json.loads(answer.text())
    assert [event["detail"] for event in body["results"]] == ["epoch 8", "epoch 7"]
    assert all(event["action"] == "failover.role_changed" for event in body["results"])
