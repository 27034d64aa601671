"""Inbound webhooks: verify, journal + process in one commit, then acknowledge.

``handle_webhooks`` is the single implementation. It is served two ways: by a lean ASGI route
mounted in front of Django (no session/CSRF/auth middleware, group commit through the ingest
writer threads; the fast path, see loket.asgi) and by an ordinary Django view (the same URLs
under WSGI and the test client), one request at a time.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from loket.connectors.base import Connector, WebhookRejected, WebhookRequest, WebhookResponse
from loket.connectors.registry import REGISTRY
from loket.inbox.models import Channel
from loket.inbox.services import journal

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> WebhookResponse:
    return WebhookResponse(
        status, json.dumps({"error": {"code": code, "message": message}}).encode()
    )


# Active channels by (kind, uuid), kept briefly: a webhook should not pay a query and a decryption
# of the channel's secrets each time. Deactivating a channel or rotating its secret takes effect
# within CHANNEL_CACHE_SECONDS in every process. Unknown ids are remembered apart, in a bounded
# cache, so a flood of random ids can neither hit the database each time nor evict real channels.
CHANNEL_CACHE_SECONDS = 10.0
_channels: dict[tuple[str, uuid.UUID], tuple[float, Channel]] = {}
_unknown: dict[tuple[str, uuid.UUID], float] = {}


_NOT_CACHED = object()


def _active_channel(kind: str, channel_uuid: uuid.UUID, *, cached_only: bool = False):
    """The active channel, None if there is none, or _NOT_CACHED when ``cached_only`` and the
    answer would need the database."""
    key = (kind, channel_uuid)
    now = time.monotonic()
    cached = _channels.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    if _unknown.get(key, 0.0) > now:
        return None
    if cached_only:
        return _NOT_CACHED
    channel = Channel.objects.filter(uuid=channel_uuid, kind=kind, is_active=True).first()
    if channel is None:
        if len(_unknown) >= 1_000:
            _unknown.clear()
        _unknown[key] = now + CHANNEL_CACHE_SECONDS
        _channels.pop(key, None)
        return None
    if len(_channels) >= 10_000:
        _channels.clear()
    _channels[key] = (now + CHANNEL_CACHE_SECONDS, channel)
    return channel


Incoming = tuple[str, str, WebhookRequest]  # (connector key, channel id from the URL, request)
Admitted = tuple[Connector, journal.Delivery, WebhookRequest]


def admit(kind: str, channel_id: str, request: WebhookRequest, *, cached_only: bool = False):
    """Everything before storing: the response for a request answered at once (unknown channel,
    handshake, bad method, too large, failed verification) or the verified delivery to store.
    ``cached_only``: None instead of touching the database (for callers on the event loop).
    Never raises."""
    try:
        return _admit(kind, channel_id, request, cached_only)
    except DatabaseError:
        log.exception("database unavailable while receiving a %s webhook", kind)
        return _error(503, "unavailable", "try again later")
    except Exception:  # one odd request must not fail the others in its batch
        log.exception("could not check a %s webhook for channel %s", kind, channel_id)
        return _error(400, "bad_request", "the request could not be checked")


def _admit(kind: str, channel_id: str, request: WebhookRequest, cached_only: bool):
    connector = REGISTRY.get(kind)
    try:
        channel_uuid = uuid.UUID(channel_id)
    except ValueError:
        channel_uuid = None
    if connector is None or channel_uuid is None:
        return _error(404, "not_found", "no such channel")
    channel = _active_channel(kind, channel_uuid, cached_only=cached_only)
    if channel is _NOT_CACHED:
        return None
    if channel is None:
        return _error(404, "not_found", "no such channel")
    try:
        if request.method == "GET":
            answer = connector.handshake(channel, request)
            return answer or _error(405, "method_not_allowed", "POST deliveries here")
        if request.method != "POST":
            return _error(405, "method_not_allowed", "POST deliveries here")
        if len(request.body) > settings.LOKET_WEBHOOK_MAX_BYTES:
            return _error(413, "too_large", "the body is larger than this endpoint accepts")
        connector.verify(channel, request)
    except WebhookRejected as exc:
        log.warning("rejected %s webhook for channel %s: %s", kind, channel.pk, exc.reason)
        answer = _error(exc.status, "unauthorized", exc.reason)
        answer.headers.update(exc.headers)
        return answer
    meta = connector.journal_meta(request)
    return connector, journal.Delivery(channel, request.body, meta, request.content_type), request


def store(admitted: list[Admitted]) -> list[WebhookResponse]:
    """Store verified deliveries in one commit and answer each: every 200 means committed to
    the journal (and, normally, processed)."""
    try:
        outcomes = journal.record_batch([delivery for _, delivery, _ in admitted])
    except DatabaseError:
        log.exception("database unavailable while storing %d webhook(s)", len(admitted))
        return [_error(503, "unavailable", "try again later") for _ in admitted]
    return [
        _error(400, "bad_payload", outcome.error)
        if outcome.bad_payload
        else connector.acknowledge(delivery.channel, request)
        for (connector, delivery, request), outcome in zip(admitted, outcomes, strict=True)
    ]


def handle_webhooks(incoming: list[Incoming]) -> list[WebhookResponse]:
    """Answer several webhook requests; the verified ones are stored in one commit."""
    verdicts = [admit(kind, channel_id, request) for kind, channel_id, request in incoming]
    admitted = [v for v in verdicts if not isinstance(v, WebhookResponse)]
    stored = iter(store(admitted) if admitted else [])
    return [v if isinstance(v, WebhookResponse) else next(stored) for v in verdicts]


def handle_webhook(kind: str, channel_id: str, request: WebhookRequest) -> WebhookResponse:
    return handle_webhooks([(kind, channel_id, request)])[0]


class IngestWriter:
    """Group commit for the lean route: writer threads take the verified deliveries that
    arrived meanwhile (up to MAX_BATCH) and store them in one transaction, then answer each.

    Fewer commits and round trips per message (the ingest benchmark's limit was CPU per
    message); on SQLite one writer per process, which is what SQLite wants.
    """

    MAX_BATCH = 32
    IDLE_SECONDS = 1.0  # keeps its database connection while busy

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    def submit(self, admitted: Admitted) -> Future:
        future: Future = Future()
        self._queue.put((admitted, future))
        if len(self._threads) < self._wanted() or not all(t.is_alive() for t in self._threads):
            self._start_threads()
        return future

    @staticmethod
    @functools.cache
    def _wanted() -> int:
        # SQLite has one writer; on PostgreSQL a second thread overlaps one batch's round trips
        # with the next ones (measured best at 2 per process on 2 cores: fewer threads and
        # database connections to switch between than 4; see docs/benchmarks.md).
        sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
        return 1 if sqlite else settings.LOKET_INGEST_WRITERS

    def _start_threads(self) -> None:
        with self._start_lock:
            self._threads = [t for t in self._threads if t.is_alive()]  # a writer never exits
            while len(self._threads) < self._wanted():
                thread = threading.Thread(target=self._run, name="loket-ingest-writer", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.IDLE_SECONDS)]
            except queue.Empty:
                _release_connection()  # idle: give a pooled connection back
                continue
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                answers = store([admitted for admitted, _ in batch])
            except BaseException as exc:  # answer every waiting request, whatever happened
                log.exception("the ingest writer failed on a batch of %d", len(batch))
                _release_connection()
                for _, future in batch:
                    _settle(future, exception=exc)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                _settle(future, answer)


def _settle(future: Future, answer=None, *, exception: BaseException | None = None) -> None:
    """Answer a waiting request; one that was cancelled meanwhile (client gone, server shutting
    down) just misses its answer; its delivery is stored all the same."""
    if not future.set_running_or_notify_cancel():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(answer)


def _admit_in_thread(kind: str, channel_id: str, request: WebhookRequest):
    try:
        return admit(kind, channel_id, request)
    finally:
        _release_connection()


def _release_connection() -> None:
    # close_old_connections() without its autocommit check, which talks to the database (down,
    # or in tests closed to this thread by now): a connection past its CONN_MAX_AGE (pooled:
    # always, back to the pool) or one that saw an error is closed; closing needs no database.
    try:
        for connection in connections.all(initialized_only=True):
            if connection.connection is None or connection.in_atomic_block:
                continue
            expired = connection.close_at is not None and time.monotonic() >= connection.close_at
            if expired or connection.errors_occurred:
                connection.close()
    except Exception:  # a broken connection must not stop the writer
        log.exception("closing the ingest writer's database connection failed")


ingest_writer = IngestWriter()


@csrf_exempt
def webhook_view(request: HttpRequest, kind: str, channel_id: str) -> HttpResponse:
    hook_request = WebhookRequest(
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        path=request.path,
        query_string=request.META.get("QUERY_STRING", ""),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=request.body,
    )
    answer = handle_webhook(kind, channel_id, hook_request)
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    return response


class WebhookASGIApp:
    """The lean path: ``/hooks/<kind>/<channel>/`` served without Django's request cycle."""

    prefix = "/hooks/"

    def matches(self, scope) -> bool:
        return scope["type"] == "http" and scope["path"].startswith(self.prefix)

    async def __call__(self, scope, receive, send) -> None:
        parts = scope["path"][len(self.prefix) :].strip("/").split("/")
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return  # the sender hung up before the body arrived: nothing to store or answer
        if body is None:
            answer = _error(413, "too_large", "the body is larger than this endpoint accepts")
        elif len(parts) != 2:
            answer = _error(404, "not_found", "no such channel")
        else:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            request = WebhookRequest(
                method=scope["method"],
                url=_url_from_scope(scope, headers),
                path=scope["path"],
                query_string=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
            answer = await self._answer(parts[0], parts[1], request)
        headers = [(b"content-type", answer.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, kind: str, channel_id: str, request: WebhookRequest):
        # Checking a request for a known channel needs no database: it stays on the event loop,
        # and the ingest writers only ever store.
        verdict = admit(kind, channel_id, request, cached_only=True)
        if verdict is None:
            verdict = await sync_to_async(_admit_in_thread, thread_sensitive=False)(
                kind, channel_id, request
            )
        if isinstance(verdict, WebhookResponse):
            return verdict
        try:
            return await asyncio.wrap_future(ingest_writer.submit(verdict))
        except Exception:  # logged by the writer; nothing was acknowledged as stored
            return _error(503, "unavailable", "try again later")

    async def _read_body(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > settings.LOKET_WEBHOOK_MAX_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


class _ClientGone(Exception):
    pass


def _url_from_scope(scope, headers: dict[str, str]) -> str:
    """The URL as the sender saw it (behind a trusted proxy: its forwarded scheme and host)."""
    scheme = scope.get("scheme", "http")
    host = headers.get("host", "")
    if getattr(settings, "USE_X_FORWARDED_HOST", False):
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    if not host and scope.get("server"):
        host = f"{scope['server'][0]}:{scope['server'][1]}"
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://{host}{scope.get('root_path', '')}{scope['path']}" + (
        f"?{query}" if query else ""
    )
