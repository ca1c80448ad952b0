"""The one door to the peer: every call this site makes to the other site goes through here.

Each call is signed (security.signing), carries an explicit (connect, read) timeout, checks
the peer's TLS certificate against a CA bundle or a pinned fingerprint, and has its answer's
signature verified. It carries the request id of the work in progress (appliance.tracing),
so the peer's log lines for it carry the same id. Every failure becomes one `PeerError`
with a sentence an administrator can act on and whether retrying may help.

`client_for_state` gives the client for the peer this site is paired with; the paths
of the peer API (served by failover.peer_api) are named here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from requests.adapters import HTTPAdapter

from appliance import tracing
from security import signing

if TYPE_CHECKING:
    from failover.models import FailoverState  # deferred: for type hints only

# The peer API (failover/peer_urls.py).
HELLO = "/api/peer/v1/hello"
ESTABLISH = "/api/peer/v1/establish"
BREAK = "/api/peer/v1/break"
ROLE = "/api/peer/v1/role"
SYNC_REQUEST = "/api/peer/v1/sync/request"
SYNC_CHANGES = "/api/peer/v1/sync/changes"
SYNC_FILE = "/api/peer/v1/sync/file"
BACKUP_SETTINGS = "/api/peer/v1/backup-settings"
REKEY = "/api/peer/v1/rekey"

USER_AGENT = "appliance-failover-peer/1"
SHA256_HEX_LENGTH = 64
E = TypeVar("E", bound=BaseException)
MAX_QUOTED_DETAIL = 1000
# urllib3's words when `assert_fingerprint` fails; the second hex string is the presented one.
FINGERPRINT_MISMATCH = re.compile(
    r'Fingerprints did not match\. Expected "[0-9a-f]+", got "([0-9a-f]+)"'
)


class PeerError(Exception):
    """A call to the peer failed.

    `message` is a sentence for the administrator; `transient` says whether retrying later
    may succeed; `reason` is one of:

    - transient: "unreachable", "timeout", "server_error" (5xx), "replayed";
    - permanent: "tls", "certificate_changed", "key_mismatch", "no_key" (this site has
      none), "peer_no_key", "clock_skew", "signature_refused", "bad_response",
      "not_found", "redirected", "rejected" (another 4xx), "plain_http_disabled",
      "invalid_address", "invalid_pin".

    `status` and `payload` hold the peer's HTTP status and decoded answer when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        reason: str,
        status: int | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.reason = reason
        self.status = status
        self.payload = payload


class PeerStream:
    """A streamed answer being read; read errors become transient PeerErrors."""

    def __init__(
        self, client: PeerClient, response: requests.Response, seal_key: bytes, call: str
    ) -> None:
        self.client = client
        self.response = response
        self.seal_key = seal_key
        self.call = call

    def chunks(self, size: int) -> Iterator[bytes]:
        try:
            yield from self.response.iter_content(chunk_size=size)
        except requests.RequestException as error:
            raise PeerError(
                f"The stream from the peer at {self.client.address} ({self.call}) broke off: "
                f"{error.__class__.__name__}.",
                transient=True,
                reason="unreachable",
            ) from None


@dataclass(frozen=True)
class PeerResponse:
    """A verified answer: its HTTP status and decoded JSON body (None when empty)."""

    status: int
    data: Any


