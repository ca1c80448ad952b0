"""The one door to the peer, against real TLS servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory

from appliance import tracing
from failover.peer import PeerClient, PeerError, fetch_certificate_fingerprint
from security import keys, signing
from security.models import PreSharedKey
from tests.certs import Certificate, make_ca, make_server_certificate

PSK = "a long shared passphrase 1234"
KEY = signing.PeerKey.from_psk(PSK)
OTHER = signing.PeerKey.from_psk("somebody else's passphrase 5678")
SHORT_TIMEOUT = 0.5

pytestmark = pytest.mark.usefixtures("peer_redis")

Handler = Callable[[HttpRequest], HttpResponse]


def echo(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body) if request.body else None
    return JsonResponse({"method": request.method, "path": request.get_full_path(), "body": body})


class FakePeer:
    """The other site, reduced to its protocol: verify our signature, answer, sign the answer.

    Requests are turned into Django requests so the real security.signing code checks them.
    `handler` makes the answer; `sign_with` chooses the answer's key (None: unsigned).
    """

    def __init__(self, certificate: Certificate | None, *, key: signing.PeerKey = KEY) -> None:
        self.key = key
        self.handler: Handler = echo
        self.sign_with: signing.PeerKey | None = key
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self.server.peer = self  # type: ignore[attr-defined]
        self.tls = certificate is not None
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate.cert_path, certificate.key_path)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakePeer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def answer(self, raw: BaseHTTPRequestHandler) -> HttpResponse:
        length = int(raw.headers.get("Content-Length") or 0)
        body = raw.rfile.read(length)
        headers = {
            name: value
            for name, value in raw.headers.items()
            if name.lower() not in ("content-type", "content-length")
        }
        request = RequestFactory().generic(
            raw.command,
            raw.path,
            data=body,
            content_type=raw.headers.get("Content-Type", ""),
            secure=self.tls,
            headers=headers,
        )
        try:
            signing.verify_request(request, self.key, receiver="fake-peer")
        except signing.SignatureRefused as refusal:
            return JsonResponse({"reason": refusal.reason, "detail": refusal.detail}, status=401)
        response = self.handler(request)
        if self.sign_with is not None:
            signing.sign_response(response, request, self.sign_with)
        return response


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        response = self.server.peer.answer(self)  # type: ignore[attr-defined]
        self.send_response(response.status_code)
        for name, value in response.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Certificate]:
    folder: Path = tmp_path_factory.mktemp("certs")
    ca = make_ca(folder)
    return {
        "ca": ca,
        "server": make_server_certificate(folder, ca),
        "replacement": make_server_certificate(folder, ca),
        "localhost_only": make_server_certificate(folder, ca, ("localhost",)),
    }


@pytest.fixture
def peer(certs) -> Iterator[FakePeer]:
    with FakePeer(certs["server"]) as fake:
        yield fake


def pinned_client(peer: FakePeer, fingerprint: str, **options) -> PeerClient:
    return PeerClient("127.0.0.1", peer.port, pinned_fingerprint=fingerprint, key=KEY, **options)


def peer_error(call: Callable, *args, **kwargs) -> PeerError:
    with pytest.raises(PeerError) as caught:
        call(*args, **kwargs)
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_talks_to_a_peer_whose_certificate_matches_the_pin(peer, certs):
    with pinned_client(peer, certs["server"].fingerprint) as client:
        assert client.get("/api/peer/v1/status?since=3") == {
            "method": "GET",
            "path": "/api/peer/v1/status?since=3",
            "body": None,
        }
        assert client.post("/api/peer/v1/sync", {"records": [1, 2]})["body"] == {"records": [1, 2]}


def test_it_accepts_a_pin_written_in_lowercase_without_colons(peer, certs):
    pin = certs["server"].fingerprint.replace(":", "").lower()
    with pinned_client(peer, pin) as client:
        assert client.get("/ping")["method"] == "GET"


def test_it_refuses_a_changed_certificate_naming_both_fingerprints(certs):
    with (
        FakePeer(certs["replacement"]) as peer,
        pinned_client(peer, certs["server"].fingerprint) as client,
    ):
        error = peer_error(client.get, "/ping")
    assert error.reason == "certificate_changed"
    assert not error.transient
    assert error.message.startswith(
        f"The peer's certificate changed: pinned {certs['server'].fingerprint}, "
        f"presented {certs['replacement'].fingerprint}."
    )


def test_it_verifies_the_peer_against_a_ca_bundle(peer, certs):
    with PeerClient("127.0.0.1", peer.port, ca_bundle=str(certs["ca"].cert_path), key=KEY) as c:
        assert c.get("/ping")["path"] == "/ping"


def test_it_refuses_a_certificate_no_trusted_ca_signed(peer):
    with PeerClient("127.0.0.1", peer.port, key=KEY) as client:
        error = peer_error(client.get, "/ping")
    assert error.reason == "tls"
    assert not error.transient
    assert error.message.startswith(
        f"TLS handshake with 127.0.0.1:{peer.port} failed: certificate verify failed: "
    )


def test_it_refuses_a_certificate_for_another_host(certs):
    with (
        FakePeer(certs["localhost_only"]) as peer,
        PeerClient("127.0.0.1", peer.port, ca_bundle=str(certs["ca"].cert_path), key=KEY) as client,
    ):
        error = peer_error(client.get, "/ping")
    assert error.reason == "tls"
    assert "mismatch" in error.message


def test_it_says_the_key_differs_when_the_peer_refuses_our_signature(certs):
    with (
        FakePeer(certs["server"], key=OTHER) as peer,
        pinned_client(peer, certs["server"].fingerprint) as client,
    ):
        error = peer_error(client.post, "/api/peer/v1/establish", {"role": "backup"})
    assert error.reason == "key_mismatch"
    assert error.status == 401
    assert error.message == (
        f"The peer at 127.0.0.1:{peer.port} refused our signature: key mismatch — save the "
        "same pre-shared key on both sites."
    )


@pytest.mark.parametrize(
    ("peer_reason", "reason", "transient", "words"),
    [
        ("stale", "clock_skew", False, "as too old: the two sites' clocks differ"),
        ("future", "clock_skew", False, "signed in the future"),
        ("no_key", "peer_no_key", False, "has no pre-shared key"),
        ("replayed", "replayed", True, "as a replay"),
        ("digest_mismatch", "signature_refused", False, "does not match its signed digest"),
        ("unsigned", "signature_refused", False, "removes the Signature headers"),
    ],
)
def test_it_explains_each_reason_the_peer_gives_for_a_refusal(
    peer, certs, peer_reason, reason, transient, words
):
    peer.handler = lambda request: JsonResponse({"reason": peer_reason, "detail": "x"}, status=401)
    peer.sign_with = None
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.get, "/ping")
    assert (error.reason, error.transient) == (reason, transient)
    assert words in error.message


def test_it_refuses_an_answer_signed_with_another_key(peer, certs):
    peer.sign_with = OTHER
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.get, "/ping")
    assert error.reason == "bad_response"
    assert "is not authentic (bad_signature)" in error.message


def test_it_refuses_an_unsigned_answer(peer, certs):
    peer.sign_with = None
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.get, "/ping")
    assert error.reason == "bad_response"
    assert "(HTTP 200) is not signed" in error.message


def test_it_reports_a_server_error_as_worth_retrying(peer, certs):
    peer.handler = lambda request: HttpResponse("Service Unavailable", status=503)
    peer.sign_with = None
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.get, "/ping")
    assert (error.reason, error.transient, error.status) == ("server_error", True, 503)
    assert (
        error.message == f"The peer at 127.0.0.1:{peer.port} failed to answer GET /ping: HTTP 503."
    )


def test_it_suspects_another_software_version_when_an_endpoint_is_missing(peer, certs):
    peer.handler = lambda request: HttpResponse("Not Found", status=404)
    peer.sign_with = None
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.get, "/api/peer/v2/status")
    assert error.reason == "not_found"
    assert "does not offer GET /api/peer/v2/status: is it running the same software" in (
        error.message
    )


def test_it_passes_on_a_signed_refusal_with_the_peers_detail(peer, certs):
    peer.handler = lambda request: JsonResponse(
        {"detail": "This site is already paired with 192.0.2.9."}, status=409
    )
    with pinned_client(peer, certs["server"].fingerprint) as client:
        error = peer_error(client.post, "/api/peer/v1/establish", {})
    assert (error.reason, error.status, error.transient) == ("rejected", 409, False)
    assert error.payload == {"detail": "This site is already paired with 192.0.2.9."}
    assert error.message.endswith(
        "refused POST /api/peer/v1/establish: HTTP 409: This site is already paired with 192.0.2.9."
    )


def test_it_says_the_connection_was_refused():
    port = closed_port()
    with PeerClient("127.0.0.1", port, key=KEY) as client:
        error = peer_error(client.get, "/ping")
    assert (error.reason, error.transient) == ("unreachable", True)
    assert error.message == f"Could not reach 127.0.0.1:{port}: connection refused."


def test_it_gives_up_on_a_peer_that_never_answers_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with PeerClient("127.0.0.1", port, key=KEY, timeout=SHORT_TIMEOUT) as client:
            error = peer_error(client.get, "/ping")
    assert (error.reason, error.transient) == ("timeout", True)
    assert error.message == (
        f"The peer at 127.0.0.1:{port} accepted the connection but did not answer within 0.5 s."
    )


def test_it_refuses_plain_http_without_the_development_setting():
    error = peer_error(PeerClient, "127.0.0.1", closed_port(), scheme="http", key=KEY)
    assert (error.reason, error.transient) == ("plain_http_disabled", False)
    assert "PEER_ALLOW_PLAIN_HTTP" in error.message


def test_it_talks_plain_http_when_the_development_setting_allows_it(settings):
    settings.PEER_ALLOW_PLAIN_HTTP = True
    with FakePeer(None) as peer, PeerClient("127.0.0.1", peer.port, scheme="http", key=KEY) as c:
        assert c.get("/ping")["path"] == "/ping"


def test_it_refuses_a_malformed_pin():
    error = peer_error(PeerClient, "127.0.0.1", 443, pinned_fingerprint="AB:CD", key=KEY)
    assert error.reason == "invalid_pin"


@pytest.mark.django_db
def test_it_signs_with_the_stored_key_and_says_when_there_is_none(certs):
    # Without a pair salt, the stored key is the previous releases' (a pair set up by one
    # of them keeps it until `failover rekey`); with one, the pair's own key.
    legacy = signing.PeerKey.legacy(PSK)
    with (
        FakePeer(certs["server"], key=legacy) as peer,
        pinned_client(peer, certs["server"].fingerprint) as client,
    ):
        client._key = None
        error = peer_error(client.get, "/ping")
        assert (error.reason, error.transient) == ("no_key", False)
        assert "This site has no pre-shared key" in error.message
        PreSharedKey.store(PSK, by="test")
        assert client.get("/ping")["path"] == "/ping"
    salt, key_id = keys.new_salt(), keys.new_key_id()
    PreSharedKey.set_pair(salt, key_id)
    with (
        FakePeer(certs["server"], key=signing.PeerKey.from_psk(PSK, salt, key_id)) as peer,
        pinned_client(peer, certs["server"].fingerprint) as client,
    ):
        client._key = None
        assert client.get("/ping")["path"] == "/ping"


def test_it_fetches_the_fingerprint_of_the_presented_certificate(peer, certs):
    assert fetch_certificate_fingerprint("127.0.0.1", peer.port, timeout=2) == (
        certs["server"].fingerprint
    )


def test_fetching_a_fingerprint_says_when_the_peer_is_unreachable():
    port = closed_port()
    error = peer_error(fetch_certificate_fingerprint, "127.0.0.1", port, timeout=2)
    assert error.message == f"Could not reach 127.0.0.1:{port}: connection refused."
    assert error.transient


def test_it_carries_the_request_id_of_the_work_in_progress(peer, certs):
    seen = []

    def remember(request: HttpRequest) -> HttpResponse:
        seen.append(request.headers.get("X-Request-ID"))
        return JsonResponse({})

    peer.handler = remember
    with pinned_client(peer, certs["server"].fingerprint) as client:
        client.get("/ping")
        with tracing.bound("sync-now-7f3a"):
            client.get("/ping")
    assert seen == [None, "sync-now-7f3a"]
