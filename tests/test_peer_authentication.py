"""Peer endpoints accept only requests signed with the pre-shared key, and sign their answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import requests
from django.test import Client
from requests.structures import CaseInsensitiveDict

from appliance.models import AuditEvent, SiteSettings
from failover.models import FailoverEvent
from security import signing
from security.models import PreSharedKey

KEY = "a long shared passphrase 1234"
OTHER_KEY = "somebody else's passphrase 5678"
SITE_NAME_URL = "/peer-test/site-name/"
ECHO_URL = "/peer-test/echo/"
SIGNATURE_HEADERS = ("Signature", "Signature-Input", "Content-Digest", "Appliance-Sender")

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.peer_test_urls"),
    pytest.mark.usefixtures("peer_redis"),
]


@pytest.fixture(autouse=True)
def stored_key(settings) -> None:
    settings.PEER_CLOCK_SKEW_SECONDS = 300
    PreSharedKey.store(KEY, by="test")
    SiteSettings(site_name="Before").save()


def signed(
    method: str,
    path: str,
    json: object = None,
    *,
    psk: str = KEY,
    created: dt.datetime | None = None,
    nonce: str | None = None,
) -> requests.PreparedRequest:
    """A request as the other site's PeerClient would sign it, addressed to the test server."""
    prepared = requests.Request(method, f"https://testserver{path}", json=json).prepare()
    signing.sign_request(
        prepared, signing.PeerKey.from_psk(psk), created=created, nonce=nonce, sender="peer-site"
    )
    return prepared


def send(prepared: requests.PreparedRequest, *, path: str | None = None, body: bytes | None = None):
    """Deliver a signed request through Django's test client, optionally altered on the way."""
    target = path or prepared.path_url
    return Client().generic(
        prepared.method,
        target,
        data=(prepared.body or b"") if body is None else body,
        content_type=prepared.headers.get("Content-Type", ""),
        secure=True,
        headers={name: prepared.headers[name] for name in SIGNATURE_HEADERS},
    )


def as_requests_response(django_response, prepared: requests.PreparedRequest) -> requests.Response:
    """The answer as the calling site's requests library would hand it to verify_response."""
    response = requests.Response()
    response.status_code = django_response.status_code
    response.headers = CaseInsensitiveDict(dict(django_response.headers))
    response._content = django_response.content
    response.request = prepared
    return response


def rename(**options: object) -> requests.PreparedRequest:
    return signed("POST", SITE_NAME_URL, {"site_name": "After"}, **options)


def test_it_accepts_a_signed_request_and_signs_its_answer():
    prepared = rename()
    response = send(prepared)
    assert response.status_code == 200
    assert response.json() == {"site_name": "After", "caller": "peer"}
    assert SiteSettings.load().site_name == "After"
    verified = signing.verify_response(
        as_requests_response(response, prepared), signing.PeerKey.from_psk(KEY)
    )
    assert verified.nonce
    assert not AuditEvent.objects.exists()


def test_it_signs_its_answer_when_the_view_refuses_an_authentic_request():
    prepared = signed("POST", SITE_NAME_URL, {"wrong": "field"})
    response = send(prepared)
    assert response.status_code == 400
    signing.verify_response(as_requests_response(response, prepared), signing.PeerKey.from_psk(KEY))
    assert SiteSettings.load().site_name == "Before"


def unsigned_request():
    return Client().post(
        SITE_NAME_URL, {"site_name": "After"}, content_type="application/json", secure=True
    )


def wrong_key():
    return send(rename(psk=OTHER_KEY))


def stale():
    return send(rename(created=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=310)))


def future():
    return send(rename(created=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=310)))


def replayed():
    prepared = rename()
    assert send(prepared).status_code == 200
    SiteSettings(site_name="Before").save()
    return send(prepared)


def tampered_body():
    return send(rename(), body=b'{"site_name":"Mallory"}')


def tampered_path():
    return send(signed("POST", ECHO_URL, {"site_name": "After"}), path=SITE_NAME_URL)


def tampered_query():
    return send(rename(), path=SITE_NAME_URL + "?site_name=Mallory")


def no_key_on_this_site():
    PreSharedKey.objects.all().delete()
    return send(rename())


REFUSALS: list[tuple[Callable, str, str]] = [
    (unsigned_request, "unsigned", "carries no HTTP message signature"),
    (wrong_key, "bad_signature", "different pre-shared key"),
    (stale, "stale", "more than the allowed clock skew of 300 s"),
    (future, "future", "in the future"),
    (replayed, "replayed", "already used"),
    (tampered_body, "digest_mismatch", "does not match its signed Content-Digest"),
    (tampered_path, "bad_signature", "does not match it as received"),
    (tampered_query, "bad_signature", "does not match it as received"),
    (no_key_on_this_site, "no_key", "has no pre-shared key"),
]


