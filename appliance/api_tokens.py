"""Administrators' API tokens at work: `Authorization: Token <key>` on every API.

DRF's own token model keeps the key in clear; appliance.models.ApiToken keeps only
its SHA-256, and this authentication looks the digest up. The OpenAPI schema
describes it as DRF's own (drf-spectacular's `tokenAuth`), which it is on the wire.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from appliance.models import ApiToken


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's token header and answers; the key is compared as its digest."""

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        token = ApiToken.holder(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return token.user, token
