from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from appliance.models import SiteSettings


class SiteTimeZoneMiddleware:
    """Show times in the support site's configured time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        site_settings = SiteSettings.load()
        request.site_settings = site_settings
        timezone.activate(site_settings.time_zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
