"""Alerts: e-mail (Django's mail settings) and a webhook (JSON POST) for events that matter.

Sending happens in the worker after the event's transaction commits, so a slow
mail server or webhook never holds up a failover.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from failover.models import AlertSettings, FailoverEvent

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5


class AlertError(Exception):
    pass


def notify(event: FailoverEvent) -> None:
    """Queue the alert for `event` once its transaction commits."""
    from failover import tasks

    config = AlertSettings.load()
    if not (config.recipients or config.webhook_url):
        return
    transaction.on_commit(lambda: _queue(tasks.send_alert, event.pk))


def _queue(task: object, event_id: int) -> None:
    try:
        task.delay(event_id)
    except Exception:  # the broker is away: the event stays in the history
        logger.warning("could not queue the alert for event %s", event_id)


def payload(event: FailoverEvent) -> dict[str, object]:
    return {
        "site": event.site,
        "kind": event.kind,
        "title": event.get_kind_display(),
        "severity": event.severity,
        "epoch": event.epoch,
        "at": event.at.isoformat(),
        "message": event.message,
    }


def deliver(event: FailoverEvent) -> list[str]:
    """Send one alert by every configured channel; returns a sentence per failed channel."""
    config = AlertSettings.load()
    problems = []
    subject = f"[{event.site}] {event.get_kind_display()}"
    if config.recipients:
        try:
            send_mail(subject, event.message, settings.DEFAULT_FROM_EMAIL, config.recipients)
        except Exception as error:  # smtplib and socket errors alike
            problems.append(f"E-mail to {', '.join(config.recipients)} failed: {error}.")
    if config.webhook_url:
        try:
            response = requests.post(
                config.webhook_url, json=payload(event), timeout=WEBHOOK_TIMEOUT
            )
            response.raise_for_status()
        except requests.RequestException as error:
            problems.append(f"The webhook {config.webhook_url} failed: {error.__class__.__name__}.")
    for problem in problems:
        logger.warning(problem)
    return problems


def send_test(actor: object) -> list[str]:
    """The Send test alert button: a real alert through every channel, now."""
    event = FailoverEvent(
        kind=FailoverEvent.Kind.ERROR,
        severity=FailoverEvent.Severity.INFO,
        site=settings.APPLIANCE_NAME,
        message=f"Test alert sent by {getattr(actor, 'username', actor)} from the Failover page.",
    )
    event.at = timezone.now()
    return deliver(event)
