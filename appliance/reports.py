"""Finding and exporting reports: the one filter behind the list, the CSV export and the API.

Filters arrive as query parameters from a browser or an API client, so they are
parsed by a form: the page shows its errors next to each field, the API turns
them into a 400 with the same sentences. Dates are calendar days in the site's
time zone (the middleware activates it), because that is what an administrator
means by "reports from 3 March".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404
from django.utils import timezone

from appliance.models import Report

PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000
EXPORT_ROWS_PER_WRITE = 500
DATE_FORMAT_HELP = "Enter a date as YYYY-MM-DD, e.g. 2025-03-31."

SORT_NEWEST_FIRST = "-started_at"
SORT_OLDEST_FIRST = "started_at"
SORT_ORDERINGS = {
    SORT_NEWEST_FIRST: ["-started_at", "-id"],
    SORT_OLDEST_FIRST: ["started_at", "id"],
}

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

# A spreadsheet treats a cell starting with one of these as a formula (OWASP
# "CSV injection"); tab and carriage return also start one in some programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ReportFilterForm(forms.Form):
    """The report filters. Every field is optional; an empty form lists everything."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=150,
        help_text="Part of a customer, representative or computer name.",
    )
    representative = forms.CharField(
        label="Representative",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"list": "representative-names"}),
        help_text="The representative's exact name (upper or lower case).",
    )
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[("", "Any outcome"), *Report.Outcome.choices],
        help_text="How the session ended.",
        error_messages={
            "invalid_choice": "%(value)s is not an outcome; choose one of "
            + ", ".join(Report.Outcome.values)
            + "."
        },
    )
    started_from = forms.DateField(
        label="Started on or after",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": DATE_FORMAT_HELP},
        help_text="A date in the site's time zone, YYYY-MM-DD.",
    )
    started_to = forms.DateField(
        label="Started on or before",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": DATE_FORMAT_HELP},
        help_text="A date in the site's time zone, YYYY-MM-DD; the whole day is included.",
    )
    sort = forms.ChoiceField(
        label="Order",
        required=False,
        choices=[(SORT_NEWEST_FIRST, "Newest first"), (SORT_OLDEST_FIRST, "Oldest first")],
        help_text="By start time; newest first unless you choose otherwise.",
        error_messages={
            "invalid_choice": f"%(value)s is not an order; use {SORT_NEWEST_FIRST} "
            f"(newest first) or {SORT_OLDEST_FIRST} (oldest first)."
        },
    )

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()

    def clean_representative(self) -> str:
        return self.cleaned_data["representative"].strip()

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or SORT_NEWEST_FIRST

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("started_from"), cleaned.get("started_to")
        if start and end and end < start:
            self.add_error(
                "started_to",
                f"This date ({end:%Y-%m-%d}) is before the start date ({start:%Y-%m-%d}); "
                "pick the same day or a later one.",
            )
        return cleaned

    def filter(self, reports: QuerySet[Report]) -> QuerySet[Report]:
        """Narrow and order `reports` by the cleaned filters. Call only on a valid form."""
        return filter_reports(reports, self.cleaned_data)

    def is_filtered(self) -> bool:
        """Whether any filter (not just the order) narrows the list."""
        return self.is_bound and any(
            self.cleaned_data.get(name) for name in self.fields if name != "sort"
        )


def filter_reports(reports: QuerySet[Report], filters: dict[str, Any]) -> QuerySet[Report]:
    """Apply cleaned filter values (as ReportFilterForm produces them) to a queryset."""
    if text := filters.get("q"):
        reports = reports.filter(
            Q(customer_name__icontains=text)
            | Q(representative__icontains=text)
            | Q(computer_name__icontains=text)
        )
    if representative := filters.get("representative"):
        reports = reports.filter(representative__iexact=representative)
    if outcome := filters.get("outcome"):
        reports = reports.filter(outcome=outcome)
    if start := filters.get("started_from"):
        reports = reports.filter(started_at__gte=start_of_day(start))
    if end := filters.get("started_to"):
        reports = reports.filter(started_at__lt=start_of_day(end + dt.timedelta(days=1)))
    return reports.order_by(*SORT_ORDERINGS[filters.get("sort") or SORT_NEWEST_FIRST])


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the active (site) time zone, as an aware datetime."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def neutralise_formula(text: str) -> str:
    """Prefix an apostrophe to a cell a spreadsheet would run as a formula."""
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_row(report: Report, tz: dt.tzinfo) -> list[str]:
    """One report as CSV cells, times in ISO 8601 with their offset from UTC.

    `tz` is passed in rather than read from the active time zone because a
    streamed export is written after the middleware has deactivated it.
    """
    duration = report.duration
    return [
        str(report.uuid),
        report.started_at.astimezone(tz).isoformat(),
        report.ended_at.astimezone(tz).isoformat() if report.ended_at else "",
        str(int(duration.total_seconds())) if duration is not None else "",
        neutralise_formula(report.representative),
        neutralise_formula(report.customer_name),
        neutralise_formula(report.computer_name),
        report.outcome,
        "yes" if report.recording else "no",
        neutralise_formula(report.chat_transcript),
    ]


def csv_rows(reports: QuerySet[Report], tz: dt.tzinfo) -> Iterator[list[str]]:
    """The header, then one row per report, reading the database in chunks.

    `.iterator()` keeps memory flat however many reports match: a 100 000-row
    export never holds more than one chunk of model instances.
    """
    yield CSV_HEADER
    for report in reports.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield csv_row(report, tz)


def csv_text(reports: QuerySet[Report], tz: dt.tzinfo) -> Iterator[str]:
    """The CSV document in pieces of EXPORT_ROWS_PER_WRITE rows.

    One piece per row would cost the server a socket write per report; one
    piece for everything would hold the whole file in memory.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for number, row in enumerate(csv_rows(reports, tz), start=1):
        writer.writerow(row)
        if number % EXPORT_ROWS_PER_WRITE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def describe_filters(filters: dict[str, Any]) -> str:
    """The active filters in words, for the audit trail of an export."""
    parts = [f"{name}={value}" for name, value in filters.items() if value and name != "sort"]
    return ", ".join(parts) or "no filters"


def representative_names(limit: int = 500) -> list[str]:
    """Distinct representative names, for the filter's suggestions (indexed, so cheap)."""
    names = Report.objects.order_by("representative").values_list("representative", flat=True)
    return list(names.distinct()[:limit])


def recording_response(report: Report) -> FileResponse:
    """The report's recording as a download, for the page and the API alike.

    Sent as an attachment so that an uploaded HTML or SVG file cannot run in
    the portal's origin. Raises Http404 with the reason when there is none.
    """
    if not report.recording:
        raise Http404("This report has no recording.")
    try:
        handle = report.recording.open("rb")
    except FileNotFoundError:
        raise Http404(
            f"The recording file {report.recording.name} is missing from storage."
        ) from None
    return FileResponse(handle, as_attachment=True, filename=Path(report.recording.name).name)
