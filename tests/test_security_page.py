import logging

import pytest
from django.urls import reverse

from appliance.models import AuditEvent
from security import keys
from security.models import PreSharedKey

URL = reverse("security:security")
KEY = "a long shared passphrase 1234"

pytestmark = pytest.mark.django_db


def post_key(client, key=KEY, confirmation=None):
    return client.post(
        URL, {"key": key, "key_confirmation": key if confirmation is None else confirmation}
    )


def test_it_sends_anonymous_users_to_login(anon_client):
    response = anon_client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


def test_it_forbids_users_without_administrative_rights(user_client):
    assert user_client.get(URL).status_code == 403
    assert post_key(user_client).status_code == 403
    assert PreSharedKey.current() is None


def test_it_shows_the_form_to_administrators(admin_client):
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert b"Inter-appliance Communication Pre-shared Key" in response.content
    assert b"No pre-shared key is set yet" in response.content


def test_it_saves_the_key_encrypted_and_shows_its_fingerprint(admin_client):
    response = post_key(admin_client)
    assert response.status_code == 302
    stored = PreSharedKey.current()
    assert KEY not in stored.encrypted_key
    assert stored.reveal() == KEY
    page = admin_client.get(URL).content.decode()
    assert stored.fingerprint in page
    assert KEY not in page


def test_it_rejects_a_short_key_and_saves_nothing(admin_client):
    response = post_key(admin_client, "short")
    assert response.status_code == 200
    assert "use at least 16" in response.content.decode()
    assert PreSharedKey.current() is None
    assert not AuditEvent.objects.exists()


def test_it_rejects_differing_confirmation(admin_client):
    response = post_key(admin_client, KEY, KEY + "x")
    assert "The two entries differ" in response.content.decode()
    assert PreSharedKey.current() is None


def test_it_rejects_surrounding_whitespace(admin_client):
    response = post_key(admin_client, f" {KEY} ")
    assert "white space" in response.content.decode()
    assert PreSharedKey.current() is None


def test_it_records_the_change_without_the_key(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    post_key(admin_client)
    post_key(admin_client, KEY + " changed")
    events = list(AuditEvent.objects.filter(action="security.key_changed").order_by("id"))
    assert len(events) == 2
    assert events[0].actor == "admin"
    assert "changed from fingerprint" in events[1].detail
    for event in events:
        assert KEY not in event.detail
    assert KEY not in caplog.text
    status = admin_client.get(reverse("appliance:status")).content.decode()
    assert "security.key_changed" in status


def test_the_key_is_not_in_the_database_in_clear(admin_client):
    from django.db import connection

    post_key(admin_client)
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_key, fingerprint, updated_by FROM security_presharedkey")
        row = cursor.fetchone()
    assert all(KEY not in str(value) for value in row)


def test_fingerprints_are_equal_for_equal_keys_and_differ_otherwise():
    assert keys.fingerprint(KEY) == keys.fingerprint(KEY)
    assert keys.fingerprint(KEY) != keys.fingerprint(KEY + "!")
    assert len(keys.fingerprint(KEY)) == 19


def test_encryption_is_salted_so_equal_keys_store_differently():
    assert keys.encrypt(KEY) != keys.encrypt(KEY)


def test_a_paired_site_warns_before_and_after_the_key_changes(admin_client):
    from failover.models import Role
    from tests.conftest import paired_as

    assert b"This site is paired" not in admin_client.get(URL).content
    paired_as(Role.PRIMARY)
    assert b"This site is paired. If you change the key" in admin_client.get(URL).content
    page = admin_client.get(post_key(admin_client)["Location"]).content.decode()
    assert "Its fingerprint is" in page
    assert "This site is paired: save the same key on the other site too" in page
