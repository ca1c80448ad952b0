"""In a real browser: reports generated on the site are paged, filtered, exported and opened."""

import csv
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.processes]
REPORT_COUNT = 120
CSV_HEADER = [
    "uuid",
    "started_at",
    "ended_at",
    "duration_seconds",
    "representative",
    "customer_name",
    "computer_name",
    "outcome",
    "has_recording",
    "chat_transcript",
]
# Asks the site's own database which reports ended with each outcome: the oracle the
# pages are checked against, read outside the browser.
UUIDS_BY_OUTCOME = """
import json
from appliance.models import Report
found = {}
for uuid, outcome in Report.objects.values_list("uuid", "outcome"):
    found.setdefault(outcome, []).append(str(uuid))
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def uuids_by_outcome(live_site) -> dict[str, set[str]]:
    live_site.manage("generate_reports", str(REPORT_COUNT), "--seed", "7")
    found = json.loads(live_site.manage("shell", "--no-imports", "-c", UUIDS_BY_OUTCOME).stdout)
    return {outcome: set(uuids) for outcome, uuids in found.items()}


def open_reports(page, site) -> None:
    log_in(page, site)
    page.get_by_role("navigation").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports")).to_be_visible()


def test_the_reports_are_listed_fifty_to_a_page(page, live_site, uuids_by_outcome):
    open_reports(page, live_site)
    rows = page.get_by_test_id("report-row")
    pages = page.get_by_test_id("reports-pagination")
    expect(page.get_by_test_id("reports-count")).to_have_text("Showing 1 to 50 of 120 reports.")
    expect(rows).to_have_count(50)
    expect(pages).to_contain_text("Page 1 of 3")
    first_on_page_one = rows.first.get_by_role("link").get_attribute("href")

    pages.get_by_role("link", name="Next").click()
    expect(page.get_by_test_id("reports-count")).to_have_text("Showing 51 to 100 of 120 reports.")
    expect(pages).to_contain_text("Page 2 of 3")
    expect(rows).to_have_count(50)
    expect(rows.first.get_by_role("link")).not_to_have_attribute("href", first_on_page_one)

    pages.get_by_role("link", name="Last").click()
    expect(page.get_by_test_id("reports-count")).to_have_text("Showing 101 to 120 of 120 reports.")
    expect(pages).to_contain_text("Page 3 of 3")
    expect(rows).to_have_count(20)
    expect(pages.get_by_role("link", name="Next")).to_have_count(0)


def test_filtering_by_outcome_narrows_the_list_and_the_csv_export(
    page, live_site, uuids_by_outcome
):
    escalated = uuids_by_outcome["escalated"]
    assert 0 < len(escalated) < 50, "the seed should give a one-page share of escalations"
    open_reports(page, live_site)

    page.get_by_label("Outcome").select_option(label="Escalated")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/reports/\?.*\boutcome=escalated\b"))
    expect(page.get_by_test_id("reports-count")).to_have_text(
        f"Showing 1 to {len(escalated)} of {len(escalated)} reports matching the filters."
    )
    rows = page.get_by_test_id("report-row")
    expect(rows).to_have_count(len(escalated))
    expect(rows.filter(has_not_text="Escalated")).to_have_count(0)

    export = page.get_by_test_id("reports-export")
    expect(export).to_have_text(f"Export {len(escalated)} as CSV")
    with page.expect_download() as download_info:
        export.click()
    download = download_info.value
    assert download.suggested_filename.startswith("reports-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="", encoding="utf-8") as exported:
        header, *lines = list(csv.reader(exported))
    assert header == CSV_HEADER
    assert {line[0] for line in lines} == escalated
    assert len(lines) == len(escalated)
    assert {line[header.index("outcome")] for line in lines} == {"escalated"}


def test_opening_a_report_shows_its_detail(page, live_site, uuids_by_outcome):
    open_reports(page, live_site)
    row = page.get_by_test_id("report-row").first
    customer = row.get_by_role("cell").nth(2).inner_text()
    representative = row.get_by_role("cell").nth(3).inner_text()

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/reports/[0-9a-f-]{36}/$"))
    uuid = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert uuid in set().union(*uuids_by_outcome.values())
    expect(page.get_by_role("heading", name=f"Support session with {customer}")).to_be_visible()
    fields = page.get_by_test_id("report-fields")
    expect(fields).to_contain_text(customer)
    expect(fields).to_contain_text(representative)
    expect(fields).to_contain_text(uuid)
    page.get_by_role("navigation", name="breadcrumb").get_by_role("link", name="Reports").click()
    expect(page).to_have_url(live_site.url + "/reports/")
