"""Background work of the pair. Thin: each task calls one domain function."""

from celery import shared_task

from failover import services


@shared_task(ignore_result=True)
def check_peer() -> None:
    """Beat runs this on both sites: ask the peer how it is, record the answer."""
    services.check_peer()
