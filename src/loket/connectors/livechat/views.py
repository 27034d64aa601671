"""The widget's HTTP side: the loader script, the iframe page and the frame's JSON API (see
README.md). No cookies and no CSRF: a visitor is who their signed token says."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import get_supported_language_variant
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from loket.connectors.livechat import delivery, widget
from loket.connectors.livechat.connector import origin_allowed
from loket.connectors.livechat.widget import WidgetError
from loket.inbox.models import Channel, Conversation
from loket.tenancy import hours, photos

STATIC = Path(__file__).parent / "static" / "livechat"
MAX_BODY = 64 * 1024
LONG_POLL_MAX = 25


def _channel(channel_uuid: str) -> Channel:
    try:
        key = uuid.UUID(channel_uuid)
    except ValueError:
        raise Http404("no such chat") from None
    channel = (
        Channel.objects.select_related("workspace")
        .filter(uuid=key, kind="livechat", is_active=True)
        .first()
    )
    if channel is None:
        raise Http404("no such chat")
    return channel


def _error(exc: WidgetError) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status=exc.status
    )
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _body(request) -> dict:
    if len(request.body) > MAX_BODY:
        raise WidgetError(413, "too_large", "the request is too large")
    try:
        data = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WidgetError(400, "invalid", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WidgetError(400, "invalid", "the body must be a JSON object")
    return data


def _language(value: str) -> str:
    try:
        return get_supported_language_variant((value or "en").split("-")[0].lower())
    except LookupError:
        return "en"


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _check_origin(request, channel: Channel) -> None:
    """Only the frame (served from Loket's own origin) and the channel's allowed websites may
    drive the API from a browser: a request whose ``Origin`` names another site gets 403.
    Without ``Origin`` (not a browser, or a same-origin GET) nothing is checked. ``Origin: null``
    is what the frame's own POSTs may say (it is served with ``Referrer-Policy: no-referrer``),
    but also what a sandboxed or no-referrer page elsewhere sends; such a request passes only
    when no other site could send it without a CORS preflight (which Loket never answers):
    JSON as ``application/json``, or the ``X-Loket-Visitor`` header."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin.strip().lower() == "null":
        if (
            request.method in ("GET", "HEAD")
            or request.content_type == "application/json"
            or "X-Loket-Visitor" in request.headers
        ):
            return
    elif origin_allowed(channel, origin, request.get_host()):
        return
    raise WidgetError(403, "origin_not_allowed", "origin not allowed")


def _api(view):
    """JSON errors for WidgetError; the origin checked; never cached; no cookies set."""

    def wrapper(request, channel_uuid: str, *args, **kwargs):
        channel = _channel(channel_uuid)
        try:
            _check_origin(request, channel)
            response = view(request, channel, *args, **kwargs)
        except WidgetError as exc:
            response = _error(exc)
        response["Cache-Control"] = "no-store"
        return response

    wrapper.__name__ = view.__name__
    return csrf_exempt(wrapper)


@require_GET
def loader(request, channel_uuid: str):
    """The script host pages load: tiny, cacheable for a few minutes."""
    channel = _channel(channel_uuid)
    source = (STATIC / "loader.js").read_text(encoding="utf-8")
    source = source.replace("__LOKET_ORIGIN__", settings.LOKET_PUBLIC_URL).replace(
        "__CHANNEL__", str(channel.uuid)
    )
    response = HttpResponse(source, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def frame(request, channel_uuid: str):
    channel = _channel(channel_uuid)
    allowed = channel.settings.get("allowed_origins") or []
    response = render(
        request,
        "livechat/frame.html",
        {"channel_uuid": str(channel.uuid), "lang": _language(request.GET.get("lang", ""))},
    )
    ancestors = " ".join(allowed) if allowed else "*"
    response["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        f"style-src 'self'; script-src 'self'; frame-ancestors {ancestors}"
    )
    response["Referrer-Policy"] = "no-referrer"
    response.headers.pop("X-Frame-Options", None)
    response.xframe_options_exempt = True
    return response


@require_POST
@_api
def session(request, channel: Channel):
    data = _body(request)
    language = _language(str(data.get("locale") or ""))
    user = data.get("user") if isinstance(data.get("user"), dict) else None
    token, visitor = widget.start_session(
        channel, token=str(data.get("token") or ""), user=user, language=language
    )
    widget.set_attributes(channel, visitor, data.get("attributes"))
    return JsonResponse(
        {
            "token": token,
            "visitor": {
                "name": visitor.profile.get("name", ""),
                "email": visitor.profile.get("email", ""),
                "verified": visitor.verified,
                "prechat_done": bool(visitor.profile.get("prechat_done")),
            },
            "config": widget.config(channel, language),
            "messages": delivery.history(channel, visitor.key),
            "csat": delivery.rating_prompt(channel, visitor.key),
            "status": {
                "online": hours.is_open(channel.workspace, channel=channel),
                "reply_time": channel.settings.get("reply_time", ""),
            },
        }
    )


def _visitor(request, channel: Channel, data: dict | None = None):
    token = (data or {}).get("token") or request.headers.get("X-Loket-Visitor", "")
    return widget.visitor_from_token(channel, str(token))


@_api
def messages(request, channel: Channel):
    if request.method == "POST":
        data = _body(request)
        visitor = _visitor(request, channel, data)
        shown = widget.post_message(
            channel,
            visitor,
            client_id=str(data.get("client_id") or ""),
            text=str(data.get("text") or ""),
            page=data.get("page"),
            ip=_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            locale=request.headers.get("Accept-Language", "").split(",")[0],
            choice=data.get("choice"),
        )
        return JsonResponse({"message": shown}, status=201)
    if request.method != "GET":
        return JsonResponse({"error": {"code": "method", "message": "GET or POST"}}, status=405)
    visitor = _visitor(request, channel)
    try:
        after = int(request.GET.get("after") or 0)
        wait = min(max(float(request.GET.get("wait") or 0), 0), LONG_POLL_MAX)
    except ValueError:
        raise WidgetError(400, "invalid", "after and wait must be numbers") from None
    deadline = time.monotonic() + wait
    # The rating prompt as the session call gives it; a change (the chat was resolved, rated or
    # reopened) ends the wait like a message does, so a long-polling widget learns of it too.
    prompt = delivery.rating_prompt(channel, visitor.key)
    while True:  # long-poll: the websocket's fallback through proxies that block it
        found = delivery.history(channel, visitor.key, after=after)
        now = delivery.rating_prompt(channel, visitor.key)
        if found or now != prompt or time.monotonic() >= deadline:
            return JsonResponse({"messages": found, "typing": None, "csat": now})
        time.sleep(1.0)


@require_POST
@_api
def prechat(request, channel: Channel):
    data = _body(request)
    token, visitor = widget.save_prechat(channel, _visitor(request, channel, data), data)
    return JsonResponse(
        {"token": token, "visitor": {"name": visitor.profile.get("name", ""),
                                     "email": visitor.profile.get("email", ""),
                                     "verified": visitor.verified, "prechat_done": True}}
    )  # fmt: skip


@require_POST
@_api
def read(request, channel: Channel):
    data = _body(request)
    try:
        up_to = int(data.get("up_to") or 0)
    except (TypeError, ValueError):
        raise WidgetError(400, "invalid", "up_to must be a message id") from None
    widget.mark_read(channel, _visitor(request, channel, data), up_to)
    return JsonResponse({})


MAX_UPLOAD_BODY = 40 * 1024 * 1024


@_api
def files(request, channel: Channel):
    """POST multipart/form-data (token, client_id, file, text?): a visitor's file."""
    if request.method != "POST":
        return JsonResponse({"error": {"code": "method", "message": "POST"}}, status=405)
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_UPLOAD_BODY:
        raise WidgetError(413, "too_large", "the upload is too large")
    visitor = widget.visitor_from_token(
        channel, request.POST.get("token") or request.headers.get("X-Loket-Visitor", "")
    )
    upload = request.FILES.get("file")
    if upload is None:
        raise WidgetError(400, "invalid", "no file in the upload")
    shown = widget.post_file(
        channel,
        visitor,
        client_id=request.POST.get("client_id", ""),
        name=upload.name or "file",
        content_type=upload.content_type or "",
        data=upload.read(),
        text=request.POST.get("text", ""),
        ip=_ip(request),
    )
    return JsonResponse({"message": shown}, status=201)


@require_GET
@_api
def file(request, channel: Channel, attachment_id: int):
    """A file of the visitor's own conversation (token in ?token= or X-Loket-Visitor), served
    so it cannot script the widget: images inline, everything else as a download."""
    token = request.GET.get("token") or request.headers.get("X-Loket-Visitor", "")
    item = widget.visitor_file(channel, widget.visitor_from_token(channel, token), attachment_id)
    if item is None or not item.file:
        raise Http404("no such file")
    inline = item.content_type in ("image/png", "image/jpeg", "image/gif", "image/webp")
    response = FileResponse(
        item.file.open("rb"),
        as_attachment=not inline,
        filename=item.filename,
        content_type=item.content_type if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@require_POST
@_api
def csat(request, channel: Channel):
    """``{token, conversation_id, rating: 1-5, comment?}``: the visitor rates their resolved
    conversation (changeable for a while)."""
    from loket.inbox.services import satisfaction

    data = _body(request)
    visitor = _visitor(request, channel, data)
    prompt = delivery.rating_prompt(channel, visitor.key)
    try:
        conversation_id = int(data.get("conversation_id") or 0)
        rating = int(data.get("rating") or 0)
    except (TypeError, ValueError):
        raise WidgetError(400, "invalid", "conversation_id and rating must be numbers") from None
    if prompt is None or prompt["conversation_id"] != conversation_id:
        raise WidgetError(404, "not_found", "no resolved conversation of yours to rate")
    conversation = Conversation.objects.get(pk=conversation_id)
    try:
        given = satisfaction.rate(
            conversation, rating, str(data.get("comment") or ""), source="livechat"
        )
    except satisfaction.RatingRefused as exc:
        raise WidgetError(400, "invalid", str(exc)) from None
    return JsonResponse({"rating": given.rating, "comment": given.comment})


def _image(found) -> HttpResponse:
    return photos.response(found, "public, max-age=3600")


@require_GET
def photo(request, channel_uuid: str, index: int):
    """One of the channel's team photos (public, like the widget itself)."""
    from loket.connectors.livechat import photos as team_photos

    names = _channel(channel_uuid).settings.get("team_photos") or []
    return _image(team_photos.read(names[index]) if 0 <= index < len(names) else None)


@require_GET
def agent_photo(request, channel_uuid: str, member_id: int):
    """A member's photo, for visitors of this channel's workspace."""
    from loket.connectors.livechat import photos as team_photos
    from loket.tenancy.models import Membership

    channel = _channel(channel_uuid)
    member = (
        Membership.objects.filter(pk=member_id, workspace_id=channel.workspace_id)
        .select_related("user")
        .first()
    )
    name = (member.user.preferences or {}).get("photo", "") if member else ""
    return _image(team_photos.read(name))
