from __future__ import annotations

import datetime as dt
import ipaddress

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Fieldset, Layout, Submit
from django import forms
from django.core.validators import validate_email

from appliance.reports import start_of_day
from appliance.validators import validate_host
from failover.models import (
    BANDWIDTH_CHOICES,
    AlertSettings,
    BackupSettings,
    FailoverEvent,
    SharedIP,
)
from failover.system.probe import Target


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


# The tightest supported setting: two missed polls at the shortest interval (1 s).
MIN_TIMEOUT_SECONDS = 2
TIMEOUT_PRESETS = [
    (10, "10 seconds"),
    (30, "30 seconds"),
    (60, "1 minute"),
    (120, "2 minutes"),
    (300, "5 minutes"),
    (600, "10 minutes"),
    (1800, "30 minutes"),
    (3600, "1 hour"),
]


class SharedIPForm(forms.ModelForm):
    class Meta:
        model = SharedIP
        fields = ["enabled", "address", "interface"]
        labels = {"enabled": "Shared IP", "address": "Address", "interface": "Interface"}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["address"].widget.attrs["placeholder"] = "192.0.2.10/24"
        self.fields["interface"].widget.attrs["placeholder"] = "eth0"
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_address(self) -> str:
        text = self.cleaned_data["address"].strip()
        if not text:
            return text
        try:
            address = ipaddress.ip_interface(text)
        except ValueError:
            raise forms.ValidationError(
                f"“{text}” is not an address with a prefix. Enter one such as 192.0.2.10/24."
            ) from None
        if "/" not in text:
            raise forms.ValidationError("Add the prefix length, e.g. 192.0.2.10/24.")
        return address.with_prefixlen

    def clean_interface(self) -> str:
        name = self.cleaned_data["interface"].strip()
        if name and (len(name) > 15 or not all(c.isalnum() or c in "-_.@" for c in name)):
            raise forms.ValidationError(
                "Enter an interface name such as eth0 (at most 15 characters)."
            )
        return name

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("enabled") and not (cleaned.get("address") and cleaned.get("interface")):
            raise forms.ValidationError(
                "To enable the shared IP, enter its address with prefix and the interface it "
                "lives on."
            )
        return cleaned


class FailoverSettingsForm(forms.ModelForm):
    """Automatic failover: part of the backup settings, saved with the same button."""

    class Meta:
        model = BackupSettings
        fields = [
            "automatic_failover",
            "poll_interval_seconds",
            "primary_timeout_seconds",
            "connectivity_test_ips",
        ]
        labels = {
            "automatic_failover": "Enable Automatic Failover",
            "poll_interval_seconds": "Poll interval (seconds)",
            "primary_timeout_seconds": "Primary Site Instance Timeout (seconds)",
            "connectivity_test_ips": "Network Connectivity Test IPs",
        }
        widgets = {
            "connectivity_test_ips": forms.Textarea(
                attrs={"rows": 3, "placeholder": "198.51.100.1\n203.0.113.9:443"}
            )
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["primary_timeout_seconds"].widget = forms.NumberInput(
            attrs={"list": "timeout-presets", "min": MIN_TIMEOUT_SECONDS, "max": 86400}
        )
        self.fields["primary_timeout_seconds"].help_text = (
            "How long polls may fail before the backup tests its own network. Presets: "
            + ", ".join(label for _, label in TIMEOUT_PRESETS)
            + f"; or any number of seconds from {MIN_TIMEOUT_SECONDS} (with a 1 s poll, "
            "for tight setups on one network)."
        )
        # Left out of a form (e.g. by a script), these keep their saved values.
        self.fields["poll_interval_seconds"].required = False
        self.fields["primary_timeout_seconds"].required = False
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_poll_interval_seconds(self) -> int:
        value = self.cleaned_data["poll_interval_seconds"]
        if value is None:
            return self.instance.poll_interval_seconds
        if not 1 <= value <= 3600:
            raise forms.ValidationError("Poll every 1 to 3600 seconds.")
        return value

    def clean_primary_timeout_seconds(self) -> int:
        value = self.cleaned_data["primary_timeout_seconds"]
        if value is None:
            return self.instance.primary_timeout_seconds
        if not MIN_TIMEOUT_SECONDS <= value <= 86400:
            raise forms.ValidationError(
                f"Enter a timeout from {MIN_TIMEOUT_SECONDS} seconds to 86400 (a day)."
            )
        poll = self.cleaned_data.get("poll_interval_seconds") or self.instance.poll_interval_seconds
        if value < 2 * poll:
            raise forms.ValidationError(
                f"Enter a timeout of at least two poll intervals ({2 * poll} s): one lost "
                "answer must not fail the primary over."
            )
        return value

    def clean_connectivity_test_ips(self) -> str:
        lines = [
            line.strip()
            for line in self.cleaned_data["connectivity_test_ips"].split()
            if line.strip()
        ]
        problems = []
        for line in lines:
            try:
                Target.parse(line)
            except ValueError:
                problems.append(line)
        if problems:
            raise forms.ValidationError(
                f"Not an IP address or address:port: {', '.join(problems)}. Enter one per line, "
                "e.g. 198.51.100.1 or 203.0.113.9:443."
            )
        return "\n".join(lines)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("automatic_failover"):
            if not SharedIP.load().is_configured:
                self.add_error(
                    "automatic_failover",
                    "Automatic failover does not work without a shared IP: enable the shared IP "
                    "(address and interface) on both sites first.",
                )
            if not cleaned.get("connectivity_test_ips"):
                self.add_error(
                    "connectivity_test_ips",
                    "Enter at least one test IP: without one, the backup cannot tell a dead "
                    "primary from its own broken network, and never fails over.",
                )
        return cleaned


class BecomePrimaryForm(forms.Form):
    sync_first = forms.BooleanField(
        required=False,
        label="Pull a final data sync from the primary first (when the primary is live and its "
        "data uncorrupted)",
    )


class BecomeBackupForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Force: step down even if the other site cannot be reached",
    )


class AlertSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Webhook URL",
        help_text="Receives a JSON POST for each alert.",
    )

    class Meta:
        model = AlertSettings
        fields = ["email_recipients", "webhook_url"]
        labels = {"email_recipients": "E-mail recipients", "webhook_url": "Webhook URL"}
        widgets = {"email_recipients": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_email_recipients(self) -> str:
        addresses = self.cleaned_data["email_recipients"].split()
        wrong = []
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                wrong.append(address)
        if wrong:
            raise forms.ValidationError(
                f"Not an e-mail address: {', '.join(wrong)}. Enter one address per line."
            )
        return "\n".join(addresses)
