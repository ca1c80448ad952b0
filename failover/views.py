"""Management > Failover: establish, status, status history, break."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from appliance.models import AuditEvent
from appliance.permissions import admin_required
from appliance.reports import neutralise_formula
from failover import (
    alerts,
    backups,
    conflicts,
    dns_swing,
    exports,
    hooks,
    jobs,
    pair_settings,
    relationship,
    replication,
    roles,
    schedule,
    switchover,
)
from failover.forms import (
    AlertSettingsForm,
    BackupSettingsForm,
    BecomeBackupForm,
    BecomePrimaryForm,
    BreakForm,
    DNSSwingForm,
    EstablishForm,
    FailoverSettingsForm,
    HistoryFilterForm,
    ScheduledBackupForm,
    SharedIPForm,
    SyncNowForm,
)
from failover.models import (
    AlertDelivery,
    AlertSettings,
    BackupSettings,
    DNSSwing,
    FailoverEvent,
    FailoverState,
    PendingRecording,
    ScheduledBackup,
    SharedIP,
    SyncRun,
)
from failover.peer import PeerAddress, PeerError, peer_scheme
from failover.shared_ip import holding, shared_ip_error
from failover.sync import progress, runs
from failover.system import probe
from failover.system.dns import DNSError
from failover.system.shared_ip import driver
from security.models import PreSharedKey


def _page_context(**overrides: object) -> dict[str, object]:
    """Everything the Failover page shows; `overrides` replace forms that failed validation."""
    state = FailoverState.load()
    backup_settings = BackupSettings.load()
    context: dict[str, object] = {
        "state": state,
        "psk": PreSharedKey.current(),
        "events": FailoverEvent.objects.select_related("alert")[:10],
        "undeliverable_alerts": AlertDelivery.objects.filter(
            status=AlertDelivery.Status.UNDELIVERABLE
        ).select_related("event")[:5],
        "alert_retry_for": alerts.retry_period(),
        "alerts_retrying": AlertDelivery.objects.filter(
            status=AlertDelivery.Status.PENDING
        ).count(),
        "plain_http": peer_scheme() == "http",
        "settings_form": BackupSettingsForm(instance=backup_settings),
        "failover_form": FailoverSettingsForm(instance=backup_settings),
        "schedule": schedule.describe(backup_settings),
        "shared_ip_form": SharedIPForm(instance=SharedIP.load()),
        "shared_ip_driver": driver(),
        "shared_ip_error": shared_ip_error(),
        "holding": holding(),
        "dns_form": DNSSwingForm(instance=DNSSwing.load(), prefix=DNSSwingForm.PREFIX),
        "dns_error": dns_swing.dns_error(),
        "dns_events": FailoverEvent.objects.filter(
            kind__in=[FailoverEvent.Kind.DNS, FailoverEvent.Kind.DNS_FAILED]
        )[:1],
        "hooks": hooks.describe(),
        "hook_events": FailoverEvent.objects.filter(
            kind__in=[FailoverEvent.Kind.HOOK, FailoverEvent.Kind.HOOK_FAILED]
        )[:5],
        "conflict": roles.conflict_reported(),
        "exports": sorted(p.name for p in exports.exports_dir().glob("*.json"))
        if exports.exports_dir().exists()
        else [],
        "become_primary_form": BecomePrimaryForm(),
        "alerts_form": AlertSettingsForm(instance=AlertSettings.load()),
        "become_backup_form": BecomeBackupForm(prefix="become_backup"),
    }
    if state.is_paired:
        context.update(
            break_form=BreakForm(),
            sync_form=SyncNowForm(),
            last_sync=SyncRun.latest(),
            syncs=SyncRun.objects.all()[:5],
            lag=replication.lag(),
            continuous=backup_settings.is_continuous,
            pending_recordings=PendingRecording.objects.count(),
        )
    else:
        context["form"] = EstablishForm()
    context.update(overrides)
    return context


@admin_required
def failover(request: HttpRequest) -> HttpResponse:
    return render(request, "failover/failover.html", _page_context())


@require_POST
@admin_required
def sync_now(request: HttpRequest) -> HttpResponse:
    form = SyncNowForm(request.POST)
    full = form.is_valid() and form.cleaned_data["full"]
    try:
        messages.success(request, runs.sync_now(request.user, full=full))
    except runs.SyncRefused as error:
        messages.error(request, error.message)
    return redirect("failover:failover")


@require_POST
@admin_required
def backup_settings(request: HttpRequest) -> HttpResponse:
    instance = BackupSettings.load()
    form = BackupSettingsForm(request.POST, instance=instance)
    failover_form = FailoverSettingsForm(request.POST, instance=instance)
    if not (form.is_valid() and failover_form.is_valid()):
        context = _page_context(settings_form=form, failover_form=failover_form)
        return render(request, "failover/failover.html", context, status=400)
    peer = pair_settings.save_backup_settings(form.instance, request.user)
    messages.success(
        request, f"Backup settings saved: sync {schedule.describe(form.instance)}. {peer}"
    )
    return redirect("failover:failover")


@admin_required
def syncs(request: HttpRequest) -> HttpResponse:
    page = Paginator(SyncRun.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "failover/syncs.html", {"page": page})


@admin_required
def sync_progress(request: HttpRequest) -> JsonResponse:
    """The running sync's live progress and the replication lag, for the Failover page."""
    run = SyncRun.latest()
    lag = replication.lag().as_dict() if FailoverState.load().is_paired else None
    if run is None:
        return JsonResponse({"run": None, "lag": lag})
    live = progress.read(run.pk) if run.status == SyncRun.Status.RUNNING else None
    return JsonResponse({"run": run.as_dict(), "live": live, "lag": lag})


