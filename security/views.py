from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from appliance.permissions import admin_required
from failover.models import FailoverState, Role
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
        if FailoverState.load().role != Role.NONE:
            messages.warning(
                request,
                "This site is paired: save the same key on the other site too, or the two "
                "sites will refuse each other's requests.",
            )
        return redirect("security:security")
    return render(request, "security/security.html", {"form": form, "psk": PreSharedKey.current()})
