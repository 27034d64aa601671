"""The widget's websocket (see README.md): a visitor's messages, typing and read receipts in;
agents' replies, typing and delivery statuses out (the visitor's channel-layer group)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from loket.connectors.livechat import continuity, delivery, widget
from loket.connectors.livechat.connector import origin_allowed, visitor_group
from loket.connectors.livechat.widget import WidgetError
from loket.inbox.models import Channel, Conversation, ConversationStatus
from loket.realtime.consumers import header
from loket.realtime.publish import agents_group

MAX_FRAME = 16 * 1024
CLOSE_BAD_FRAME, CLOSE_BAD_TOKEN, CLOSE_NO_CHANNEL, CLOSE_RATE = 4400, 4401, 4404, 4429
CLOSE_ORIGIN = 4403


@database_sync_to_async
def _channel(channel_uuid: str) -> Channel | None:
    try:
        key = uuid.UUID(channel_uuid)
    except ValueError:
        return None
    return Channel.objects.filter(uuid=key, kind="livechat", is_active=True).first()


@database_sync_to_async
def _open_conversation(channel: Channel, visitor_key: str):
    """(conversation id, contact name) of the visitor's latest active conversation, or None."""
    row = (
        Conversation.objects.filter(
            channel=channel,
            contact__identities__channel=channel,
            contact__identities__external_id=visitor_key,
            status__in=[ConversationStatus.OPEN, ConversationStatus.PENDING],
        )
        .order_by("-last_message_at")
        .values_list("pk", "contact__name")
        .first()
    )
    return row


class WidgetConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        channel = await _channel(self.scope["url_route"]["kwargs"]["channel_uuid"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        found = None
        if channel is not None:
            found = widget.read_token_or_none(channel, (query.get("token") or [""])[0])
        await self.accept()
        if channel is None:
            await self.close(code=CLOSE_NO_CHANNEL)
            return
        # Browsers open a socket from any page (no CORS for websockets) and always say which
        # page in Origin: only the frame (Loket's own origin) and the allowed websites may.
        # Without Origin it is no browser, which could say anything anyway.
        origin = header(self.scope, b"origin")
        if origin and not origin_allowed(channel, origin, header(self.scope, b"host")):
            await self.close(code=CLOSE_ORIGIN)
            return
        if found is None:
            await self.close(code=CLOSE_BAD_TOKEN)
            return
        self.channel = channel
        self.visitor = found
        self.ip = (self.scope.get("client") or ["", 0])[0]
        self.group = visitor_group(channel.pk, found.key)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await database_sync_to_async(continuity.seen)(channel.pk, found.key)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if not hasattr(self, "visitor"):
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw) > MAX_FRAME:
            await self.close(code=CLOSE_BAD_FRAME)
            return
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError:
            await self.close(code=CLOSE_BAD_FRAME)
            return
        if not isinstance(frame, dict):
            await self.close(code=CLOSE_BAD_FRAME)
            return
        kind = frame.get("type")
        await database_sync_to_async(continuity.seen)(self.channel.pk, self.visitor.key)
        try:
            if kind == "message":
                await database_sync_to_async(widget.post_message)(
                    self.channel,
                    self.visitor,
                    client_id=str(frame.get("client_id") or ""),
                    text=str(frame.get("text") or ""),
                    page=frame.get("page"),
                    ip=self.ip,
                    user_agent=header(self.scope, b"user-agent")[:500],
                    locale=header(self.scope, b"accept-language").split(",")[0],
                    choice=frame.get("choice"),
                )  # the echo reaches this socket through the visitor's group
            elif kind == "typing":
                await self._typing(bool(frame.get("typing")))
            elif kind == "read":
                await database_sync_to_async(widget.mark_read)(
                    self.channel, self.visitor, int(frame.get("up_to") or 0)
                )
            elif kind == "ping":
                await self.send(json.dumps({"type": "pong"}))
        except WidgetError as exc:
            error = {"type": "error", "code": exc.code, "message": exc.message}
            if kind == "message":  # which message failed, so only that one offers a retry
                error["client_id"] = str(frame.get("client_id") or "")
            await self.send(json.dumps(error))
            if exc.status == 429:
                await self.close(code=CLOSE_RATE)
        except (TypeError, ValueError):
            await self.close(code=CLOSE_BAD_FRAME)

    async def _typing(self, typing: bool) -> None:
        """The visitor typing, shown to the agents on their open conversation."""
        found = await _open_conversation(self.channel, self.visitor.key)
        if found is None:
            return
        conversation_id, name = found
        event = {
            "type": "presence",
            "workspace_id": self.channel.workspace_id,
            "conversation_id": conversation_id,
            "member_id": None,
            "visitor": True,
            "name": name or "",
            "state": "typing" if typing else "viewing",
        }
        await self.channel_layer.group_send(
            agents_group(self.channel.workspace_id), {"type": "realtime.event", "event": event}
        )

    async def realtime_event(self, message) -> None:
        await self.send(json.dumps(message["event"]))

    async def realtime_events(self, message) -> None:
        for event in message["events"]:
            await self.send(json.dumps(event))


def visitor_keys_of(conversation_id: int) -> tuple[int, list[str]] | None:
    """(channel id, visitor keys) when the conversation is a live chat, for agents' typing."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, channel__kind="livechat")
        .select_related("channel")
        .first()
    )
    if conversation is None:
        return None
    return conversation.channel_id, delivery.visitor_keys(
        conversation.channel, conversation.contact_id
    )
