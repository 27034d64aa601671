"""Test support for the messaging connectors: a local HTTP server standing in for a provider's
API (Meta Graph, Telegram Bot API, Twilio), and a way to run background tasks to the end.

The fake records every request exactly as sent (method, path, query, headers, raw body) and
answers from per-route queues of canned responses, falling back to a route's default (a fixed
answer or a function of the request). Routes match on method and a regular expression over the
path, first added first tried; an unmatched request gets a 404 in the provider's usual JSON.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db.models.functions import Now
from django_tasks_db.models import DBTaskResult

from loket.jobs.worker import Worker


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class Answer:
    status: int = 200
    body: bytes | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    hold: threading.Event | None = None  # wait for this before answering

    def encoded(self) -> bytes:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode()
        return self.body


Handler = Callable[[Request], Answer]


class _Route:
    def __init__(self, method: str, pattern: str, default: Answer | Handler | None) -> None:
        self.method = method.upper()
        self.pattern = re.compile(pattern)
        self.default = default
        self.queue: deque[Answer] = deque()


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.url = ""  # http://127.0.0.1:<port>, set when running
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def reset(self) -> None:
        """Forget routes and recorded requests (a shared fake between tests)."""
        with self._lock:
            self._routes.clear()
            self.requests.clear()

    def route(self, method: str, pattern: str, default: Answer | Handler | None = None) -> None:
        """Answer ``method`` requests whose path matches ``pattern`` (re.fullmatch)."""
        with self._lock:
            self._routes.append(_Route(method, pattern, default))

    def then(self, method: str, pattern: str, *answers: Answer) -> None:
        """Queue one-off answers for the next matching requests (before the default)."""
        with self._lock:
            for route in self._routes:
                if route.method == method.upper() and route.pattern.pattern == pattern:
                    route.queue.extend(answers)
                    return
            route = _Route(method, pattern, None)
            route.queue.extend(answers)
            self._routes.append(route)

    def requests_to(self, method: str, pattern: str) -> list[Request]:
        compiled = re.compile(pattern)
        return [
            r for r in self.requests if r.method == method.upper() and compiled.fullmatch(r.path)
        ]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def _answer(self, request: Request) -> Answer:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            for route in self._routes:
                if route.method == request.method and route.pattern.fullmatch(request.path):
                    if route.queue:
                        return route.queue.popleft()
                    default = route.default
                    break
            else:
                return Answer(404, {"error": {"message": f"no route for {request.path}"}})
        if default is None:
            return Answer(200, {})
        return default(request) if callable(default) else default


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        answer = self.server.provider._answer(request)
        if answer.hold is not None:
            answer.hold.wait(30)
        payload = answer.encoded()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, format, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: FakeProvider

    def handle_error(self, request, client_address) -> None:
        pass


@contextmanager
def running(provider: FakeProvider | None = None) -> Iterator[FakeProvider]:
    provider = provider or FakeProvider()
    server = _Server(("127.0.0.1", 0), _RequestHandler)
    server.provider = provider
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def run_tasks(*, retries_due: bool = False, rounds: int = 20) -> None:
    """Run every due background task until none is left. ``retries_due``: also tasks waiting
    for a retry (their backoff skipped), so "retried, then sent" runs to the end."""
    worker = Worker(stop=None)
    for _ in range(rounds):
        while worker._run_once():
            pass
        if not retries_due:
            return
        # A retry is a ready task that already ran (periodic jobs wait without having run).
        waiting = DBTaskResult.objects.filter(status="READY").exclude(worker_ids=[])
        if not waiting.exists():
            return
        waiting.update(run_after=Now())
