"""Failover's wiring: what it hangs on the site's signals, its own and its neighbours'."""

from django.apps import AppConfig


class FailoverConfig(AppConfig):
    name = "failover"
    verbose_name = "Failover"

    def ready(self) -> None:
        # Deferred until the app registry is ready: these modules import models.
        from celery.signals import worker_ready
        from django.db.models.signals import post_migrate, post_save

        from appliance.models import SiteSettings
        from appliance.signals import login_refusal, metric_families, rows_written, status_facts
        from failover import alerts, middleware, receivers, replication
        from failover.models import FailoverEvent
        from failover.sync import changelog
        from security.signals import key_notes, peer_request_refused

        changelog.connect()
        changelog.changes_logged.connect(
            replication.changes_logged, dispatch_uid="failover-replication-wake"
        )
        rows_written.connect(receivers.rows_written, dispatch_uid="failover-rows-written")
        post_save.connect(
            alerts.event_recorded, sender=FailoverEvent, dispatch_uid="failover-alerts"
        )
        post_migrate.connect(
            receivers.ensure_schedule, sender=self, dispatch_uid="failover-schedule"
        )
        # The daily and weekly times are in the site's time zone.
        post_save.connect(
            receivers.ensure_schedule, sender=SiteSettings, dispatch_uid="failover-tz"
        )
        peer_request_refused.connect(
            receivers.peer_request_refused, dispatch_uid="failover-refusals"
        )
        key_notes.connect(receivers.key_note, dispatch_uid="failover-key-notes")
        status_facts.connect(receivers.role_fact, dispatch_uid="failover-role-fact")
        status_facts.connect(receivers.backup_fact, dispatch_uid="failover-backup-fact")
        metric_families.connect(receivers.metric_families, dispatch_uid="failover-metrics")
        login_refusal.connect(middleware.refuse_login, dispatch_uid="failover-switchover-login")
        worker_ready.connect(receivers.worker_ready, weak=False, dispatch_uid="failover-requeue")
