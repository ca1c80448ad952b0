"""The Reports tab: list with filters, one report, its recording, and a CSV export.

Any signed-in user may read reports. Filtering lives in appliance.reports so
the page, the export and the API agree on what "matching" means.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from appliance.models import AuditEvent, Report
from appliance.reports import (
    PAGE_SIZE,
    SORT_NEWEST_FIRST,
    SORT_OLDEST_FIRST,
    ReportFilterForm,
    csv_text,
    describe_filters,
    recording_response,
    representative_names,
)


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET)
    page = None
    if form.is_valid():
        reports = form.filter(Report.objects.defer("chat_transcript"))
        page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    sort = getattr(form, "cleaned_data", {}).get("sort") or SORT_NEWEST_FIRST
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "next_sort": SORT_OLDEST_FIRST if sort == SORT_NEWEST_FIRST else SORT_NEWEST_FIRST,
        "representatives": representative_names(),
    }
    return render(request, "appliance/reports/list.html", context)


@login_required
def report_detail(request: HttpRequest, uuid: UUID) -> HttpResponse:
    report = get_object_or_404(Report, uuid=uuid)
    # A report that came by continuous replication may be here before its file.
    arrived = bool(report.recording) and report.recording.storage.exists(report.recording.name)
    return render(
        request, "appliance/reports/detail.html", {"report": report, "recording_here": arrived}
    )


@login_required
def recording(request: HttpRequest, uuid: UUID) -> FileResponse:
    """Serve a report's recording to a signed-in user.

    Recordings are never exposed under MEDIA_URL: they hold customer sessions.
    """
    return recording_response(get_object_or_404(Report, uuid=uuid))


@login_required
def export(request: HttpRequest) -> HttpResponse:
    """Stream the filtered reports as CSV, one chunk of rows at a time.

    Invalid filters send the user back to the list, where the form says what
    to correct, rather than exporting something other than what they asked for.
    """
    form = ReportFilterForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Could not export the reports: correct the filters marked below.")
        return redirect(f"{reverse('appliance:reports:list')}?{request.GET.urlencode()}")
    text = csv_text(form.filter(Report.objects.all()), timezone.get_current_timezone())
    response = StreamingHttpResponse(text, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="reports-{stamp}.csv"'
    AuditEvent.record(
        request.user,
        "reports.exported",
        f"Exported reports as CSV ({describe_filters(form.cleaned_data)}).",
    )
    return response
