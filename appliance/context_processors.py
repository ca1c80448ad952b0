from django.conf import settings
from django.http import HttpRequest

from appliance.permissions import is_administrator


def appliance(request: HttpRequest) -> dict[str, object]:
    from failover.models import FailoverState

    return {
        "appliance_name": settings.APPLIANCE_NAME,
        "site_settings": getattr(request, "site_settings", None),
        "failover_state": FailoverState.load(),
        "is_administrator": is_administrator(request.user),
    }
