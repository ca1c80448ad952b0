from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from appliance import health
from appliance.models import AuditEvent
from appliance.permissions import is_administrator
from security.models import PreSharedKey


@login_required
def status(request: HttpRequest) -> HttpResponse:
    context = {"processes": health.processes()}
    if is_administrator(request.user):
        context["audit_events"] = AuditEvent.objects.all()[:25]
        context["psk"] = PreSharedKey.current()
    return render(request, "appliance/status.html", context)
