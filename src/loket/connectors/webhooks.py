"""Inbound webhooks: verify, journal + process in one commit, then acknowledge.

``handle_webhook`` is the single implementation. It is served two ways: by a lean ASGI route
mounted in front of Django (no session/CSRF/auth middleware; the fast path, see loket.asgi) and
by an ordinary Django view (the same URLs under WSGI and the test client).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from loket.connectors.base import WebhookRejected, WebhookRequest, WebhookResponse
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
# within CHANNEL_CACHE_SECONDS in every process.
CHANNEL_CACHE_SECONDS = 10.0
_channel_cache: dict[tuple[str, uuid.UUID], tuple[float, Channel | None]] = {}


def _active_channel(kind: str, channel_uuid: uuid.UUID) -> Channel | None:
    key = (kind, channel_uuid)
    cached = _channel_cache.get(key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    channel = Channel.objects.filter(uuid=channel_uuid, kind=kind, is_active=True).first()
    if len(_channel_cache) > 10_000:
        _channel_cache.clear()
    _channel_cache[key] = (now + CHANNEL_CACHE_SECONDS, channel)
    return channel


def forget_channel(channel: Channel) -> None:
    """Drop a channel from this process's cache (after an admin changed it)."""
    _channel_cache.pop((channel.kind, channel.uuid), None)


def handle_webhook(kind: str, channel_id: str, request: WebhookRequest) -> WebhookResponse:
    connector = REGISTRY.get(kind)
    try:
        channel_uuid = uuid.UUID(channel_id)
    except ValueError:
        channel_uuid = None
    if connector is None or channel_uuid is None:
        return _error(404, "not_found", "no such channel")
    try:
        channel = _active_channel(kind, channel_uuid)
        if channel is None:
            return _error(404, "not_found", "no such channel")
        if request.method == "GET":
            answer = connector.handshake(channel, request)
            return answer or _error(405, "method_not_allowed", "POST deliveries here")
        if request.method != "POST":
            return _error(405, "method_not_allowed", "POST deliveries here")
        if len(request.body) > settings.LOKET_WEBHOOK_MAX_BYTES:
            return _error(413, "too_large", "the body is larger than this endpoint accepts")
        try:
            connector.verify(channel, request)
        except WebhookRejected as exc:
            log.warning("rejected %s webhook for channel %s: %s", kind, channel.pk, exc.reason)
            return _error(exc.status, "unauthorized", exc.reason)
        outcome = journal.record(
            channel,
            request.body,
            connector.journal_meta(request),
            content_type=request.content_type,
        )
    except DatabaseError:
        log.exception("database unavailable while receiving a %s webhook", kind)
        return _error(503, "unavailable", "try again later")
    if outcome.bad_payload:
        return _error(400, "bad_payload", outcome.error)
    return connector.acknowledge(channel, request)


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
        from asgiref.sync import sync_to_async

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
            request = WebhookRequest(
                method=scope["method"],
                url=_url_from_scope(scope),
                path=scope["path"],
                query_string=scope.get("query_string", b"").decode("latin-1"),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                },
                body=body,
            )
            answer = await sync_to_async(_handle_in_thread, thread_sensitive=False)(
                parts[0], parts[1], request
            )
        headers = [(b"content-type", answer.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

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


def _handle_in_thread(kind: str, channel_id: str, request: WebhookRequest) -> WebhookResponse:
    try:
        return handle_webhook(kind, channel_id, request)
    finally:
        close_old_connections()  # returns a pooled connection; keeps a persistent SQLite one


def _url_from_scope(scope) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
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
