from __future__ import annotations

import datetime as dt

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Fieldset, Layout, Submit
from django import forms

from appliance.reports import start_of_day
from appliance.validators import validate_host
from failover.models import BANDWIDTH_CHOICES, BackupSettings, FailoverEvent


class EstablishForm(forms.Form):
    backup_host = forms.CharField(
        label="Host name or IP address",
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "backup.example.com or 192.0.2.20"}),
    )
    backup_port = forms.IntegerField(label="TLS port", min_value=1, max_value=65535, initial=443)
    reverse_host = forms.CharField(
        label="Host name or IP address of this site",
        max_length=255,
        help_text="How the backup reaches this site.",
        widget=forms.TextInput(attrs={"placeholder": "primary.example.com or 192.0.2.10"}),
    )
    reverse_port = forms.IntegerField(
        label="TLS port of this site", min_value=1, max_value=65535, initial=443
    )
    backup_fingerprint = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset("New Backup Site Connection Details", "backup_host", "backup_port"),
            Fieldset(
                "Reverse Connection Details to this Primary Site", "reverse_host", "reverse_port"
            ),
            "backup_fingerprint",
        )
        self.helper.add_input(Submit("establish", "Establish Relationship"))

    def clean_backup_host(self) -> str:
        return validate_host(self.cleaned_data["backup_host"])

    def clean_reverse_host(self) -> str:
        return validate_host(self.cleaned_data["reverse_host"])


class BreakForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Force: break on this site even if the other site cannot be reached",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class HistoryFilterForm(forms.Form):
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any event"), *FailoverEvent.Kind.choices]
    )
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity"), *FailoverEvent.Severity.choices]
    )
    since = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    until = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "“To” is before “From”; swap the dates.")
        return cleaned

    def filter(self, events):
        data = self.cleaned_data
        if data.get("kind"):
            events = events.filter(kind=data["kind"])
        if data.get("severity"):
            events = events.filter(severity=data["severity"])
        # Whole days in the site's time zone, fixed now: a CSV export is read after
        # the request's time zone is gone.
        if data.get("since"):
            events = events.filter(at__gte=start_of_day(data["since"]))
        if data.get("until"):
            events = events.filter(at__lt=start_of_day(data["until"] + dt.timedelta(days=1)))
        return events


class BackupSettingsForm(forms.ModelForm):
    class Meta:
        model = BackupSettings
        fields = [
            "enable_backup_operations",
            "sync_interval",
            "sync_every_hours",
            "sync_time",
            "sync_weekday",
            "bandwidth_limit",
        ]
        labels = {
            "enable_backup_operations": "Enable Backup Operations",
            "sync_interval": "Sync interval",
            "sync_every_hours": "Every N hours",
            "sync_time": "Time",
            "sync_weekday": "Day",
            "bandwidth_limit": "Data-Sync Bandwidth Limit",
        }
        widgets = {"sync_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        help_texts = {
            "bandwidth_limit": "A lower limit leaves more bandwidth for other traffic, "
            "but syncs take longer.",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bandwidth_limit"].choices = [("", "Unlimited"), *BANDWIDTH_CHOICES]
        self.fields["sync_every_hours"].required = False
        self.fields["sync_time"].required = False
        self.fields["sync_weekday"].required = False
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "enable_backup_operations",
            "sync_interval",
            Div("sync_every_hours", css_class="interval-field", data_interval="hours"),
            Div("sync_time", css_class="interval-field", data_interval="daily weekly"),
            Div("sync_weekday", css_class="interval-field", data_interval="weekly"),
            "bandwidth_limit",
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        interval = cleaned.get("sync_interval")
        kind = BackupSettings.Interval
        if interval == kind.EVERY_N_HOURS:
            hours = cleaned.get("sync_every_hours")
            if hours is None or not 2 <= hours <= 23:
                self.add_error(
                    "sync_every_hours",
                    "Enter a number of hours from 2 to 23 (for every hour, choose Every hour).",
                )
        else:
            cleaned["sync_every_hours"] = self.instance.sync_every_hours
        if interval in (kind.DAILY, kind.WEEKLY) and cleaned.get("sync_time") is None:
            self.add_error("sync_time", "Enter the time of day of the sync, e.g. 02:30.")
        elif interval not in (kind.DAILY, kind.WEEKLY):
            cleaned["sync_time"] = self.instance.sync_time
        if interval == kind.WEEKLY and cleaned.get("sync_weekday") in (None, ""):
            self.add_error("sync_weekday", "Choose the day of the week of the sync.")
        elif interval != kind.WEEKLY:
            cleaned["sync_weekday"] = self.instance.sync_weekday
        return cleaned


class SyncNowForm(forms.Form):
    full = forms.BooleanField(
        required=False, label="Full resync: send everything again, not only the changes"
    )
