"""Finding and exporting the audit trail: one filter behind its page, its CSV export and the API.

Like the reports' filters (appliance.reports), the filters arrive as query
parameters and are parsed by a form, so the page shows errors beside each field
and the API answers them as a 400. Times without a zone are in the site's time
zone (the middleware activates it).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django import forms
from django.db.models import QuerySet

from appliance.models import AuditEvent
from appliance.reports import neutralise_formula

PAGE_SIZE = 50
CSV_HEADER = ["time", "site", "user", "action", "detail"]
TIME_HELP = "A date and time in the site's time zone (YYYY-MM-DD HH:MM), or ISO 8601 with a zone."


class AuditFilterForm(forms.Form):
    """The audit trail's filters. Every field is optional; an empty form lists everything."""

    user = forms.CharField(
        label="User",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"list": "audit-users"}),
        help_text="Who did it: a user name, or “system” for the site itself.",
    )
    action = forms.ChoiceField(
        label="Action", required=False, help_text="What was done, e.g. failover.role_changed."
    )
    since = forms.DateTimeField(
        label="From",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": f"Not a time. {TIME_HELP}"},
        help_text="On or after this time.",
    )
    until = forms.DateTimeField(
        label="To",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": f"Not a time. {TIME_HELP}"},
        help_text="On or before this time.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = recorded_actions()
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions)]
        self.fields["action"].error_messages["invalid_choice"] = (
            "%(value)s is not an action in this audit trail; choose one of "
            + (", ".join(actions) or "none yet")
            + "."
        )

    def clean_user(self) -> str:
        return self.cleaned_data["user"].strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("since", "until"):
            # In UTC: a time given with any offset compares the same, and PostgreSQL
            # takes no offset beyond ±15:59 (the form accepts any).
            if cleaned.get(name) is not None:
                cleaned[name] = cleaned[name].astimezone(dt.UTC)
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "“To” is before “From”; pick a later time or swap them.")
        return cleaned

    def filter(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow `events` by the cleaned filters, newest first. Call only on a valid form."""
        data = self.cleaned_data
        if data.get("user"):
            events = events.filter(actor__iexact=data["user"])
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("since"):
            events = events.filter(at__gte=data["since"])
        if data.get("until"):
            events = events.filter(at__lte=data["until"])
        return events.order_by("-at", "-id")

    def describe(self) -> str:
        """The filters in words, for the audit record of an export."""
        parts = [f"{name}={value}" for name, value in self.cleaned_data.items() if value]
        return ", ".join(parts) or "no filter"


def recorded_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


def recorded_users() -> list[str]:
    return list(AuditEvent.objects.order_by("actor").values_list("actor", flat=True).distinct())


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """The events as CSV lines, streamed; cells a spreadsheet would run are neutralised."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for event in events.iterator(chunk_size=1000):
        yield writer.writerow(
            [
                event.at.isoformat(),
                neutralise_formula(event.site),
                neutralise_formula(event.actor),
                event.action,
                neutralise_formula(event.detail),
            ]
        )
