"""The peer signature itself: what it covers, and each way a message fails verification."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
import requests
from django.http import JsonResponse
from django.test import RequestFactory
from requests.structures import CaseInsensitiveDict

from security import keys, nonces, signing
from security.models import PreSharedKey

PSK = "a long shared passphrase 1234"
KEY = signing.PeerKey.from_psk(PSK)
OTHER = signing.PeerKey.from_psk("somebody else's passphrase 5678")
URL = "https://peer.example.test/api/peer/v1/status?since=5"

pytestmark = pytest.mark.usefixtures("peer_redis")


@pytest.fixture(autouse=True)
def skew(settings) -> int:
    settings.PEER_CLOCK_SKEW_SECONDS = 300
    settings.ALLOWED_HOSTS = ["peer.example.test"]
    return 300


def outgoing(method: str = "POST", url: str = URL, json: object = None, **options):
    prepared = requests.Request(method, url, json=json).prepare()
    options.setdefault("sender", "peer-site")
    signing.sign_request(prepared, options.pop("key", KEY), **options)
    return prepared


def incoming(prepared: requests.PreparedRequest, **changes):
    """The request as the receiving Django site sees it, optionally altered in transit."""
    headers = {
        name: value
        for name, value in prepared.headers.items()
        if name not in ("Content-Type", "Content-Length")
    }
    headers["Host"] = changes.pop("host", "peer.example.test")
    headers.update(changes.pop("headers", {}))
    return RequestFactory().generic(
        changes.pop("method", prepared.method),
        changes.pop("path", prepared.path_url),
        data=changes.pop("body", prepared.body or b""),
        content_type=prepared.headers.get("Content-Type", ""),
        secure=True,
        headers=headers,
    )


def refusal(call, *args, **kwargs) -> signing.SignatureRefused:
    with pytest.raises(signing.SignatureRefused) as caught:
        call(*args, **kwargs)
    return caught.value


def answer(request, prepared, *, data=None, status=200, key=KEY, **options) -> requests.Response:
    """Our site's signed answer, as the requesting site's requests library receives it."""
    response = JsonResponse(data or {"ok": True}, status=status)
    signing.sign_response(response, request, key, **options)
    received = requests.Response()
    received.status_code = response.status_code
    received.headers = CaseInsensitiveDict(dict(response.headers))
    received._content = response.content
    received.request = prepared
    return received


def test_a_signed_request_verifies_and_reports_its_nonce_and_time():
    prepared = outgoing(json={"a": 1})
    verified = signing.verify_request(incoming(prepared), KEY)
    assert verified.key == KEY
    assert abs(verified.created - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    assert verified.nonce in prepared.headers["Signature-Input"]


def test_the_signature_covers_method_authority_path_query_digest_time_and_nonce():
    signature_input = outgoing(json={"a": 1}).headers["Signature-Input"]
    assert signature_input.startswith(
        'peer=("@method" "@authority" "@path" "@query" "content-digest" "appliance-sender");'
        "created="
    )
    for parameter in ("nonce=", 'alg="hmac-sha256"', f'tag="{signing.REQUEST_TAG}"'):
        assert parameter in signature_input


def test_a_request_without_a_body_still_carries_the_digest_of_an_empty_body():
    prepared = outgoing("GET")
    assert prepared.headers["Content-Digest"] == (
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    )
    signing.verify_request(incoming(prepared), KEY)


def test_the_bootstrap_key_id_is_fixed_and_says_nothing_about_the_key():
    assert signing.PeerKey.from_psk(PSK).key_id == KEY.key_id == OTHER.key_id == "bootstrap"
    assert OTHER.secret != KEY.secret
    assert PSK not in repr(KEY)
    assert KEY.secret.hex() not in repr(KEY)


SALT, OTHER_SALT = "a" * 64, "b" * 64


def test_a_pair_key_depends_on_the_pairs_salt_and_its_id_is_the_random_one_given():
    pair = signing.PeerKey.from_psk(PSK, SALT, "pair-0123456789abcdef")
    assert pair.key_id == "pair-0123456789abcdef"
    assert pair.secret == signing.PeerKey.from_psk(PSK, SALT, "pair-x").secret
    assert pair.secret != signing.PeerKey.from_psk(PSK, OTHER_SALT, "pair-x").secret
    assert pair.secret != KEY.secret


def test_new_salts_and_key_ids_are_random():
    assert len({keys.new_salt() for _ in range(5)}) == 5
    assert len({keys.new_key_id() for _ in range(5)}) == 5
    assert keys.new_key_id().startswith("pair-")


def test_the_slow_derivation_runs_once_per_key_and_salt_in_a_process():
    keys.stretch.cache_clear()
    signing.PeerKey.from_psk(PSK, SALT, "pair-a")
    signing.PeerKey.from_psk(PSK, SALT, "pair-a")
    info = keys.stretch.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_the_pre_shared_key_never_appears_in_a_signed_request():
    prepared = outgoing(json={"a": 1})
    wire = str(prepared.headers) + prepared.url + (prepared.body or b"").decode()
    assert PSK not in wire
    assert KEY.secret.hex() not in wire


def test_it_refuses_an_unsigned_request():
    plain = RequestFactory().get("/api/peer/v1/status", headers={"Host": "peer.example.test"})
    assert refusal(signing.verify_request, plain, KEY).reason == "unsigned"


def test_it_names_a_key_mismatch():
    refused = refusal(signing.verify_request, incoming(outgoing(key=OTHER)), KEY)
    assert refused.reason == "bad_signature"
    assert "different pre-shared key" in refused.detail


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/api/peer/v1/break?since=5"},
        {"path": "/api/peer/v1/status?since=6"},
        {"host": "other.example.test"},
        {"headers": {"Content-Digest": "sha-256=:" + "A" * 43 + "=:"}},
    ],
    ids=["method", "path", "query", "authority", "digest header"],
)
def test_it_refuses_a_request_altered_in_transit(settings, change):
    settings.ALLOWED_HOSTS = ["peer.example.test", "other.example.test"]
    refused = refusal(signing.verify_request, incoming(outgoing(json={"a": 1}), **change), KEY)
    assert refused.reason == "bad_signature"
    assert "does not match it as received" in refused.detail


def test_it_refuses_a_body_that_does_not_match_its_digest():
    request = incoming(outgoing(json={"a": 1}), body=b'{"a":2}')
    assert refusal(signing.verify_request, request, KEY).reason == "digest_mismatch"


def test_it_refuses_a_signature_older_than_the_allowed_skew(settings):
    settings.PEER_CLOCK_SKEW_SECONDS = 30
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40)
    refused = refusal(signing.verify_request, incoming(outgoing(created=created)), KEY)
    assert refused.reason == "stale"
    assert "allowed clock skew of 30 s" in refused.detail


def test_it_accepts_a_signature_within_the_allowed_skew_either_way():
    for offset in (-290, 290):
        created = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
        signing.verify_request(incoming(outgoing(created=created)), KEY)


def test_it_refuses_a_signature_from_further_in_the_future_than_the_skew():
    created = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=310)
    assert refusal(signing.verify_request, incoming(outgoing(created=created)), KEY).reason == (
        "future"
    )


def test_it_refuses_a_signature_whose_expiry_has_passed_even_within_the_skew():
    now = dt.datetime.now(dt.UTC)
    created, expires = now - dt.timedelta(seconds=20), now - dt.timedelta(seconds=10)
    refused = refusal(
        signing.verify_request, incoming(outgoing(created=created, expires=expires)), KEY
    )
    assert refused.reason == "stale"
    assert "expired" in refused.detail


def test_it_accepts_a_signature_before_its_expiry():
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    assert signing.verify_request(incoming(outgoing(expires=expires)), KEY).nonce


def test_it_refuses_a_signature_that_expires_before_it_was_created():
    now = dt.datetime.now(dt.UTC)
    refused = refusal(
        signing.verify_request,
        incoming(outgoing(created=now, expires=now - dt.timedelta(seconds=1))),
        KEY,
    )
    assert refused.reason == "bad_signature"


def test_it_refuses_a_replayed_request_and_remembers_the_nonce_for_twice_the_skew(peer_redis):
    prepared = outgoing(nonce="a-fixed-nonce-for-this-test")
    signing.verify_request(incoming(prepared), KEY)
    assert refusal(signing.verify_request, incoming(prepared), KEY).reason == "replayed"
    ttl = redis.Redis.from_url(peer_redis).ttl(f"{nonces.KEY_PREFIX}a-fixed-nonce-for-this-test")
    assert 590 <= ttl <= 600


def test_a_forged_request_does_not_use_up_its_nonce():
    forged = outgoing(key=OTHER, nonce="nonce-of-a-forgery-000")
    refusal(signing.verify_request, incoming(forged), KEY)
    signing.verify_request(incoming(outgoing(nonce="nonce-of-a-forgery-000")), KEY)


@pytest.mark.django_db
def test_it_uses_the_stored_key_and_refuses_when_there_is_none():
    request = incoming(outgoing())
    assert refusal(signing.verify_request, request, None).reason == "no_key"
    PreSharedKey.store(PSK, by="test")
    assert signing.verify_request(incoming(outgoing()), None).key == KEY


def test_an_answer_verifies_against_the_request_it_answers():
    prepared = outgoing(json={"a": 1})
    request = incoming(prepared)
    signing.verify_request(request, KEY)
    received = answer(request, prepared, data={"role": "primary"})
    assert signing.verify_response(received, KEY).nonce
    assert f'tag="{signing.RESPONSE_TAG}"' in received.headers["Signature-Input"]


def test_an_answer_cannot_be_replayed_to_another_request():
    first, second = outgoing(), outgoing()
    received = answer(incoming(first), first)
    received.request = second
    refused = refusal(signing.verify_response, received, KEY)
    assert refused.reason == "bad_signature"


def test_a_request_signature_is_not_accepted_as_an_answer():
    prepared = outgoing()
    received = answer(incoming(prepared), prepared)
    received.headers["Signature-Input"] = prepared.headers["Signature-Input"]
    received.headers["Signature"] = prepared.headers["Signature"]
    assert refusal(signing.verify_response, received, KEY).reason == "bad_signature"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "digest_mismatch"),
        ("status", "bad_signature"),
        ("unsigned", "unsigned"),
        ("key", "bad_signature"),
        ("stale", "stale"),
    ],
)
def test_it_refuses_an_answer_that_is_not_authentic(change, reason):
    prepared = outgoing()
    options = {}
    if change == "key":
        options["key"] = OTHER
    if change == "stale":
        options["created"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400)
    received = answer(incoming(prepared), prepared, **options)
    if change == "body":
        received._content = b'{"ok": false}'
    if change == "status":
        received.status_code = 201
    if change == "unsigned":
        del received.headers["Signature"]
        del received.headers["Signature-Input"]
    assert refusal(signing.verify_response, received, KEY).reason == reason


def test_it_remembers_each_nonce_once():
    assert nonces.claim("nonce-seen-once-000000", ttl_seconds=10) is True
    assert nonces.claim("nonce-seen-once-000000", ttl_seconds=10) is False
    assert nonces.claim("another-nonce-0000000", ttl_seconds=10) is True


def test_it_says_so_when_redis_cannot_be_reached(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'nothing-here.sock'}"
    with pytest.raises(nonces.NonceStoreUnavailable, match="Redis does not answer"):
        nonces.claim("nonce-without-redis-000", ttl_seconds=10)


def test_it_refuses_its_own_request_sent_back_to_it(settings):
    reflected = incoming(outgoing(sender=settings.APPLIANCE_NAME))
    refused = refusal(signing.verify_request, reflected, KEY)
    assert refused.reason == "bad_signature"
    assert "reflection" in refused.detail


def test_the_senders_name_is_covered_by_the_signature():
    request = incoming(outgoing())
    request.META["HTTP_APPLIANCE_SENDER"] = "someone-else"
    assert refusal(signing.verify_request, request, KEY).reason == "bad_signature"


@pytest.mark.django_db
def test_a_pair_without_a_salt_keeps_the_previous_releases_key_until_rekeyed():
    PreSharedKey.store(PSK, by="test")
    legacy = signing.PeerKey.legacy(PSK)
    # What the releases before salts derived: an HKDF, with a key id taken from the key.
    assert legacy.secret == keys.derive(PSK, "peer-signing/v1")
    assert legacy.key_id.startswith("psk-")
    assert signing.PeerKey.stored() == legacy
    assert signing.verify_request(incoming(outgoing(key=legacy)), None).key == legacy
    PreSharedKey.set_pair(SALT, "pair-0123456789abcdef")
    assert signing.PeerKey.stored().key_id == "pair-0123456789abcdef"
    assert refusal(signing.verify_request, incoming(outgoing(key=legacy)), None)
