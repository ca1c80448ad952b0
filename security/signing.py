"""HTTP Message Signatures (RFC 9421, hmac-sha256) on everything the two sites say to each other.

The signing key is derived from the pre-shared key with scrypt and a per-pair random salt
(`PeerKey`), so the pre-shared key itself never crosses the wire and every guess at it
from a captured message costs a full scrypt. The http-message-signatures library builds
and checks the signature base; this module only chooses what is covered and turns every
failure into a `SignatureRefused` with a machine-readable reason.

What a request signature covers, and why:

- `@method`, `@path`, `@query`: what is asked of the peer. Together they are the request
  target. `@target-uri` is deliberately not used: it includes the scheme, which a site
  behind a TLS-terminating proxy sees as `http` while the sender signed `https`.
- `@authority`: the host (and non-default port) the sender meant to reach. Django has
  already checked the Host header against ALLOWED_HOSTS, so a request signed for one
  site is not accepted by a host name that site does not answer to. A proxy in front of
  a site must pass the Host header through unchanged, as Django needs anyway.
- `content-digest` (RFC 9530, sha-256), always present, for an empty body too, so the
  body is covered by the signature.
- `appliance-sender`: the sending site's name. Both sites hold the same key, so without
  it a request could be sent back to the site that made it; a site refuses requests
  that carry its own name.
- The parameters `created`, `nonce`, `keyid`, `alg` and a `tag` that differs between
  requests and responses, so one can never be passed off as the other. A signature is
  accepted while `created` is within the clock skew of this site's clock and, when it
  carries `expires`, not after that moment.

A response signature covers `@status`, its own `content-digest`, and the request's
signature (`"signature";key="peer";req`). That binds every answer to the one request it
answers, whose nonce is unique, so an old answer cannot be replayed to a new question.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    VerifyResult,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from security import keys, nonces
from security.models import PreSharedKey

logger = logging.getLogger(__name__)

PURPOSE = "peer-signing/v2"
# What the releases before per-pair salts derived their signing key for (PeerKey.legacy).
LEGACY_PURPOSE = "peer-signing/v1"
BOOTSTRAP_SALT = b"appliance-failover/peer-signing/bootstrap-salt/v1"
BOOTSTRAP_KEY_ID = "bootstrap"
LABEL = "peer"
REQUEST_TAG = "appliance-failover/peer-request/v1"
RESPONSE_TAG = "appliance-failover/peer-response/v1"
SENDER_HEADER = "Appliance-Sender"
REQUEST_COMPONENTS = (
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-digest",
    SENDER_HEADER.lower(),
)
RESPONSE_COMPONENTS = ("@status", "content-digest", f'"signature";key="{LABEL}";req')
STREAM_TAG = "appliance-failover/peer-stream/v1"
# A streamed answer's body is not in memory when its headers are signed: the
# signature binds status and request, and the body carries its own seal.
STREAM_COMPONENTS = ("@status", f'"signature";key="{LABEL}";req')
DEFAULT_CLOCK_SKEW_SECONDS = 300
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


class Reason(StrEnum):
    """Why a signed message was refused. The values are part of the peer protocol."""

    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"
    REPLAYED = "replayed"
    DIGEST_MISMATCH = "digest_mismatch"
    NO_KEY = "no_key"


class SignatureRefused(Exception):
    """A message failed verification. `reason` is a Reason, `detail` a sentence for people.

    Neither ever contains a key or a signature.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PeerKey:
    """The signing key derived from the pre-shared key, and its public key id.

    The derivation is scrypt (keys.stretch) over the pre-shared key and a salt, so each
    guess at the key from a captured message costs a full scrypt. Two sites that have
    agreed a pair (at Establish, or `failover rekey`) use that pair's random salt and
    random key id. Before that, and for the messages that set a pair up, they use the
    bootstrap key: the same derivation with a fixed salt and the key id `bootstrap`.
    Neither key id says anything about the key.

    A pair set up by a release before salts (no salt stored, or an older peer that sent
    none at Establish) keeps that release's key until `failover rekey`: an HKDF of the
    pre-shared key with a key id derived from it, cheap to guess at, so the Failover page
    asks for a rekey once both sites run this release.
    """

    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_psk(cls, psk: str, salt: str = "", key_id: str = "") -> PeerKey:
        """The pair key for `salt` (hex) and `key_id`, or the bootstrap key without a salt."""
        if salt:
            return cls(key_id=key_id, secret=keys.stretch(psk, bytes.fromhex(salt), PURPOSE))
        return cls(key_id=BOOTSTRAP_KEY_ID, secret=keys.stretch(psk, BOOTSTRAP_SALT, PURPOSE))

    @classmethod
    def legacy(cls, psk: str) -> PeerKey:
        """The key of the releases before per-pair salts, which their sites sign with."""
        secret = keys.derive(psk, LEGACY_PURPOSE)
        return cls(key_id="psk-" + hashlib.sha256(secret).hexdigest()[:8], secret=secret)

    @classmethod
    def stored(cls) -> PeerKey:
        """The key this site signs with: its pair's key, or the previous releases' key
        while the pair has no salt.

        SignatureRefused(no_key) without a stored pre-shared key.
        """
        return cls.accepted()[0]

    @classmethod
    def bootstrap(cls) -> PeerKey:
        """The bootstrap key of this site's stored pre-shared key (Establish, rekey)."""
        return cls.accepted()[-1]

    @classmethod
    def stored_legacy(cls) -> PeerKey:
        """The previous releases' key of this site's stored pre-shared key: what a site of
        such a release signs with, whatever pair this site has."""
        return cls.legacy(cls._stored_psk()[1])

    @classmethod
    def accepted(cls) -> tuple[PeerKey, ...]:
        """The keys a request may be signed with: the pair's key first (or, without a salt,
        the previous releases' key), then the bootstrap key, which a peer setting up a new
        pair or salt uses."""
        stored, psk = cls._stored_psk()
        bootstrap = cls.from_psk(psk)
        if stored.pair_salt and stored.pair_key_id:
            return (cls.from_psk(psk, stored.pair_salt, stored.pair_key_id), bootstrap)
        return (cls.legacy(psk), bootstrap)

    @staticmethod
    def _stored_psk() -> tuple[PreSharedKey, str]:
        stored = PreSharedKey.current()
        if stored is None:
            raise SignatureRefused(
                Reason.NO_KEY,
                "This site has no pre-shared key: save the same key on both sites under "
                "Management > Security.",
            )
        try:
            return stored, stored.reveal()
        except keys.KeyUnreadable as error:
            raise SignatureRefused(Reason.NO_KEY, str(error)) from None


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful verification proved: the key it was made with, when, and its nonce."""

    key: PeerKey
    created: dt.datetime
    nonce: str


def clock_skew_seconds() -> int:
    return int(getattr(settings, "PEER_CLOCK_SKEW_SECONDS", DEFAULT_CLOCK_SKEW_SECONDS))


def sign_request(
    request: requests.PreparedRequest,
    key: PeerKey,
    *,
    created: dt.datetime | None = None,
    nonce: str | None = None,
    sender: str | None = None,
    expires: dt.datetime | None = None,
) -> None:
    """Add Content-Digest, Signature-Input and Signature to an outgoing request, in place.

    `created` and `nonce` default to now and a fresh random value; tests pass them to
    build stale, future or replayed requests. This site's own requests carry no
    `expires` (their age is bounded by the clock skew); one that does is refused after it.
    """
    # The sender's name, signed: a site refuses its own requests sent back to it.
    request.headers[SENDER_HEADER] = sender or settings.APPLIANCE_NAME
    body = request.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = request.body = body.encode()
    elif not isinstance(body, bytes):
        raise TypeError("Only requests whose body is held in memory can be signed.")
    _sign(request, key, REQUEST_TAG, REQUEST_COMPONENTS, body, created, nonce, expires)


def verify_request(
    request: HttpRequest, key: PeerKey | None = None, *, receiver: str | None = None
) -> VerifiedSignature:
    """Check an incoming request's signature, age, body digest and nonce, in that order.

    `key` defaults to this site's stored key. The nonce is claimed last, so only an
    authentic, fresh request uses it up. Raises SignatureRefused, or
    nonces.NonceStoreUnavailable when Redis cannot say whether it is a replay.
    """
    if not _carries_signature(request.headers):
        raise SignatureRefused(
            Reason.UNSIGNED,
            "The request carries no HTTP message signature (Signature and Signature-Input).",
        )
    candidates = (key,) if key is not None else PeerKey.accepted()
    result = _verify(
        _django_request_view(request), candidates, REQUEST_TAG, REQUEST_COMPONENTS, "request"
    )
    key = next(k for k in candidates if k.key_id == result.parameters.get("keyid"))
    created = _check_time(result, "request")
    _check_digest(result, request.body, "request")
    if request.headers.get(SENDER_HEADER) == (receiver or settings.APPLIANCE_NAME):
        raise SignatureRefused(
            Reason.BAD_SIGNATURE,
            "The request was signed by this site itself and sent back to it (a reflection).",
        )
    nonce = result.nonce
    if not isinstance(nonce, str) or not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureRefused(
            Reason.BAD_SIGNATURE, "The request's signature has no usable nonce (16-128 characters)."
        )
    if not nonces.claim(nonce, ttl_seconds=2 * clock_skew_seconds()):
        raise SignatureRefused(
            Reason.REPLAYED,
            "The request's nonce was already used: this is a replay of an earlier request.",
        )
    return VerifiedSignature(key=key, created=created, nonce=nonce)


def sign_response(
    response: HttpResponse,
    request: HttpRequest,
    key: PeerKey,
    *,
    created: dt.datetime | None = None,
    nonce: str | None = None,
) -> None:
    """Sign a rendered response to a verified request, binding it to the request's signature."""
    if response.streaming:
        raise TypeError("Streaming responses cannot be signed: their body is not in memory.")
    view = _Response(response.status_code, response.headers, _django_request_view(request))
    _sign(view, key, RESPONSE_TAG, RESPONSE_COMPONENTS, response.content, created, nonce)


