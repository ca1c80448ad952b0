from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms

from appliance.validators import validate_host
from failover.models import FailoverEvent


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
        if data.get("since"):
            events = events.filter(at__date__gte=data["since"])
        if data.get("until"):
            events = events.filter(at__date__lte=data["until"])
        return events
