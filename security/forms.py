from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from security.services import validate_key


class PreSharedKeyForm(forms.Form):
    key = forms.CharField(
        label="Inter-appliance Communication Pre-shared Key",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Enter the same string on both sites of the pair. It is never shown again.",
    )
    key_confirmation = forms.CharField(
        label="Confirm the key",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("save", "Save"))

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        validate_key(key)
        return key

    def clean(self) -> dict:
        cleaned = super().clean()
        key, confirmation = cleaned.get("key"), cleaned.get("key_confirmation")
        if key and confirmation is not None and key != confirmation:
            self.add_error("key_confirmation", "The two entries differ; type the same key twice.")
        return cleaned
