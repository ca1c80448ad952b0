"""DRF authentication of the other site: a valid peer signature, or 401 with a reason.

Every refusal is recorded (reason, source address, method and path; never the key or
the signature) and changes nothing: it happens before the view runs.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from appliance.models import AuditEvent
from security import nonces, signing

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
        """The hook every refusal goes through: one audit event, for the status history."""
        source = request.META.get("REMOTE_ADDR") or "an unknown address"
        path = request.path[:MAX_PATH_IN_RECORD]
        AuditEvent.record(
            None,
            "peer.auth_refused",
            f"Refused a peer request ({refusal.reason}) from {source} {request.method} {path}: "
            f"{refusal.detail}",
        )


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
