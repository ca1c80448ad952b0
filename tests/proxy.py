"""A TCP proxy for fault tests: it sits on the wire between two sites and damages it on demand.

It forwards bytes unchanged until a fault is injected. Then the answers to the
requests whose path contains `into` are watched, and `after` bytes into each
answer's body the proxy either flips one bit ("corrupt") or resets both
connections ("cut"). With `times`, only the first that many answers are
damaged and the fault then clears itself: a test that wants the retry to
succeed says how many attempts fail, instead of racing the retries to clear
the fault by hand. Other requests on the wire, such as the peer checks, pass
untouched. One thread pumps both directions of a connection, so a fault never
races the forwarding.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

REQUEST_LINE = re.compile(rb"^[A-Z]+ (\S+) HTTP/1\.[01]\r\n")
# Lower-case letters outside the hex digits: chunk sizes and the HTTP framing never
# contain them, so flipping one changes the payload of the body, not how it is framed.
PAYLOAD_LETTER = re.compile(rb"[g-z]")
CASE_BIT = 0x20
FAULTS = ("corrupt", "cut")


@dataclass
class _Answer:
    """The answer to one watched request as it passes: its headers, then its body."""

    headers: bytes = b""
    body_seen: int = -1

    def body_start(self, data: bytes) -> int | None:
        """Where the body starts within `data`, the next bytes of the answer (None: not yet)."""
        if self.body_seen >= 0:
            return 0
        self.headers += data
        end = self.headers.find(b"\r\n\r\n")
        if end < 0:
            return None
        self.body_seen = 0
        return len(data) - (len(self.headers) - end - 4)


class FaultyProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, with faults injected on demand."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.fault: str | None = None
        self.into = b""
        self.after = 0
        self.times: int | None = None
        self.injected = 0
        self._armed = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def inject(self, fault: str, *, into: str, after: int, times: int | None = None) -> None:
        """From now on, `fault` the answers to requests for a path containing `into`:
        every one, or only the first `times` of them."""
        if fault not in FAULTS:
            raise ValueError(f"{fault!r} is not a fault this proxy knows; use one of {FAULTS}.")
        with self._lock:
            self.into, self.after, self.times = into.encode(), after, times
            self.injected = self._armed = 0
            self.fault = fault

    def _arm(self, path: bytes) -> bool:
        """Whether the answer to a request for `path` is to be damaged (and counts)."""
        with self._lock:
            if self.fault is None or self.into not in path:
                return False
            if self.times is not None and self._armed >= self.times:
                return False
            self._armed += 1
            return True

    def clear(self) -> None:
        """Forward everything unchanged again."""
        self.fault = None

    def __enter__(self) -> FaultyProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            self._spawn(self._pump, client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        answer: _Answer | None = None
        try:
            while not self._stopping.is_set():
                readable, _, _ = select.select([client, server], [], [], 0.2)
                if client in readable:
                    data = client.recv(65536)
                    if not data:
                        return
                    if request := REQUEST_LINE.match(data):
                        answer = _Answer() if self._arm(request.group(1)) else None
                    server.sendall(data)
                if server in readable:
                    data = server.recv(65536)
                    if not data:
                        return
                    if answer is not None:
                        data, answer = self._interfere(data, answer, client, server)
                    if data is None:
                        return
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _interfere(
        self, data: bytes, answer: _Answer, client: socket.socket, server: socket.socket
    ) -> tuple[bytes | None, _Answer | None]:
        """Pass `data` on, applying the fault once the body reaches `after` (None: cut)."""
        starts = answer.body_start(data)
        if starts is None:
            return data, answer
        before = answer.body_seen
        answer.body_seen += len(data) - starts
        if answer.body_seen <= self.after or self.fault is None:
            return data, answer
        at = starts + max(0, self.after - before)
        if self.fault == "cut":
            client.sendall(data[:at])
            self.injected += 1
            _reset(client)
            _reset(server)
            return None, None
        letter = PAYLOAD_LETTER.search(data, at)
        if letter is None:
            return data, answer
        damaged = bytearray(data)
        damaged[letter.start()] ^= CASE_BIT
        self.injected += 1
        return bytes(damaged), None


def _reset(sock: socket.socket) -> None:
    """Close abruptly: a TCP reset instead of an orderly end of the stream."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