def sign_stream_response(response: HttpResponse, request: HttpRequest, key: PeerKey) -> None:
    """Sign the status and headers of a streamed answer, bound to the request's signature.

    The body is sealed separately with `stream_seal_key` (see failover.sync.stream).
    """
    view = _Response(response.status_code, response.headers, _django_request_view(request))
    _sign(view, key, STREAM_TAG, STREAM_COMPONENTS, b"", None, None)


def verify_stream_response(response: requests.Response, key: PeerKey) -> VerifiedSignature:
    """Check a streamed answer's header signature (its body is checked by its seal)."""
    if not _carries_signature(response.headers):
        raise SignatureRefused(Reason.UNSIGNED, "The answer carries no HTTP message signature.")
    view = _Response(response.status_code, response.headers, response.request)
    result = _verify(view, (key,), STREAM_TAG, STREAM_COMPONENTS, "answer")
    created = _check_time(result, "answer")
    return VerifiedSignature(key=key, created=created, nonce=str(result.nonce or ""))


def stream_seal_key(key: PeerKey, request_nonce: str) -> bytes:
    """The key that seals one streamed body: bound to the request that asked for it."""
    return hmac.new(key.secret, f"{STREAM_TAG}|{request_nonce}".encode(), hashlib.sha256).digest()