@pytest.mark.parametrize(
    ("attempt", "reason", "sentence"),
    REFUSALS,
    ids=[case[1] + ":" + case[0].__name__ for case in REFUSALS],
)
def test_it_refuses_a_bad_request_with_its_reason_and_records_it(attempt, reason, sentence):
    response = attempt()

    assert response.status_code == 401
    assert response.json()["reason"] == reason
    assert sentence in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Signature")
    assert "Signature" not in response.headers
    assert SiteSettings.load().site_name == "Before"
    event = AuditEvent.objects.get(action="peer.auth_refused")
    assert f"({reason}) from 127.0.0.1 POST {SITE_NAME_URL}" in event.detail
    assert sentence in event.detail
    history = FailoverEvent.objects.get(kind=FailoverEvent.Kind.AUTH_REFUSED)
    assert history.message == event.detail


def from_address(address: str):
    return Client(REMOTE_ADDR=address).post(
        SITE_NAME_URL, {"site_name": "After"}, content_type="application/json", secure=True
    )


def test_a_flood_of_refusals_is_recorded_once_a_minute_per_reason_whatever_its_sources():
    for host in range(1, 41):
        assert from_address(f"2001:db8::{host:x}").status_code == 401
    assert wrong_key().status_code == 401
    assert AuditEvent.objects.filter(action="peer.auth_refused").count() == 2
    assert FailoverEvent.objects.filter(kind=FailoverEvent.Kind.AUTH_REFUSED).count() == 2
    first = AuditEvent.objects.filter(action="peer.auth_refused").order_by("id").first()
    assert "(unsigned) from 2001:db8::1 " in first.detail


def test_a_refusal_record_holds_neither_the_key_nor_the_signature():
    prepared = rename(psk=OTHER_KEY)
    send(prepared)
    detail = AuditEvent.objects.get(action="peer.auth_refused").detail
    for secret in (KEY, OTHER_KEY, signing.PeerKey.from_psk(KEY).secret.hex()):
        assert secret not in detail
    for header in ("Signature", "Signature-Input", "Content-Digest"):
        assert prepared.headers[header] not in detail
        assert prepared.headers[header].split("=", 1)[1] not in detail


def test_a_signed_in_administrator_is_not_the_peer(admin_client):
    response = admin_client.post(
        SITE_NAME_URL, {"site_name": "After"}, content_type="application/json", secure=True
    )
    assert response.status_code == 401
    assert response.json()["reason"] == "unsigned"
    assert SiteSettings.load().site_name == "Before"


def test_it_answers_503_and_changes_nothing_when_replays_cannot_be_ruled_out(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'no-redis.sock'}"
    response = send(rename())
    assert response.status_code == 503
    assert "Redis does not answer" in response.json()["detail"]
    assert SiteSettings.load().site_name == "Before"


def test_it_signs_answers_to_get_requests_with_a_query():
    prepared = signed("GET", ECHO_URL + "?since=2026-01-01")
    response = send(prepared)
    assert response.status_code == 200
    assert response.json() == {"echo": {"since": ["2026-01-01"]}}
    signing.verify_response(as_requests_response(response, prepared), signing.PeerKey.from_psk(KEY))


PAIR_SALT, PAIR_KEY_ID = "c" * 64, "pair-00112233aabbccdd"


def test_a_paired_site_accepts_its_pair_key_and_the_bootstrap_key():
    PreSharedKey.set_pair(PAIR_SALT, PAIR_KEY_ID)
    pair = signing.PeerKey.from_psk(KEY, PAIR_SALT, PAIR_KEY_ID)
    assert signing.PeerKey.stored() == pair
    prepared = requests.Request(
        "POST", f"https://testserver{SITE_NAME_URL}", json={"site_name": "After"}
    ).prepare()
    signing.sign_request(prepared, pair, sender="peer-site")
    response = send(prepared)
    assert response.status_code == 200
    signing.verify_response(as_requests_response(response, prepared), pair)
    SiteSettings(site_name="Before").save()
    assert send(rename()).status_code == 200  # the bootstrap key


def test_a_pair_key_this_site_does_not_hold_is_refused_by_name():
    PreSharedKey.set_pair(PAIR_SALT, PAIR_KEY_ID)
    stranger = signing.PeerKey.from_psk(KEY, "d" * 64, "pair-ffffffffffffffff")
    prepared = requests.Request("POST", f"https://testserver{SITE_NAME_URL}", json={}).prepare()
    signing.sign_request(prepared, stranger, sender="peer-site")
    response = send(prepared)
    assert response.status_code == 401
    assert "a pair key this site does not hold" in response.json()["detail"]
    assert "failover rekey" in response.json()["detail"]
