from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from appliance import health
from appliance.models import AuditEvent
from appliance.permissions import is_administrator
from appliance.signals import status_facts


@login_required
def status(request: HttpRequest) -> HttpResponse:
    facts = [fact for _, found in status_facts.send(sender=None, request=request) for fact in found]
    context = {"processes": health.processes(), "facts": facts}
    if is_administrator(request.user):
        context["audit_events"] = AuditEvent.objects.all()[:10]
    return render(request, "appliance/status.html", context)
