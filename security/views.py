from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from appliance.permissions import admin_required
from security import signals
from security.forms import PreSharedKeyForm
from security.models import PreSharedKey
from security.services import set_key


@sensitive_post_parameters("key", "key_confirmation")
@sensitive_variables("form")
@admin_required
def security(request: HttpRequest) -> HttpResponse:
    form = PreSharedKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        stored = set_key(form.cleaned_data["key"], request.user)
        messages.success(request, f"Pre-shared key saved. Its fingerprint is {stored.fingerprint}.")
        for note in signals.notes(saved=True):
            messages.warning(request, note)
        return redirect("security:security")
    context = {"form": form, "psk": PreSharedKey.current(), "notes": signals.notes(saved=False)}
    return render(request, "security/security.html", context)
