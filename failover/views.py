"""Management > Failover: establish, status, status history, break."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from appliance.permissions import admin_required
from failover import services
from failover.forms import BreakForm, EstablishForm, HistoryFilterForm
from failover.models import FailoverEvent, FailoverState
from failover.peer import PeerError
from security.models import PreSharedKey


@admin_required
def failover(request: HttpRequest) -> HttpResponse:
    state = FailoverState.load()
    context = {
        "state": state,
        "psk": PreSharedKey.current(),
        "events": FailoverEvent.objects.all()[:10],
        "plain_http": services.peer_scheme() == "http",
    }
    if state.is_paired:
        context["break_form"] = BreakForm()
    else:
        context["form"] = EstablishForm()
    return render(request, "failover/failover.html", context)


@require_POST
@admin_required
def establish(request: HttpRequest) -> HttpResponse:
    form = EstablishForm(request.POST)
    context = {"state": FailoverState.load(), "psk": PreSharedKey.current(), "form": form}
    context["plain_http"] = services.peer_scheme() == "http"
    if not form.is_valid():
        return render(request, "failover/failover.html", context, status=400)
    data = form.cleaned_data
    backup = services.PeerAddress(data["backup_host"], data["backup_port"])
    reverse = services.PeerAddress(data["reverse_host"], data["reverse_port"])
    needs_pin = services.peer_scheme() == "https" and not settings.PEER_CA_BUNDLE
    if needs_pin and not data["backup_fingerprint"]:
        # First step: show the certificate the backup presents before trusting it.
        try:
            fingerprint = services.probe_certificate(backup)
        except PeerError as error:
            form.add_error(None, error.message)
            return render(request, "failover/failover.html", context, status=400)
        form = EstablishForm(initial={**data, "backup_fingerprint": fingerprint})
        context.update(form=form, fingerprint=fingerprint, backup=backup)
        return render(request, "failover/confirm_certificate.html", context)
    backup = services.PeerAddress(backup.host, backup.port, data["backup_fingerprint"])
    try:
        state = services.establish(backup, reverse, request.user)
    except services.RelationshipError as error:
        form.add_error(None, error.message)
        return render(request, "failover/failover.html", context, status=400)
    messages.success(
        request,
        f"Relationship established: this site is primary, {state.peer_name} at "
        f"{state.peer_address} is backup.",
    )
    return redirect("failover:failover")


@require_POST
@admin_required
def break_relationship(request: HttpRequest) -> HttpResponse:
    form = BreakForm(request.POST)
    force = form.is_valid() and form.cleaned_data["force"]
    try:
        outcome = services.break_relationship(request.user, force=force)
    except services.RelationshipError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Relationship broken: this site's role is now none. {outcome}")
    return redirect("failover:failover")


@admin_required
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    events = FailoverEvent.objects.all()
    if form.is_bound and form.is_valid():
        events = form.filter(events)
    elif form.is_bound:
        events = events.none()
    if request.GET.get("format") == "csv":
        return _csv(events)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "failover/history.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


def _csv(events) -> StreamingHttpResponse:
    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(["time", "site", "kind", "severity", "epoch", "actor", "message"])
        for event in events.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    event.at.isoformat(),
                    event.site,
                    event.kind,
                    event.severity,
                    event.epoch,
                    event.actor,
                    _safe_cell(event.message),
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="status-history-{stamp}.csv"'
    return response


def _safe_cell(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
