from django.conf import settings
from django.http import HttpRequest

from appliance.permissions import is_administrator
from appliance.version import SOFTWARE_VERSION


def appliance(request: HttpRequest) -> dict[str, object]:
    return {
        "appliance_name": settings.APPLIANCE_NAME,
        "site_settings": getattr(request, "site_settings", None),
        "is_administrator": is_administrator(request.user),
        "software_version": SOFTWARE_VERSION,
    }
