from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
import re
from pathlib import Path

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Fieldset, Layout, Submit
from django import forms
from django.core.validators import validate_email

from appliance.reports import start_of_day
from appliance.validators import is_hostname, validate_host
from failover import hooks, webhook
from failover.models import (
    BANDWIDTH_CHOICES,
    AlertSettings,
    BackupSettings,
    DNSSwing,
    FailoverEvent,
    ScheduledBackup,
    SharedIP,
)
from failover.pair_settings import BACKUP_SETTINGS_FIELDS
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
            "synchronous_replication",
            "synchronous_timeout_seconds",
            "bandwidth_limit",
        ]
        labels = {
            "enable_backup_operations": "Enable Backup Operations",
            "sync_interval": "Sync interval",
            "sync_every_hours": "Every N hours",
            "sync_time": "Time",
            "sync_weekday": "Day",
            "synchronous_replication": "Synchronous replication",
            "synchronous_timeout_seconds": "Wait for the backup at most (seconds)",
            "bandwidth_limit": "Data-Sync Bandwidth Limit",
        }
        widgets = {"sync_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        help_texts = {
            "sync_interval": "Continuously: the backup follows each change as the primary "
            "commits it, within about a second. The other intervals sync on a schedule; what "
            "the primary writes between two syncs is lost if it dies.",
            "synchronous_replication": "A write on the primary is acknowledged to its client "
            "only once the backup has committed it, so no acknowledged write is lost with the "
            "primary. The cost: every write waits for a round trip to the backup and its "
            "commit (milliseconds on a local network). If the backup does not confirm in time, "
            "the primary goes on alone, says so, and waits again once the backup has caught up.",
            "synchronous_timeout_seconds": "From 1 to 60 seconds.",
            "bandwidth_limit": "A lower limit leaves more bandwidth for other traffic, "
            "but syncs take longer.",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bandwidth_limit"].choices = [("", "Unlimited"), *BANDWIDTH_CHOICES]
        self.fields["sync_every_hours"].required = False
        self.fields["sync_time"].required = False
        self.fields["sync_weekday"].required = False
        # Left out of a form (e.g. by a script), it keeps its saved value.
        self.fields["synchronous_timeout_seconds"].required = False
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "enable_backup_operations",
            "sync_interval",
            Div("sync_every_hours", css_class="interval-field", data_interval="hours"),
            Div("sync_time", css_class="interval-field", data_interval="daily weekly"),
            Div("sync_weekday", css_class="interval-field", data_interval="weekly"),
            Div("synchronous_replication", css_class="interval-field", data_interval="continuous"),
            Div(
                "synchronous_timeout_seconds",
                css_class="interval-field",
                data_interval="continuous",
            ),
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
        if interval != kind.CONTINUOUS:
            if cleaned.get("synchronous_replication"):
                self.add_error(
                    "synchronous_replication",
                    "Synchronous replication needs the sync interval Continuously: choose it, "
                    "or clear this box.",
                )
            cleaned["synchronous_timeout_seconds"] = self.instance.synchronous_timeout_seconds
        else:
            timeout = cleaned.get("synchronous_timeout_seconds")
            if timeout is None:
                cleaned["synchronous_timeout_seconds"] = self.instance.synchronous_timeout_seconds
            elif not 1 <= timeout <= 60:
                self.add_error(
                    "synchronous_timeout_seconds",
                    "Enter how many seconds a write may wait for the backup, from 1 to 60.",
                )
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
        fields = ["enabled", "address", "address6", "interface"]
        labels = {
            "enabled": "Shared IP",
            "address": "IPv4 address",
            "address6": "IPv6 address",
            "interface": "Interface",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["address"].widget.attrs["placeholder"] = "192.0.2.10/24"
        self.fields["address6"].widget.attrs["placeholder"] = "2001:db8::10/64"
        self.fields["interface"].widget.attrs["placeholder"] = "eth0"
        self.fields[
            "address6"
        ].help_text = (
            "Optional; with its prefix. Both addresses move together; either may be empty."
        )
        self.helper = FormHelper()
        self.helper.form_tag = False

    def _address(self, field: str, version: int, example: str) -> str:
        text = self.cleaned_data[field].strip()
        if not text:
            return text
        try:
            address = ipaddress.ip_interface(text)
        except ValueError:
            raise forms.ValidationError(
                f"“{text}” is not an address with a prefix. Enter one such as {example}."
            ) from None
        if address.version != version:
            other = "address6" if version == 4 else "address"
            raise forms.ValidationError(
                f"“{text}” is an IPv{address.version} address: enter it under "
                f"{self.fields[other].label}, and here an IPv{version} address such as {example}."
            )
        if "/" not in text:
            raise forms.ValidationError(f"Add the prefix length, e.g. {example}.")
        ip = address.ip
        if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
            raise forms.ValidationError(
                f"{ip} cannot be shared (a multicast, loopback, link-local or unspecified "
                f"address). Enter a unicast address such as {example}."
            )
        return address.with_prefixlen

    def clean_address(self) -> str:
        return self._address("address", 4, "192.0.2.10/24")

    def clean_address6(self) -> str:
        return self._address("address6", 6, "2001:db8::10/64")

    def clean_interface(self) -> str:
        name = self.cleaned_data["interface"].strip()
        if name and (len(name) > 15 or not all(c.isalnum() or c in "-_.@" for c in name)):
            raise forms.ValidationError(
                "Enter an interface name such as eth0 (at most 15 characters)."
            )
        return name

    def clean(self) -> dict:
        cleaned = super().clean()
        has_address = cleaned.get("address") or cleaned.get("address6")
        if cleaned.get("enabled") and not (has_address and cleaned.get("interface")):
            raise forms.ValidationError(
                "To enable the shared IP, enter an address with its prefix (IPv4, IPv6 or one "
                "of each) and the interface they live on."
            )
        return cleaned


KEY_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


class DNSSwingForm(forms.ModelForm):
    """The DNS swing's settings. The secret is never shown again: empty keeps the saved one."""

    # Its fields' names and ids ("dns-enabled") differ from the Shared IP form's on the page.
    PREFIX = "dns"

    secret = forms.CharField(
        required=False,
        label="TSIG secret",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Base64, as the server's key file shows it. Stored encrypted and never "
        "shown again; leave empty to keep the saved secret.",
    )

    class Meta:
        model = DNSSwing
        fields = [
            "enabled",
            "server",
            "port",
            "zone",
            "name",
            "ttl",
            "ipv4",
            "ipv6",
            "key_name",
            "algorithm",
        ]
        labels = {
            "enabled": "DNS swing",
            "server": "DNS server",
            "port": "Port",
            "zone": "Zone",
            "name": "Name",
            "ttl": "TTL (seconds)",
            "ipv4": "This site's IPv4 address (A)",
            "ipv6": "This site's IPv6 address (AAAA)",
            "key_name": "TSIG key name",
            "algorithm": "TSIG algorithm",
        }

    def __init__(self, *args: object, testing: bool = False, **kwargs: object) -> None:
        """`testing`: for the Test button, which needs the server and the key even while
        the swing is disabled."""
        super().__init__(*args, **kwargs)
        self.testing = testing
        placeholders = {
            "server": "192.0.2.53 or ns1.example.com",
            "zone": "example.com",
            "name": "support.example.com",
            "ipv4": "192.0.2.11",
            "ipv6": "2001:db8::11",
            "key_name": "failover-key",
        }
        for name, text in placeholders.items():
            self.fields[name].widget.attrs["placeholder"] = text
        self.fields[
            "server"
        ].help_text = "The zone's authoritative (primary) server, which accepts dynamic updates."
        self.fields[
            "ttl"
        ].help_text = "How long resolvers may keep the old answer after a takeover: keep it short."
        self.fields["ipv4"].help_text = self.fields["ipv6"].help_text = ""
        if self.instance.has_secret:
            self.fields["secret"].widget.attrs["placeholder"] = "(saved; leave empty to keep it)"
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "enabled",
            Div(
                Div("server", css_class="col-md-8"),
                Div("port", css_class="col-md-4"),
                css_class="row",
            ),
            Div(
                Div("zone", css_class="col-md-4"),
                Div("name", css_class="col-md-5"),
                Div("ttl", css_class="col-md-3"),
                css_class="row",
            ),
            Div(
                Div("ipv4", css_class="col-md-6"),
                Div("ipv6", css_class="col-md-6"),
                css_class="row",
            ),
            Div(
                Div("key_name", css_class="col-md-4"),
                Div("algorithm", css_class="col-md-3"),
                Div("secret", css_class="col-md-5"),
                css_class="row",
            ),
        )

    def clean_server(self) -> str:
        text = self.cleaned_data["server"].strip()
        return validate_host(text) if text else text

    def clean_port(self) -> int:
        port = self.cleaned_data["port"]
        if port is None or not 1 <= port <= 65535:
            raise forms.ValidationError("Enter a port from 1 to 65535 (DNS uses 53).")
        return port

    def _dns_name(self, field: str, example: str) -> str:
        text = self.cleaned_data[field].strip().lower().rstrip(".")
        if text and (len(text) > 253 or not is_hostname(text)):
            raise forms.ValidationError(
                f"“{self.cleaned_data[field]}” is not a DNS name. Enter one such as {example}."
            )
        return text

    def clean_zone(self) -> str:
        return self._dns_name("zone", "example.com")

    def clean_name(self) -> str:
        return self._dns_name("name", "support.example.com")

    def clean_key_name(self) -> str:
        text = self.cleaned_data["key_name"].strip().rstrip(".")
        labels = text.split(".")
        if text and (
            len(text) > 253
            or not all(0 < len(label) <= 63 and KEY_LABEL.match(label) for label in labels)
        ):
            raise forms.ValidationError(
                f"“{self.cleaned_data['key_name']}” is not a TSIG key name. Enter the name the "
                "server's key has, such as failover-key."
            )
        return text

    def clean_ttl(self) -> int:
        ttl = self.cleaned_data["ttl"]
        if ttl is None or not 1 <= ttl <= 86400:
            raise forms.ValidationError(
                "Enter a TTL from 1 to 86400 seconds; 30 to 300 suits a failover name."
            )
        return ttl

    def clean_secret(self) -> str:
        secret = "".join(self.cleaned_data["secret"].split())
        if secret:
            try:
                decoded = base64.b64decode(secret, validate=True)
            except (binascii.Error, ValueError):
                raise forms.ValidationError(
                    "The TSIG secret is not base64. Copy the secret from the server's key "
                    "(e.g. the output of tsig-keygen or keymgr)."
                ) from None
            if len(decoded) < 16:
                raise forms.ValidationError(
                    "The TSIG secret is shorter than 16 bytes: make a stronger key on the server "
                    "(tsig-keygen -a hmac-sha256 NAME) and enter its secret."
                )
        return secret

    def clean(self) -> dict:
        cleaned = super().clean()
        zone, name = cleaned.get("zone"), cleaned.get("name")
        if zone and name and not (name == zone or name.endswith("." + zone)):
            self.add_error("name", f"{name} is not in zone {zone}: enter a name inside the zone.")
        if cleaned.get("enabled") or self.testing:
            missing = [
                self.fields[field].label
                for field in ("server", "zone", "name", "key_name")
                if not cleaned.get(field) and field not in self.errors
            ]
            if not cleaned.get("secret") and not self.instance.has_secret:
                missing.append(self.fields["secret"].label)
            if missing:
                action = "test the key" if self.testing else "enable the DNS swing"
                raise forms.ValidationError(f"To {action}, fill in: {', '.join(missing)}.")
        no_address = not (cleaned.get("ipv4") or cleaned.get("ipv6"))
        if cleaned.get("enabled") and no_address and not {"ipv4", "ipv6"} & set(self.errors):
            raise forms.ValidationError(
                "Enter this site's IPv4 address, its IPv6 address, or both: the name will "
                "point at them when this site is primary."
            )
        return cleaned

    def save(self, commit: bool = True) -> DNSSwing:
        swing = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            swing.store_secret(self.cleaned_data["secret"])
        if commit:
            swing.save()
        return swing


def ways_to_follow() -> list[str]:
    """How clients would follow a takeover to this site: the ways configured here."""
    return [
        way
        for way, configured in (
            ("shared IP", SharedIP.load().is_configured),
            ("DNS swing", DNSSwing.load().is_configured),
            ("takeover hooks", bool(hooks.describe()["hooks"])),
        )
        if configured
    ]


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
            if not ways_to_follow():
                self.add_error(
                    "automatic_failover",
                    "Automatic failover does not work without a way to point clients at the new "
                    "primary: enable the shared IP (address and interface) on both sites first, "
                    "or a DNS swing, or install takeover hooks.",
                )
            if not cleaned.get("connectivity_test_ips"):
                self.add_error(
                    "connectivity_test_ips",
                    "Enter at least one test IP: without one, the backup cannot tell a dead "
                    "primary from its own broken network, and never fails over.",
                )
        return cleaned


# Ranges the page checks only for the interval chosen; values from the peer must always fit.
PEER_RANGES = {"sync_every_hours": (2, 23), "synchronous_timeout_seconds": (1, 60)}
BOOLEAN_SETTINGS = (
    "enable_backup_operations", "automatic_failover", "synchronous_replication",
)  # fmt: skip


class PeerBackupSettings:
    """Backup settings the other site hands over, checked exactly as the Failover page checks
    them (both of its forms), so this site never keeps a value its own page would refuse.

    A setting the peer leaves out (an older version) keeps this site's value. The values the
    page sets aside when the interval does not use them must still be in the page's range,
    and switches must be true or false, not text that reads as one.
    """

    def __init__(self, values: object, instance: BackupSettings) -> None:
        self.errors: dict[str, list[str]] = {}
        self.cleaned_data: dict[str, object] = {}
        if not isinstance(values, dict):
            self.errors["settings"] = ["Send the settings as a JSON object."]
            return
        data: dict[str, object] = {}
        for name in BACKUP_SETTINGS_FIELDS:
            value = values.get(name, getattr(instance, name))
            if name in BOOLEAN_SETTINGS and type(value) is not bool:
                self.errors[name] = ["Send true or false."]
            if name in PEER_RANGES:
                low, high = PEER_RANGES[name]
                if type(value) is not int or not low <= value <= high:
                    self.errors[name] = [f"Enter a whole number from {low} to {high}."]
            data[name] = "" if value is None else value
        self.forms = [
            BackupSettingsForm(data, instance=instance),
            FailoverSettingsForm(data, instance=instance),
        ]
        for form in self.forms:
            if not form.is_valid():
                for name, messages in form.errors.items():
                    self.errors.setdefault(name, []).extend(messages)
            else:
                self.cleaned_data.update(form.cleaned_data)

    def is_valid(self) -> bool:
        return not self.errors

    def sentence(self) -> str:
        """Every refusal in one sentence, field by field, as the peer will quote it."""
        order = {name: index for index, name in enumerate(BACKUP_SETTINGS_FIELDS)}
        named = sorted(self.errors.items(), key=lambda item: order.get(item[0], -1))
        return "Backup settings refused, nothing was changed: " + " ".join(
            f"{name}: {' '.join(messages)}" for name, messages in named
        )


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

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        if url:
            try:
                webhook.check_url(url)
            except webhook.WebhookRefused as refused:
                raise forms.ValidationError(refused.message) from None
        return url

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


class ScheduledBackupForm(forms.ModelForm):
    """The daily site backup: on or off, where, how many to keep, when."""

    keep = forms.IntegerField(
        label="Backups to keep",
        min_value=1,
        max_value=1000,
        initial=7,
        help_text="The newest this many are kept; older ones in the folder are deleted.",
    )
    at = forms.TimeField(
        label="Every day at",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="In the site's time zone (Configuration).",
    )

    class Meta:
        model = ScheduledBackup
        fields = ["enabled", "folder", "keep", "at"]
        labels = {"enabled": "Back up this site every day", "folder": "Folder"}
        widgets = {"folder": forms.TextInput(attrs={"placeholder": "/var/backups/appliance"})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_folder(self) -> str:
        folder = self.cleaned_data["folder"].strip()
        if not folder:
            if self.data.get("enabled"):
                raise forms.ValidationError(
                    "Enter the folder the daily backup goes to, e.g. /var/backups/appliance."
                )
            return folder
        path = Path(folder)
        if not path.is_absolute():
            raise forms.ValidationError(
                f"{folder} is a relative path: enter the full path, starting with /."
            )
        if not self.data.get("enabled"):
            # Turning the backup off never fails for a folder that has gone since; it is
            # checked again when the backup is turned on.
            return str(path)
        if not path.is_dir():
            raise forms.ValidationError(
                f"{folder} does not exist or is not a folder: create it first, writable by "
                "the user the site runs as."
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise forms.ValidationError(
                f"{folder} is not writable by the user the site runs as: change its owner "
                "or permissions."
            )
        return str(path)