@require_POST
@admin_required
def establish(request: HttpRequest) -> HttpResponse:
    form = EstablishForm(request.POST)
    context = _page_context(form=form)
    if not form.is_valid():
        return render(request, "failover/failover.html", context, status=400)
    data = form.cleaned_data
    backup = PeerAddress(data["backup_host"], data["backup_port"])
    reverse = PeerAddress(data["reverse_host"], data["reverse_port"])
    needs_pin = peer_scheme() == "https" and not settings.PEER_CA_BUNDLE
    if needs_pin and not data["backup_fingerprint"]:
        # First step: show the certificate the backup presents before trusting it.
        try:
            fingerprint = relationship.probe_certificate(backup)
        except PeerError as error:
            form.add_error(None, error.message)
            return render(request, "failover/failover.html", context, status=400)
        form = EstablishForm(initial={**data, "backup_fingerprint": fingerprint})
        context.update(form=form, fingerprint=fingerprint, backup=backup)
        return render(request, "failover/confirm_certificate.html", context)
    backup = PeerAddress(backup.host, backup.port, data["backup_fingerprint"])
    try:
        state = relationship.establish(backup, reverse, request.user)
    except relationship.RelationshipError as error:
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
        outcome = relationship.break_relationship(request.user, force=force)
    except relationship.RelationshipError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Relationship broken: this site's role is now none. {outcome}")
    return redirect("failover:failover")


@admin_required
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    events = FailoverEvent.objects.select_related("alert")
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
                    neutralise_formula(event.site),
                    event.kind,
                    event.severity,
                    event.epoch,
                    neutralise_formula(event.actor),
                    neutralise_formula(event.message),
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="status-history-{stamp}.csv"'
    return response


@require_POST
@admin_required
def shared_ip(request: HttpRequest) -> HttpResponse:
    form = SharedIPForm(request.POST, instance=SharedIP.load())
    if not form.is_valid():
        return render(
            request, "failover/failover.html", _page_context(shared_ip_form=form), status=400
        )
    try:
        note = pair_settings.save_shared_ip(form.instance, request.user)
    except relationship.RelationshipError as error:
        form.add_error("address", error.message)
        return render(
            request, "failover/failover.html", _page_context(shared_ip_form=form), status=400
        )
    config = form.instance
    state = "enabled" if config.enabled else "disabled"
    messages.success(request, f"Shared IP {' and '.join(config.addresses)} {state}.{note}")
    return redirect("failover:failover")


@require_POST
@admin_required
def dns_settings(request: HttpRequest) -> HttpResponse:
    """Save the DNS swing's settings; with the Test button, first prove the server takes
    the key (nothing is saved when it does not)."""
    testing = "test" in request.POST
    form = DNSSwingForm(
        request.POST, instance=DNSSwing.load(), testing=testing, prefix=DNSSwingForm.PREFIX
    )
    if not form.is_valid():
        return render(request, "failover/failover.html", _page_context(dns_form=form), status=400)
    if testing:
        try:
            result = dns_swing.test(form.save(commit=False), form.cleaned_data["secret"] or None)
        except DNSError as error:
            form.add_error(None, error.message)
            return render(
                request, "failover/failover.html", _page_context(dns_form=form), status=400
            )
        context = _page_context(dns_form=form, dns_test_result=result)
        return render(request, "failover/failover.html", context)
    config = form.save(commit=False)
    # Saved settings are published again (on the primary), changed or not: the way to
    # point the name here after someone else changed it.
    config.published = f"{FailoverState.load().epoch} saved"
    config.save()
    AuditEvent.record(
        request.user,
        "failover.dns_swing",
        f"DNS swing {'enabled' if config.enabled else 'disabled'}: {config.name or 'no name'} "
        f"at {config.server or 'no server'} (key {config.key_name or 'none'}"
        f"{', new secret' if form.cleaned_data['secret'] else ''}).",
    )
    transaction.on_commit(jobs.follow_role)
    state = "enabled" if config.enabled else "disabled"
    messages.success(
        request,
        f"DNS swing {state}"
        + (
            f": {config.name} points here whenever this site becomes primary."
            if config.enabled
            else "."
        ),
    )
    return redirect("failover:failover")


