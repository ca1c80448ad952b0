from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from appliance.models import ApiAccount, SiteSettings
from appliance.validators import is_hostname


class SiteSettingsForm(forms.ModelForm):
    class Meta:
        model = SiteSettings
        fields = [
            "site_name",
            "public_hostname",
            "support_contact",
            "time_zone",
            "login_banner",
            "report_retention_days",
        ]
        widgets = {"login_banner": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("save", "Save"))

    def clean_public_hostname(self) -> str:
        name = self.cleaned_data["public_hostname"].strip().lower().rstrip(".")
        if name and not is_hostname(name):
            raise forms.ValidationError(
                "Enter a host name such as support.example.com: letters, digits and hyphens, "
                "separated by dots."
            )
        return name


class ApiAccountForm(forms.ModelForm):
    """Name, permission and whether the account works; its credentials are made, not typed."""

    class Meta:
        model = ApiAccount
        fields = ["name", "access", "enabled"]
        widgets = {"access": forms.RadioSelect}
        help_texts = {
            "name": "Who uses it, e.g. monitoring or the failover runbook.",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(
            Submit("save", "Create API account" if self.instance.pk is None else "Save")
        )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = ApiAccount.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(
                f"An API account named {clash.first().name} exists already: choose another name."
            )
        return name

    def describe_changes(self) -> str:
        """What the save changed, for the audit trail (names and values, never a secret)."""
        labels = {
            "name": lambda: f"name → {self.instance.name}",
            "access": lambda: f"permission → {self.instance.get_access_display()}",
            "enabled": lambda: "enabled" if self.instance.enabled else "disabled",
        }
        return "; ".join(labels[name]() for name in self.changed_data if name in labels)
