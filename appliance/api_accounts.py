"""API accounts at work: OAuth 2.0 client credentials and bearer tokens (django-oauth-toolkit).

A script posts its client ID and secret to /oauth2/token (HTTP Basic, as BeyondTrust's
clients do, or in the form) with `grant_type=client_credentials` and gets a bearer
token that lasts an hour. django-oauth-toolkit answers that request and checks the
tokens; its Application row is derived here from the API account, which is the record
that counts (and the one the data sync carries): an account that is disabled, deleted
or given a new secret takes its tokens with it at the next request, on either site.

Tokens are stored as checksums only. Those the primary issued travel with their
account in the data sync (`adopt_tokens`), so a monitor holding a token keeps it
through a failover; the backup keeps the tokens it issued itself, which lapse within
the hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.models import AccessToken, Application
from oauth2_provider.oauth2_validators import OAuth2Validator
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from appliance.models import ApiAccount, ApiAccountUse

# As BeyondTrust: each account holds at most this many valid tokens; a new one retires
# the oldest.
TOKENS_PER_ACCOUNT = 30


@dataclass(frozen=True)
class ApiClient:
    """Who is calling when an API account's bearer token authenticates a request.

    DRF's `request.user` for such a request: not a user of the site (it cannot log
    in, has no administrative rights), but named in the audit trail and the history.
    """

    account: ApiAccount = field(compare=False)
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def username(self) -> str:
        return f"{self.account.name} (API account)"

    @property
    def api_access(self) -> str:
        return self.account.access

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


def application_for(account: ApiAccount) -> Application:
    """The django-oauth-toolkit client of `account`, created or brought in step with it."""
    wanted = {
        "name": account.name,
        "client_secret": account.secret_hash,
        "hash_client_secret": True,
        "client_type": Application.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": Application.GRANT_CLIENT_CREDENTIALS,
    }
    application, created = Application.objects.get_or_create(
        client_id=account.client_id, defaults=wanted
    )
    if not created and any(getattr(application, key) != value for key, value in wanted.items()):
        for key, value in wanted.items():
            setattr(application, key, value)
        application.save()
    return application


class AccountValidator(OAuth2Validator):
    """django-oauth-toolkit's validator, with API accounts as the clients."""

    def _load_application(self, client_id: str, request: Any) -> Application | None:
        account = ApiAccount.objects.filter(client_id=client_id, enabled=True).first()
        if account is None:
            request.client = None
            return None
        request.client = application_for(account)
        request.api_account = account
        return request.client

    def save_bearer_token(self, token: dict, request: Any, *args: Any, **kwargs: Any) -> None:
        super().save_bearer_token(token, request, *args, **kwargs)
        retired = AccessToken.objects.filter(application=request.client).order_by("-created")
        stale = list(retired.values_list("pk", flat=True)[TOKENS_PER_ACCOUNT:])
        if stale:
            AccessToken.objects.filter(pk__in=stale).delete()
        if account := getattr(request, "api_account", None):
            account.record_use()


class ApiAccountAuthentication(OAuth2Authentication):
    """`Authorization: Bearer <token>` of an enabled API account; the user is an ApiClient."""

    def authenticate(self, request: Request) -> tuple[ApiClient, AccessToken] | None:
        found = super().authenticate(request)
        if found is None:
            if self._bearer(request) and getattr(request, "oauth2_error", None):
                reason = request.oauth2_error.get("error_description", "The token is invalid.")
                raise AuthenticationFailed(f"{reason} Request a new one at /oauth2/token.")
            return None
        _, token = found
        account = ApiAccount.objects.filter(client_id=token.application.client_id).first()
        if account is None or not account.enabled:
            raise AuthenticationFailed("This token's API account was disabled or deleted.")
        if token.created < account.secret_changed_at:
            raise AuthenticationFailed(
                "This token's API account has a new client secret: request a new token with it."
            )
        account.record_use()
        return ApiClient(account), token

    @staticmethod
    def _bearer(request: Request) -> bool:
        return request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")


class ApiAccountScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes API accounts: OAuth 2.0 client credentials."""

    target_class = "appliance.api_accounts.ApiAccountAuthentication"
    name = "apiAccount"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "oauth2",
            "description": "An API account (Management > API Accounts): its client ID and "
            "secret buy a bearer token, valid for an hour.",
            "flows": {"clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {}}},
        }


@receiver(post_delete, sender=ApiAccount, dispatch_uid="api-account-deleted")
def _forget_tokens(sender: type[ApiAccount], instance: ApiAccount, **_kwargs: object) -> None:
    """A deleted account's client goes, its tokens and its last use with it (also when a
    sync deletes it)."""
    Application.objects.filter(client_id=instance.client_id).delete()
    ApiAccountUse.objects.filter(client_id=instance.client_id).delete()


def live_tokens(client_ids: list[str]) -> dict[str, list[list[str]]]:
    """The unexpired tokens of these accounts, by client ID, as the data sync carries them:
    [checksum, expires, created, scope] (times in ISO 8601)."""
    found: dict[str, list[list[str]]] = {}
    tokens = AccessToken.objects.filter(
        application__client_id__in=client_ids, expires__gt=dt.datetime.now(dt.UTC)
    ).order_by("created", "pk")
    for client_id, checksum, expires, created, scope in tokens.values_list(
        "application__client_id", "token_checksum", "expires", "created", "scope"
    ):
        found.setdefault(client_id, []).append(
            [checksum, expires.isoformat(), created.isoformat(), scope]
        )
    return found


def adopt_tokens(account: ApiAccount, tokens: list[list[str]]) -> None:
    """Make the tokens the other site issued to `account` valid here (as `live_tokens` gave
    them); the tokens this site issued itself stay."""
    known = set(
        AccessToken.objects.filter(token_checksum__in=[token[0] for token in tokens]).values_list(
            "token_checksum", flat=True
        )
    )
    application = application_for(account)
    adopted = [
        AccessToken(
            application=application,
            token="",
            token_checksum=checksum,
            expires=dt.datetime.fromisoformat(expires),
            scope=scope,
        )
        for checksum, expires, _created, scope in tokens
        if checksum not in known
    ]
    created = {checksum: dt.datetime.fromisoformat(moment) for checksum, _e, moment, _s in tokens}
    AccessToken.objects.bulk_create(adopted)  # sets `created` to now (auto_now_add): put it back
    for token in adopted:
        token.created = created[token.token_checksum]
    AccessToken.objects.bulk_update(adopted, ["created"])


def revoke_tokens(account: ApiAccount) -> int:
    """Delete this site's tokens of `account` (its secret changed); how many there were."""
    deleted, _ = AccessToken.objects.filter(application__client_id=account.client_id).delete()
    return deleted
