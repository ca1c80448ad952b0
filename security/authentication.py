"""DRF authentication of the other site: a valid peer signature, or 401 with a reason.

Every refusal is recorded (reason, source address, method and path; never the key or
the signature) and changes nothing: it happens before the view runs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from appliance import metrics
from appliance.broker import connection
from appliance.models import AuditEvent
from security import nonces, signing
from security.signals import peer_request_refused

# Where the verified signature of a peer request is kept on the Django request, so the
# response can be signed with the same key and bound to it (see peer_views).
VERIFIED_ATTRIBUTE = "peer_signature"
MAX_PATH_IN_RECORD = 200


class PeerPrincipal:
    """The other site of the pair as the authenticated party of a request. Not a user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    username = "peer"

    def __str__(self) -> str:
        return "peer"

    def get_username(self) -> str:
        return self.username


class PeerSignatureRefused(AuthenticationFailed):
    """401 with a body the peer can act on: {"reason": ..., "detail": ...}."""

    def __init__(self, refusal: signing.SignatureRefused) -> None:
        super().__init__({"reason": str(refusal.reason), "detail": refusal.detail})


class ReplayCheckUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "replay_check_unavailable"


class PeerSignatureAuthentication(BaseAuthentication):
    """Authenticates a request signed with the key derived from this site's pre-shared key."""

    def authenticate(self, request: Request) -> tuple[PeerPrincipal, signing.VerifiedSignature]:
        django_request = request._request
        try:
            verified = signing.verify_request(django_request)
        except signing.SignatureRefused as refusal:
            self.record_refusal(django_request, refusal)
            raise PeerSignatureRefused(refusal) from None
        except nonces.NonceStoreUnavailable as error:
            raise ReplayCheckUnavailable(str(error)) from None
        setattr(django_request, VERIFIED_ATTRIBUTE, verified)
        return PeerPrincipal(), verified

    def authenticate_header(self, request: Request) -> str:
        # A non-empty challenge makes DRF answer 401 rather than 403.
        return f'Signature realm="peer", alg="hmac-sha256", tag="{signing.REQUEST_TAG}"'

    def record_refusal(self, request: HttpRequest, refusal: signing.SignatureRefused) -> None:
        """The hook every refusal goes through: counted for /metrics, then the audit trail,
        then `peer_request_refused` (failover records it in the status history).

        Anyone can send refused requests, from as many addresses as they hold, so
        each reason is recorded (and alerted) at most once a minute for the whole
        site, whatever the source: a flood cannot grow the tables or the alerts
        without bound. /metrics counts every refusal.
        """
        metrics.PEER_REQUESTS_REFUSED.labels(str(refusal.reason)).inc()
        source = request.META.get("REMOTE_ADDR") or "an unknown address"
        if not _first_in_window(str(refusal.reason)):
            return
        path = request.path[:MAX_PATH_IN_RECORD]
        message = (
            f"Refused a peer request ({refusal.reason}) from {source} {request.method} {path}: "
            f"{refusal.detail}"
        )
        AuditEvent.record(None, "peer.auth_refused", message)
        peer_request_refused.send(
            sender=type(self), message=message, reason=str(refusal.reason), source=source
        )


# Every reason shows on /metrics from the start, at 0: a rate needs a first sample.
for _reason in signing.Reason:
    metrics.PEER_REQUESTS_REFUSED.labels(_reason.value)

REFUSAL_WINDOW_SECONDS = 60


def _first_in_window(what: str) -> bool:
    """True for the first refusal of its kind in the window (and when Redis cannot tell)."""
    digest = hashlib.sha256(what.encode()).hexdigest()[:32]
    try:
        return bool(
            connection().set(
                f"appliance-failover:refusal:{digest}", 1, nx=True, ex=REFUSAL_WINDOW_SECONDS
            )
        )
    except redis.RedisError:
        return True


class IsPeer(BasePermission):
    """Only the other site, authenticated by PeerSignatureAuthentication."""

    message = "This endpoint answers only the other site of the failover pair."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, PeerPrincipal)


class PeerSignatureScheme(OpenApiAuthenticationExtension):
    """Describes the peer signature in the OpenAPI schema (drf-spectacular)."""

    target_class = "security.authentication.PeerSignatureAuthentication"
    name = "peerSignature"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Signature",
            "description": (
                "HTTP Message Signature (RFC 9421, hmac-sha256) with a key derived from the "
                "pre-shared key, covering "
                + ", ".join(signing.REQUEST_COMPONENTS)
                + ", created and nonce; with Signature-Input and Content-Digest headers."
            ),
        }
