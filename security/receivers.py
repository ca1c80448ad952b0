"""What the security app adds to the site's pages (connected in SecurityConfig.ready)."""

from __future__ import annotations

from django.http import HttpRequest

from appliance.permissions import is_administrator
from appliance.signals import Fact
from security.models import PreSharedKey


def key_fact(request: HttpRequest, **_kwargs: object) -> list[Fact]:
    """The Status page shows administrators the key's fingerprint (never the key)."""
    if not is_administrator(request.user):
        return []
    psk = PreSharedKey.current()
    if psk is None:
        return [Fact("Pre-shared key", "not set")]
    return [Fact("Pre-shared key", psk.fingerprint, css_class="fingerprint")]
