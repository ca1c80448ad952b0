"""Management > Audit trail: who did what, when, on which site; filters, paging, CSV export."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from appliance.audit import PAGE_SIZE, AuditFilterForm, csv_rows, recorded_users
from appliance.models import AuditEvent
from appliance.permissions import admin_required


@admin_required
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = Paginator(form.filter(AuditEvent.objects.all()), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "users": recorded_users()}
    return render(request, "appliance/audit.html", context, status=200 if page else 400)


@admin_required
def export(request: HttpRequest) -> HttpResponse:
    """The filtered trail as CSV; invalid filters go back to the page, which says why."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Could not export the audit trail: correct the filters below.")
        return redirect(f"{reverse('appliance:audit')}?{request.GET.urlencode()}")
    response = StreamingHttpResponse(
        csv_rows(form.filter(AuditEvent.objects.all())), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    AuditEvent.record(
        request.user, "audit.exported", f"Exported the audit trail ({form.describe()})."
    )
    return response
