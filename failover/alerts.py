"""Alerts: e-mail (Django's mail settings) and a webhook (JSON POST) for events that matter.

Sending happens in the worker after the event's transaction commits, so a slow
mail server or webhook never holds up a failover. A channel that fails is tried
again with a growing delay (the send_alert task's Celery autoretry) until it
takes the alert, for ALERT_RETRY_SECONDS; then the alert is recorded as
undeliverable (its AlertDelivery row, shown on the Failover page, and an event
in the status history). A channel that took the alert is not sent it again.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from failover import jobs, webhook
from failover.models import AlertDelivery, AlertSettings, FailoverEvent

logger = logging.getLogger(__name__)
EMAIL = "email"
WEBHOOK = "webhook"
# A bound on the retries whatever the clock says; the retry period decides first.
MAX_ATTEMPTS = 50


class DeliveryFailed(Exception):
    """An attempt left channels undelivered; the task retries it (Celery autoretry)."""


def event_recorded(
    sender: type[FailoverEvent], instance: FailoverEvent, created: bool, **_kwargs: object
) -> None:
    """post_save of FailoverEvent (connected in failover.apps): events that matter alert."""
    if created and instance.is_alerted:
        notify(instance)


def channels(config: AlertSettings) -> list[str]:
    return [name for name, wanted in ((EMAIL, config.recipients), (WEBHOOK, config.webhook_url))
            if wanted]  # fmt: skip


def notify(event: FailoverEvent) -> None:
    """Record the alert for `event` and queue it once its transaction commits."""
    wanted = channels(AlertSettings.load())
    if not wanted:
        return
    delivery = AlertDelivery.objects.create(event=event, channels=" ".join(wanted))
    transaction.on_commit(lambda: _queue(delivery))


def _queue(delivery: AlertDelivery) -> None:
    try:
        jobs.send_alert(delivery.event_id)
    except Exception as error:  # the broker is away: say so where the alert would show
        logger.warning("could not queue the alert for event %s", delivery.event_id)
        delivery.give_up(f"It could not be queued: the broker did not take it ({error}).")


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


def retry_period() -> str:
    """ALERT_RETRY_SECONDS in words: "an hour", "90 minutes", "45 s"."""
    seconds = settings.ALERT_RETRY_SECONDS
    if seconds == 3600:
        return "an hour"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} s"


def send(channel: str, event: FailoverEvent, config: AlertSettings) -> str | None:
    """Send `event`'s alert by one channel; a sentence when it failed, else None."""
    if channel == EMAIL and config.recipients:
        subject = f"[{event.site}] {event.get_kind_display()}"
        try:
            send_mail(subject, event.message, settings.DEFAULT_FROM_EMAIL, config.recipients)
        except Exception as error:  # smtplib and socket errors alike
            return f"E-mail to {', '.join(config.recipients)} failed: {error}."
    if channel == WEBHOOK and config.webhook_url:
        try:
            webhook.post(config.webhook_url, payload(event))
        except webhook.WebhookRefused as refused:
            return refused.message
        except requests.HTTPError as error:
            status = error.response.status_code
            if 300 <= status < 400:
                return (
                    f"The webhook {config.webhook_url} failed: it answered HTTP {status}, "
                    f"{error}; redirects are not followed: enter the final URL."
                )
            return f"The webhook {config.webhook_url} failed: it answered HTTP {status}."
        except requests.RequestException as error:
            return f"The webhook {config.webhook_url} failed: {error.__class__.__name__}."
    return None


def deliver(event: FailoverEvent) -> list[str]:
    """Send one alert by every configured channel now; returns a sentence per failed channel."""
    config = AlertSettings.load()
    problems = [problem for name in channels(config) if (problem := send(name, event, config))]
    for problem in problems:
        logger.warning(problem)
    return problems


def deliver_pending(event_id: int, *, last_attempt: bool = False) -> None:
    """One attempt at the channels an event's alert has not reached yet.

    Raises DeliveryFailed while some channel still fails and the retry period
    lasts; past it (or at `last_attempt`), records the alert as undeliverable.
    """
    delivery = (
        AlertDelivery.objects.select_related("event")
        .filter(event_id=event_id, status=AlertDelivery.Status.PENDING)
        .first()
    )
    if delivery is None:
        return  # delivered, given up, or never wanted
    config = AlertSettings.load()
    problems = {}
    for channel in delivery.pending_channels:
        if problem := send(channel, delivery.event, config):
            problems[channel] = problem
    delivered = [channel for channel in delivery.pending_channels if channel not in problems]
    error = " ".join(problems.values())
    delivery.attempted(delivered, error)
    if not problems:
        logger.info("Alert for event #%s delivered (attempt %s)", event_id, delivery.attempts)
        return
    retrying_for = (timezone.now() - delivery.created_at).total_seconds()
    if last_attempt or retrying_for >= settings.ALERT_RETRY_SECONDS:
        _give_up(delivery, error)
        return
    logger.warning("Alert for event #%s, attempt %s: %s", event_id, delivery.attempts, error)
    raise DeliveryFailed(error)


def _give_up(delivery: AlertDelivery, error: str) -> None:
    delivery.give_up(error)
    event = delivery.event
    when = timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S")
    message = (
        f"The alert for “{event.get_kind_display()}” of {when} could not be delivered in "
        f"{delivery.attempts} attempts: {error}"
    )
    logger.error(message)
    FailoverEvent.record(FailoverEvent.Kind.ERROR, message, severity=FailoverEvent.Severity.DANGER)


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