@require_POST
@admin_required
def test_connectivity(request: HttpRequest) -> HttpResponse:
    """The Test button: try each Network Connectivity Test IP now and show the results."""
    instance = BackupSettings.load()
    form = FailoverSettingsForm(request.POST, instance=instance)
    form.is_valid()
    if form.has_error("connectivity_test_ips"):
        results = None
    else:
        text = form.cleaned_data.get("connectivity_test_ips", "")
        results = probe.probe([probe.Target.parse(line) for line in text.split()], timeout=1.0)
    return render(
        request,
        "failover/failover.html",
        _page_context(failover_form=form, connectivity_results=results),
    )


@require_POST
@admin_required
def become_primary(request: HttpRequest) -> HttpResponse:
    form = BecomePrimaryForm(request.POST)
    sync_first = form.is_valid() and form.cleaned_data["sync_first"]
    try:
        switchover.start("become_primary", request.user.get_username(), sync_first)
    except roles.RoleError as error:
        messages.error(request, f"Become Primary did not start: {error.message}")
        return redirect("failover:failover")
    messages.info(
        request,
        "Become Primary started"
        + (": the primary pauses changes while the final sync runs." if sync_first else ".")
        + " The status history shows each step.",
    )
    return redirect("failover:failover")


@require_POST
@admin_required
def become_backup(request: HttpRequest) -> HttpResponse:
    form = BecomeBackupForm(request.POST, prefix="become_backup")
    force = form.is_valid() and form.cleaned_data["force"]
    try:
        switchover.start("become_backup", request.user.get_username(), force)
    except roles.RoleError as error:
        messages.error(request, f"Become Backup did not start: {error.message}")
        return redirect("failover:failover")
    messages.info(request, "Become Backup started. The status history shows each step.")
    return redirect("failover:failover")


@require_POST
@admin_required
def fix_conflict(request: HttpRequest) -> HttpResponse:
    try:
        messages.success(request, conflicts.fix_conflict(request.user))
    except roles.RoleError as error:
        messages.error(request, error.message)
    return redirect("failover:failover")


@admin_required
def export(request: HttpRequest, name: str) -> FileResponse:
    """Download a data export made before this site's data was overwritten."""
    path = exports.exports_dir() / name
    if "/" in name or not name.endswith(".json") or not path.is_file():
        raise Http404("No such export.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)


@require_POST
@admin_required
def alert_settings(request: HttpRequest) -> HttpResponse:
    form = AlertSettingsForm(request.POST, instance=AlertSettings.load())
    if not form.is_valid():
        return render(
            request, "failover/failover.html", _page_context(alerts_form=form), status=400
        )
    form.save()
    AuditEvent.record(request.user, "failover.alerts", "Alert recipients changed.")
    if "test" in request.POST:
        problems = alerts.send_test(request.user)
        for problem in problems:
            messages.error(request, problem)
        if not problems:
            messages.success(request, "Alert settings saved and a test alert sent.")
    else:
        messages.success(request, "Alert settings saved.")
    return redirect("failover:failover")


@admin_required
def backup(request: HttpRequest, form: ScheduledBackupForm | None = None) -> HttpResponse:
    """Management > Backup: download a backup of this site; the daily backup's settings."""
    config = ScheduledBackup.load()
    context = {
        "config": config,
        "form": form or ScheduledBackupForm(instance=config),
        "state": FailoverState.load(),
        "file_name": backups.file_name(),
    }
    return render(request, "failover/backup.html", context, status=400 if form else 200)


@require_POST
@admin_required
def download_backup(request: HttpRequest) -> StreamingHttpResponse:
    """The backup file, streamed as it is written: the site's data is read in one
    transaction and never held whole in memory."""
    name = backups.file_name()
    AuditEvent.record(request.user, "site.backup", f"Downloaded the backup {name}.")
    return StreamingHttpResponse(
        backups.Backup(),
        content_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@require_POST
@admin_required
def backup_schedule(request: HttpRequest) -> HttpResponse:
    form = ScheduledBackupForm(request.POST, instance=ScheduledBackup.load())
    if not form.is_valid():
        return backup(request, form=form)
    said = backups.save_schedule(form.instance, request.user)
    messages.success(request, said)
    return redirect("failover:backup")
