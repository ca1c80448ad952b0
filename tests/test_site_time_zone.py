"""A site settings row with a time zone this machine does not know never stops the site."""

from __future__ import annotations

import pytest

from appliance.models import SiteSettings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("zone", ["Not/AZone", "../../etc/passwd", "Z" * 64])
def test_the_login_page_answers_in_utc_when_the_stored_time_zone_is_unknown(client, zone, caplog):
    SiteSettings().save()
    SiteSettings.objects.filter(pk=1).update(time_zone=zone)
    assert client.get("/login").status_code == 200
    assert "Unknown site time zone" in caplog.text
