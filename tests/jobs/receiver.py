"""A real local HTTP endpoint standing in for an API channel's ``outbound_url``: it records every
request and answers with queued responses (default 200). It can hold the first request until
released, to catch a sender in the middle of a send."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.url = ""
        self._responses: deque[tuple[int, dict[str, str], bytes]] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.hold_first: threading.Event | None = None

    def respond(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        """Queue the answer to the next request (after that: 200)."""
        with self._lock:
            self._responses.append((status, headers or {}, body))

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def _record(self, request: Received) -> tuple[int, bool, tuple[int, dict[str, str], bytes]]:
        with self._arrived:
            self.requests.append(request)
            number = len(self.requests)
            self._arrived.notify_all()
            answer = self._responses.popleft() if self._responses else (200, {}, b'{"ok":true}')
        return number, number == 1 and self.hold_first is not None, answer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        _, hold, (status, headers, payload) = self.server.receiver._record(request)
        if hold:
            self.server.receiver.hold_first.wait(60)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request, client_address) -> None:
        pass  # e.g. answering a sender that was killed meanwhile


@contextmanager
def running_receiver(path: str = "/loket/outbound") -> Iterator[Receiver]:
    receiver = Receiver()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = receiver
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-receiver", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold_first is not None:
            receiver.hold_first.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
