from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from appliance.models import SiteSettings
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