def format_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as colon-separated uppercase hex (AA:BB:...)."""
    return _colon_hex(hashlib.sha256(der).hexdigest())


def normalize_fingerprint(text: str) -> str:
    """Accept a SHA-256 fingerprint with or without colons, any case; return AA:BB:... form."""
    digits = re.sub(r"[\s:]", "", text)
    if len(digits) != SHA256_HEX_LENGTH or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise ValueError(
            "A certificate fingerprint is 64 hexadecimal digits (SHA-256), optionally "
            "separated by colons."
        )
    return _colon_hex(digits)


def fetch_certificate_fingerprint(host: str, port: int, timeout: float = 5.0) -> str:
    """Connect with TLS, without verifying, and return the presented certificate's fingerprint.

    Used when establishing the relationship, to show the administrator what will be pinned.
    """
    address = _display_address(host, port)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLError as error:
        raise PeerError(
            f"TLS handshake with {address} failed: {_describe_tls_error(error)}.",
            transient=False,
            reason="tls",
        ) from error
    except TimeoutError as error:
        raise PeerError(
            f"Could not reach {address}: connection timed out after {timeout:g} s.",
            transient=True,
            reason="timeout",
        ) from error
    except OSError as error:
        raise PeerError(
            f"Could not reach {address}: {_describe_os_error(error, host)}.",
            transient=True,
            reason="unreachable",
        ) from error
    if not der:
        raise PeerError(
            f"The peer at {address} presented no certificate.", transient=False, reason="tls"
        )
    return format_fingerprint(der)


class PinnedCertificateAdapter(HTTPAdapter):
    """Trusts exactly one certificate, by SHA-256 fingerprint, instead of a CA.

    urllib3 checks the fingerprint of the presented DER certificate right after the
    handshake (`assert_fingerprint`); CA and host name verification are off only here.
    """

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, False, cert
        )
        pool_kwargs["cert_reqs"] = "CERT_NONE"
        pool_kwargs["assert_fingerprint"] = self.fingerprint
        return host_params, pool_kwargs


class PeerClient:
    """Signed JSON calls to the other site.

    `ca_bundle` verifies the peer's certificate against that CA file; `pinned_fingerprint`
    instead trusts exactly the certificate with that SHA-256 fingerprint; with neither, the
    system's CAs are used. `timeout` applies to connecting and to waiting for the answer.
    `key` defaults to the one derived from this site's stored pre-shared key, read at each
    call so a newly saved key takes effect at once.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        scheme: str = "https",
        ca_bundle: str | None = None,
        pinned_fingerprint: str | None = None,
        timeout: float = 5.0,
        read_timeout: float | None = None,
        key: signing.PeerKey | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.address = _display_address(host, port)
        self.timeout = timeout
        # A held request (continuous replication's long poll) waits longer for its answer
        # than for the connection.
        self.read_timeout = read_timeout or timeout
        self._key = key
        if scheme not in ("https", "http") or not 0 < port < 65536 or not host:
            raise PeerError(
                f"{scheme}://{self.address} is not a peer address: use https, a host name or "
                "IP address, and a port from 1 to 65535.",
                transient=False,
                reason="invalid_address",
            )
        if scheme == "http" and not getattr(settings, "PEER_ALLOW_PLAIN_HTTP", False):
            raise PeerError(
                f"Refusing to talk to the peer at {self.address} over plain HTTP: the sites "
                "must use HTTPS. Plain HTTP is for development only and needs the setting "
                "PEER_ALLOW_PLAIN_HTTP.",
                transient=False,
                reason="plain_http_disabled",
            )
        url_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.base_url = f"{scheme}://{url_host}:{port}"
        self._session = requests.Session()
        # Peer traffic never goes through proxies, .netrc or CA bundles from the environment.
        self._session.trust_env = False
        self._verify: bool | str = ca_bundle or True
        if pinned_fingerprint:
            try:
                pin = normalize_fingerprint(pinned_fingerprint)
            except ValueError as error:
                raise PeerError(
                    f"The pinned certificate fingerprint for {self.address} is invalid: {error}",
                    transient=False,
                    reason="invalid_pin",
                ) from None
            self.pinned_fingerprint: str | None = pin
            self._session.mount("https://", PinnedCertificateAdapter(pin))
            self._verify = False
        else:
            self.pinned_fingerprint = None
            self._session.mount("https://", HTTPAdapter(max_retries=0))
        self._session.mount("http://", HTTPAdapter(max_retries=0))

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def get(self, path: str) -> Any:
        """GET a peer endpoint and return its verified JSON answer."""
        return self.request("GET", path).data

    def post(self, path: str, json: Any = None) -> Any:
        """POST JSON to a peer endpoint and return its verified JSON answer."""
        return self.request("POST", path, json=json).data

    def request(self, method: str, path: str, *, json: Any = None) -> PeerResponse:
        """Send one signed request; return the verified answer or raise PeerError."""
        key = self._signing_key()
        response = self._send(self._prepare(method, path, json, key), stream=False)
        return self._answer(response, key, f"{method} {path}")

    @contextlib.contextmanager
    def stream(self, method: str, path: str, *, json: Any = None) -> Iterator[PeerStream]:
        """Send one signed request and read its answer as it arrives.

        The answer's headers are verified here; its body carries its own seal,
        keyed by `PeerStream.seal_key`, which the reader checks at the end.
        """
        key = self._signing_key()
        nonce = secrets.token_urlsafe(24)
        call = f"{method} {path}"
        response = self._send(self._prepare(method, path, json, key, nonce=nonce), stream=True)
        try:
            if response.status_code != 200:
                self._answer(response, key, call)
                raise PeerError(
                    f"The peer at {self.address} answered {call} with HTTP "
                    f"{response.status_code} instead of a stream.",
                    transient=False,
                    reason="bad_response",
                    status=response.status_code,
                )
            try:
                signing.verify_stream_response(response, key)
            except signing.SignatureRefused as refusal:
                raise PeerError(
                    f"The answer of the peer at {self.address} to {call} is not authentic "
                    f"({refusal.reason}): {refusal.detail}",
                    transient=False,
                    reason="bad_response",
                ) from None
            yield PeerStream(self, response, signing.stream_seal_key(key, nonce), call)
        finally:
            response.close()

    def _prepare(
        self,
        method: str,
        path: str,
        json: Any,
        key: signing.PeerKey,
        *,
        nonce: str | None = None,
    ) -> requests.PreparedRequest:
        if not path.startswith("/"):
            raise ValueError(f"Peer paths start with '/': {path!r}")
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            # The content digest covers the bytes as sent: no compression in between.
            "Accept-Encoding": "identity",
        }
        if request_id := tracing.request_id():
            # Not signed: it only lets the peer's log lines join this site's.
            headers[tracing.HEADER] = request_id
        body = None
        if json is not None:
            body = _json_bytes(json)
            headers["Content-Type"] = "application/json"
        prepared = requests.Request(method, self.base_url + path, data=body, headers=headers)
        outgoing = prepared.prepare()
        signing.sign_request(outgoing, key, nonce=nonce)
        return outgoing

    def _send(self, outgoing: requests.PreparedRequest, *, stream: bool) -> requests.Response:
        try:
            return self._session.send(
                outgoing,
                timeout=(self.timeout, self.read_timeout),
                allow_redirects=False,
                verify=self._verify,
                stream=stream,
            )
        except requests.RequestException as error:
            raise self._transport_error(error) from error

    def _signing_key(self) -> signing.PeerKey:
        if self._key is not None:
            return self._key
        try:
            return signing.PeerKey.stored()
        except signing.SignatureRefused as refusal:
            raise PeerError(refusal.detail, transient=False, reason="no_key") from None

    def _transport_error(self, error: requests.RequestException) -> PeerError:
        if isinstance(error, requests.ConnectTimeout):
            return PeerError(
                f"Could not reach {self.address}: connection timed out after {self.timeout:g} s.",
                transient=True,
                reason="timeout",
            )
        if isinstance(error, requests.ReadTimeout):
            return PeerError(
                f"The peer at {self.address} accepted the connection but did not answer "
                f"within {self.read_timeout:g} s.",
                transient=True,
                reason="timeout",
            )
        if isinstance(error, requests.exceptions.SSLError):
            return self._tls_error(error)
        if isinstance(error, requests.ConnectionError):
            return PeerError(
                f"Could not reach {self.address}: {_describe_os_error(error, self.host)}.",
                transient=True,
                reason="unreachable",
            )
        return PeerError(
            f"Could not talk to the peer at {self.address}: {error.__class__.__name__}.",
            transient=True,
            reason="unreachable",
        )

    def _tls_error(self, error: requests.exceptions.SSLError) -> PeerError:
        mismatch = FINGERPRINT_MISMATCH.search(str(error))
        if self.pinned_fingerprint and mismatch:
            return PeerError(
                f"The peer's certificate changed: pinned {self.pinned_fingerprint}, presented "
                f"{_colon_hex(mismatch.group(1))}. If the peer's certificate was replaced on "
                "purpose, re-establish the relationship to pin the new one.",
                transient=False,
                reason="certificate_changed",
            )
        cause = _find_cause(error, ssl.SSLError)
        described = _describe_tls_error(cause) if cause else "the TLS handshake failed"
        return PeerError(
            f"TLS handshake with {self.address} failed: {described}.",
            transient=False,
            reason="tls",
        )

    def _answer(self, response: requests.Response, key: signing.PeerKey, call: str) -> PeerResponse:
        status = response.status_code
        if status == 401:
            raise self._refusal(response)
        if 300 <= status < 400:
            location = response.headers.get("Location", "elsewhere")[:MAX_QUOTED_DETAIL]
            raise PeerError(
                f"The peer at {self.address} redirected {call} to {location}: check the host, "
                "the port and whether the peer expects HTTPS.",
                transient=False,
                reason="redirected",
                status=status,
            )
        if "Signature" not in response.headers:
            # Nothing the peer's own code answered: a proxy, a crash, or an older version.
            raise self._unsigned_answer(response, call)
        try:
            signing.verify_response(response, key)
        except signing.SignatureRefused as refusal:
            raise PeerError(
                f"The answer of the peer at {self.address} to {call} is not authentic "
                f"({refusal.reason}): {refusal.detail}",
                transient=False,
                reason="bad_response",
                status=status,
            ) from None
        data = self._decode(response, call)
        if status >= 500:
            raise PeerError(
                f"The peer at {self.address} failed to answer {call}: HTTP {status}"
                f"{_quoted_detail(data)}",
                transient=True,
                reason="server_error",
                status=status,
                payload=data,
            )
        if status >= 400:
            raise PeerError(
                f"The peer at {self.address} refused {call}: HTTP {status}{_quoted_detail(data)}",
                transient=status == 429,
                reason="not_found" if status == 404 else "rejected",
                status=status,
                payload=data,
            )
        return PeerResponse(status=status, data=data)

    def _refusal(self, response: requests.Response) -> PeerError:
        """The peer refused our signature. The 401 is unsigned: read only its reason."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        reason = payload.get("reason") if isinstance(payload, dict) else None
        prefix = f"The peer at {self.address}"
        sentences = {
            signing.Reason.BAD_SIGNATURE: (
                f"{prefix} refused our signature: key mismatch — save the same pre-shared key "
                "on both sites.",
                "key_mismatch",
                False,
            ),
            signing.Reason.NO_KEY: (
                f"{prefix} has no pre-shared key: save the same pre-shared key on both sites.",
                "peer_no_key",
                False,
            ),
            signing.Reason.STALE: (
                f"{prefix} refused our request as too old: the two sites' clocks differ by more "
                "than the allowed skew — synchronise them (NTP).",
                "clock_skew",
                False,
            ),
            signing.Reason.FUTURE: (
                f"{prefix} refused our request as signed in the future: the two sites' clocks "
                "differ by more than the allowed skew — synchronise them (NTP).",
                "clock_skew",
                False,
            ),
            signing.Reason.REPLAYED: (
                f"{prefix} refused our request as a replay of an earlier one.",
                "replayed",
                True,
            ),
            signing.Reason.DIGEST_MISMATCH: (
                f"{prefix} received a body that does not match its signed digest: something "
                "between the sites changes requests.",
                "signature_refused",
                False,
            ),
            signing.Reason.UNSIGNED: (
                f"{prefix} received our request without its signature: something between the "
                "sites removes the Signature headers.",
                "signature_refused",
                False,
            ),
        }
        message, code, transient = sentences.get(
            reason,
            (f"{prefix} refused our request: HTTP 401.", "signature_refused", False),
        )
        return PeerError(message, transient=transient, reason=code, status=401, payload=payload)

    def _unsigned_answer(self, response: requests.Response, call: str) -> PeerError:
        status = response.status_code
        if status >= 500:
            return PeerError(
                f"The peer at {self.address} failed to answer {call}: HTTP {status}.",
                transient=True,
                reason="server_error",
                status=status,
            )
        if status == 404:
            return PeerError(
                f"The peer at {self.address} does not offer {call}: is it running the same "
                "software version as this site?",
                transient=False,
                reason="not_found",
                status=status,
            )
        return PeerError(
            f"The answer of the peer at {self.address} to {call} (HTTP {status}) is not "
            "signed: is the other site this software, reached on the right port?",
            transient=False,
            reason="bad_response",
            status=status,
        )

    def _decode(self, response: requests.Response, call: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PeerError(
                f"The peer at {self.address} answered {call} with something that is not JSON.",
                transient=False,
                reason="bad_response",
                status=response.status_code,
            ) from None


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def _colon_hex(digits: str) -> str:
    upper = digits.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def _display_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _quoted_detail(data: Any) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    return f": {str(detail)[:MAX_QUOTED_DETAIL]}" if detail else "."


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything requests and urllib3 wrapped in it, outermost first."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [item for item in [*linked, *current.args] if isinstance(item, BaseException)]


def _find_cause(error: BaseException, kind: type[E]) -> E | None:
    return next((cause for cause in _causes(error) if isinstance(cause, kind)), None)


def _describe_tls_error(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message or 'no reason given'}"
    reason = getattr(error, "reason", None)
    if reason == "WRONG_VERSION_NUMBER":
        return "the peer does not speak TLS on this port (is it plain HTTP?)"
    return str(reason or error).lower().replace("_", " ")


def _describe_os_error(error: BaseException, host: str) -> str:
    if _find_cause(error, socket.gaierror):
        return f"the name {host} does not resolve"
    if _find_cause(error, ConnectionRefusedError):
        return "connection refused"
    if _find_cause(error, ConnectionResetError):
        return "the connection was reset"
    numbered = [cause for cause in _causes(error) if isinstance(cause, OSError) and cause.errno]
    if numbered and isinstance(numbered[0].errno, int):
        return os.strerror(numbered[0].errno).lower()
    return "the connection failed"


@dataclass(frozen=True)
class PeerAddress:
    host: str
    port: int
    fingerprint: str = ""

    @property
    def display(self) -> str:
        return f"{self.host}:{self.port}"


def peer_scheme() -> str:
    """https, unless this site itself serves plain HTTP under the development setting."""
    return "http" if settings.PEER_ALLOW_PLAIN_HTTP and not settings.TLS_CERTFILE else "https"


def client_for(
    address: PeerAddress,
    scheme: str | None = None,
    *,
    timeout: float | None = None,
    read_timeout: float | None = None,
    bootstrap: bool = False,
    legacy: bool = False,
) -> PeerClient:
    """A client for the site at `address`, pinned to its fingerprint when one is given.

    With `bootstrap` it signs with the bootstrap key, which any site with the same
    pre-shared key accepts: for the calls that set up a pair's own key (Establish, rekey).
    With `legacy`, the key of the releases before per-pair keys, which such a site accepts.
    """
    key = None
    if bootstrap or legacy:
        try:
            key = signing.PeerKey.bootstrap() if bootstrap else signing.PeerKey.stored_legacy()
        except signing.SignatureRefused as refusal:
            raise PeerError(refusal.detail, transient=False, reason="no_key") from None
    return PeerClient(
        address.host,
        address.port,
        scheme=scheme or peer_scheme(),
        ca_bundle=settings.PEER_CA_BUNDLE or None,
        pinned_fingerprint=address.fingerprint or None,
        timeout=timeout or settings.PEER_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
        key=key,
    )


def client_for_state(
    state: FailoverState,
    *,
    timeout: float | None = None,
    read_timeout: float | None = None,
    bootstrap: bool = False,
) -> PeerClient:
    """A client for the peer this site is paired with, as its failover state records it."""
    address = PeerAddress(state.peer_host, state.peer_port or 0, state.peer_fingerprint)
    return client_for(
        address, state.peer_scheme, timeout=timeout, read_timeout=read_timeout, bootstrap=bootstrap
    )
