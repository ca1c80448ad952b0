import datetime as dt
import logging
import time
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from appliance import metrics, tracing
from appliance.models import SiteSettings

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("appliance.requests")


class SiteTimeZoneMiddleware:
    """Show times in the support site's configured time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            site_settings = SiteSettings.load()
        except DatabaseError:
            # The health checks still answer, and say the database is down; a page that
            # needs the database fails on its own.
            site_settings = SiteSettings()
        request.site_settings = site_settings
        try:
            timezone.activate(site_settings.time_zone)
        except (ValueError, LookupError, OSError):
            # A zone this machine does not know (a row no form of this site wrote): the
            # site keeps serving, in UTC, rather than failing every request.
            logger.warning(
                "Unknown site time zone %r: showing times in UTC", site_settings.time_zone[:64]
            )
            timezone.activate(dt.UTC)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class RequestLogMiddleware:
    """Gives each request its id (appliance.tracing), logs it once it is answered, and
    counts it and its latency for /metrics.

    First in MIDDLEWARE, so every line logged while the request runs carries the
    id, and the time measured is the whole of the site's. A caller's
    `X-Request-ID` (the peer, a proxy) is kept, so one piece of work keeps one id
    across the sites; the answer says which id it ran under. Health checks,
    metrics scrapes and static files are logged only when they fail, or at DEBUG.
    """

    QUIET = ("/check_health", "/metrics", "/static/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = tracing.valid_or_new(request.META.get(tracing.META_KEY))
        started = time.perf_counter()
        with tracing.bound(request_id):
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            metrics.observe_request(request, response.status_code, elapsed)
            response[tracing.HEADER] = request_id
            quiet = request.path.startswith(self.QUIET) and response.status_code < 400
            request_logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s %.0f ms",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
            )
        return response
