"""The Status page's facts about this site, which each app adds through `status_facts`."""

import pytest
from django.urls import reverse

from failover.models import Role
from security.models import PreSharedKey
from tests.conftest import paired_as

STATUS = reverse("appliance:status")
pytestmark = pytest.mark.django_db


def test_administrators_see_the_role_and_the_keys_fingerprint(admin_client):
    page = admin_client.get(STATUS).content.decode()
    assert "Failover role" in page
    assert 'Pre-shared key</dt><dd class="col-7">not set' in page

    stored = PreSharedKey.store("a long shared passphrase 1234", by="test")
    paired_as(Role.BACKUP)
    page = admin_client.get(STATUS).content.decode()
    assert f'<span class="fingerprint">{stored.fingerprint}</span>' in page
    assert '<span class="badge text-bg-info">Backup</span>' in page


def test_other_users_see_the_role_but_not_the_key(user_client):
    PreSharedKey.store("a long shared passphrase 1234", by="test")
    page = user_client.get(STATUS).content.decode()
    assert "Failover role" in page
    assert "Pre-shared key" not in page
