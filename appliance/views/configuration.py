from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from appliance.forms import SiteSettingsForm
from appliance.models import AuditEvent, SiteSettings
from appliance.permissions import admin_required


@admin_required
def configuration(request: HttpRequest) -> HttpResponse:
    site_settings = SiteSettings.load()
    form = SiteSettingsForm(request.POST or None, instance=site_settings)
    if request.method == "POST" and form.is_valid():
        form.save()
        changed = ", ".join(form.changed_data) or "nothing"
        AuditEvent.record(request.user, "site_settings.changed", f"Changed: {changed}.")
        messages.success(request, "Site settings saved.")
        return redirect("appliance:configuration")
    return render(request, "appliance/configuration.html", {"form": form})
