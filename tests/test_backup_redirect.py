"""On a backup, the Users, Reports and Configuration tabs are gone and their URLs redirect."""

import pytest
from django.urls import reverse

from failover.models import Role
from tests.conftest import paired_as

pytestmark = pytest.mark.django_db
PRIMARY_ONLY = ["/users/", "/users/new/", "/reports/", "/reports/export/", "/configuration/"]


@pytest.fixture
def backup_site(db):
    return paired_as(Role.BACKUP, peer_name="site-a", peer_host="192.0.2.10")


@pytest.mark.parametrize("path", PRIMARY_ONLY)
def test_a_backup_redirects_primary_only_pages_naming_the_primary(admin_client, backup_site, path):
    response = admin_client.get(path, follow=True)
    assert response.redirect_chain[0] == (reverse("appliance:status"), 302)
    assert "managed on the primary, site-a at 192.0.2.10:443" in response.content.decode()


def test_a_backup_hides_the_tabs_but_administrators_still_log_in(admin_client, backup_site):
    page = admin_client.get(reverse("appliance:status")).content.decode()
    assert 'href="/users/"' not in page
    assert 'href="/reports/"' not in page
    assert 'href="/configuration/"' not in page
    assert "Backup" in page


@pytest.mark.parametrize("path", ["/users/", "/reports/", "/configuration/"])
def test_a_site_with_no_role_serves_every_tab(admin_client, path):
    assert admin_client.get(path).status_code == 200