def verify_response(response: requests.Response, key: PeerKey) -> VerifiedSignature:
    """Check the signature, age and body digest of the peer's answer to our signed request.

    No nonce store is needed: the signature covers our request's signature, which is new
    for every request, so an answer cannot be replayed to another request.
    """
    if not _carries_signature(response.headers):
        raise SignatureRefused(Reason.UNSIGNED, "The answer carries no HTTP message signature.")
    view = _Response(response.status_code, response.headers, response.request)
    result = _verify(view, (key,), RESPONSE_TAG, RESPONSE_COMPONENTS, "answer")
    created = _check_time(result, "answer")
    _check_digest(result, response.content, "answer")
    return VerifiedSignature(key=key, created=created, nonce=str(result.nonce or ""))


@dataclass
class _Request:
    """The view of a request the library resolves components from."""

    method: str
    url: str
    headers: Any


@dataclass
class _Response:
    """The view of a response; `request` supplies the components marked `req`."""

    status_code: int
    headers: Any
    request: Any


class _KeyResolver(HTTPSignatureKeyResolver):
    """Knows some keys by id; remembers an unknown key id so a mismatch can be named as such."""

    def __init__(self, *known: PeerKey) -> None:
        self.keys = {key.key_id: key for key in known}
        self.signing = known[0]
        self.unknown_key_id: str | None = None

    def resolve_public_key(self, key_id: str) -> bytes | None:
        if key_id in self.keys:
            return self.keys[key_id].secret
        self.unknown_key_id = key_id
        return None

    def resolve_private_key(self, key_id: str) -> bytes:
        return self.signing.secret


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Skipped here: `_check_time` checks the creation time once the signature is proven
        authentic, so a forged old request is reported as forged rather than as stale."""


def _django_request_view(request: HttpRequest) -> _Request:
    # gunicorn passes the request target exactly as sent; Django's own is re-encoded.
    target = request.META.get("RAW_URI", "")
    if not target.startswith("/"):
        target = request.get_full_path()
    return _Request(
        request.method or "", f"{request.scheme}://{request.get_host()}{target}", request.headers
    )


def _carries_signature(headers: Any) -> bool:
    return "Signature" in headers or "Signature-Input" in headers


def _sign(
    message: Any,
    key: PeerKey,
    tag: str,
    components: tuple[str, ...],
    body: bytes,
    created: dt.datetime | None,
    nonce: str | None,
    expires: dt.datetime | None = None,
) -> None:
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256, key_resolver=_KeyResolver(key)
    )
    signer.sign(
        message,
        key_id=key.key_id,
        created=created or dt.datetime.now(dt.UTC),
        expires=expires,
        nonce=nonce or secrets.token_urlsafe(24),
        label=LABEL,
        tag=tag,
        covered_component_ids=components,
        body=body,
    )


def _verify(
    message: Any, candidates: tuple[PeerKey, ...], tag: str, components: tuple[str, ...], what: str
) -> VerifyResult:
    resolver = _KeyResolver(*candidates)
    verifier = _Verifier(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=resolver)
    try:
        results = verifier.verify(
            message, max_age=None, expect_tag=tag, require_components=components
        )
    except HTTPMessageSignaturesException as error:
        logger.debug("Peer %s signature refused: %s", what, error)
        if resolver.unknown_key_id is not None:
            raise SignatureRefused(
                Reason.BAD_SIGNATURE,
                f"The {what} was signed with a pair key this site does not hold: run `manage.py "
                "failover rekey` on one site, or establish the relationship again.",
            ) from None
        raise SignatureRefused(
            Reason.BAD_SIGNATURE,
            f"The {what}'s signature does not match it as received: it was made with a "
            "different pre-shared key (save the same key on both sites), does not cover what "
            "this site requires, or the message was changed on the way.",
        ) from None
    return results[0]


def _check_time(result: VerifyResult, what: str) -> dt.datetime:
    created = result.parameters.get("created")
    if not isinstance(created, int):
        raise SignatureRefused(
            Reason.BAD_SIGNATURE, f"The {what}'s signature has no creation time."
        )
    skew = clock_skew_seconds()
    now = time.time()
    hint = "check that both sites' clocks are synchronised (NTP)."
    if now - created > skew:
        raise SignatureRefused(
            Reason.STALE,
            f"The {what} was signed {now - created:.0f} s ago, more than the allowed clock skew "
            f"of {skew} s: {hint}",
        )
    if created - now > skew:
        raise SignatureRefused(
            Reason.FUTURE,
            f"The {what} was signed {created - now:.0f} s in the future, more than the allowed "
            f"clock skew of {skew} s: {hint}",
        )
    expires = result.parameters.get("expires")
    if expires is not None:
        # The signer's own limit, on top of the skew: after it, the message is void.
        if not isinstance(expires, int) or expires < created:
            raise SignatureRefused(
                Reason.BAD_SIGNATURE, f"The {what}'s signature has an unusable expiry time."
            )
        if now > expires:
            raise SignatureRefused(
                Reason.STALE,
                f"The {what}'s signature expired {now - expires:.0f} s ago; {hint}",
            )
    return dt.datetime.fromtimestamp(created, dt.UTC)


def _check_digest(result: VerifyResult, body: bytes, what: str) -> None:
    try:
        ContentDigest.verify_components(result.covered_components, body)
    except HTTPMessageSignaturesException:
        raise SignatureRefused(
            Reason.DIGEST_MISMATCH,
            f"The {what}'s body does not match its signed Content-Digest: it was changed on "
            "the way.",
        ) from None
