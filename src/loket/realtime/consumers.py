"""The agents' websocket: authenticated, scoped to one workspace."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings

from loket.accounts.policy import must_enrol
from loket.inbox.models import Conversation
from loket.realtime.publish import agents_group, member_group
from loket.tenancy.models import Membership
from loket.tenancy.services import authenticate_token


def header(scope, wanted: bytes) -> str:
    """A request header of a websocket's scope (latin-1), or \"\"."""
    for name, value in scope.get("headers", []):
        if name.lower() == wanted:
            return value.decode("latin-1")
    return ""


def _bearer(scope) -> str:
    scheme, _, token = header(scope, b"authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _from_own_pages(scope) -> bool:
    """Browsers send cookies with a socket any page opens (cross-site websocket hijacking), so
    a session is only honoured from an Origin in ALLOWED_HOSTS, as Channels'
    AllowedHostsOriginValidator checks it. Bearer tokens are not ambient and need no Origin."""
    origin = header(scope, b"origin")
    if not origin:
        return False
    try:
        return OriginValidator(None, settings.ALLOWED_HOSTS).valid_origin(urlsplit(origin))
    except ValueError:  # a malformed port
        return False


@database_sync_to_async
def _membership_for(scope) -> Membership | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    raw = _bearer(scope) or (query.get("token") or [""])[0]
    if raw:
        token = authenticate_token(raw)
        return token.membership if token else None
    user = scope.get("user")
    if user is None or not user.is_authenticated or not _from_own_pages(scope):
        return None
    if must_enrol(user):  # the workspace requires 2FA and the grace period is over
        return None
    memberships = Membership.objects.filter(user=user).select_related("workspace", "user")
    slug = (query.get("workspace") or [""])[0]
    if slug:
        memberships = memberships.filter(workspace__slug=slug)
    return memberships.order_by("pk").first()


PRESENCE_STATES = {"viewing", "typing", "left"}


@database_sync_to_async
def _conversation_in_workspace(conversation_id: int, workspace_id: int) -> bool:
    return Conversation.objects.filter(pk=conversation_id, workspace_id=workspace_id).exists()


class AgentConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        membership = await _membership_for(self.scope)
        if membership is None:
            # Accept, then close: a close before the handshake completes becomes a bare HTTP 403
            # in the server, and the client would never see 4401 (and could not tell "log in
            # again" from a network failure worth retrying).
            await self.accept()
            await self.close(code=4401)
            return
        self.membership_id = membership.pk
        self.workspace_id = membership.workspace_id
        self.member_name = membership.display_name
        self.known_conversations: set[int] = set()
        self.groups_joined = [agents_group(self.workspace_id), member_group(self.membership_id)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "workspace_id": self.workspace_id})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict) or not hasattr(self, "membership_id"):
            return
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "presence":
            await self._presence(content)

    async def _presence(self, content) -> None:
        """Who is viewing or typing in a conversation: relayed to the workspace's agents, never
        stored. Only for conversations of this socket's workspace."""
        conversation_id = content.get("conversation_id")
        state = content.get("state")
        if not isinstance(conversation_id, int) or state not in PRESENCE_STATES:
            return
        if conversation_id not in self.known_conversations:
            if not await _conversation_in_workspace(conversation_id, self.workspace_id):
                return
            if len(self.known_conversations) > 1000:
                self.known_conversations.clear()
            self.known_conversations.add(conversation_id)
        event = {
            "type": "presence",
            "workspace_id": self.workspace_id,
            "conversation_id": conversation_id,
            "member_id": self.membership_id,
            "name": self.member_name,
            "state": state,
        }
        await self.channel_layer.group_send(
            agents_group(self.workspace_id), {"type": "realtime.event", "event": event}
        )
        if state in ("typing", "left"):
            await self._typing_to_visitor(conversation_id, state == "typing")

    async def _typing_to_visitor(self, conversation_id: int, typing: bool) -> None:
        """On a live chat, the visitor sees the agent typing (first name only)."""
        from loket.connectors.livechat.connector import visitor_group
        from loket.connectors.livechat.consumers import visitor_keys_of

        if not hasattr(self, "live_chats"):
            self.live_chats: dict[int, tuple[int, list[str]] | None] = {}
        if conversation_id not in self.live_chats:
            self.live_chats[conversation_id] = await database_sync_to_async(visitor_keys_of)(
                conversation_id
            )
        target = self.live_chats[conversation_id]
        if not target:
            return
        channel_id, keys = target
        event = {"type": "typing", "name": self.member_name.split(" ")[0], "typing": typing}
        for key in keys:
            await self.channel_layer.group_send(
                visitor_group(channel_id, key), {"type": "realtime.event", "event": event}
            )

    async def realtime_event(self, message) -> None:
        await self.send_json(message["event"])

    async def realtime_events(self, message) -> None:
        for event in message["events"]:
            await self.send_json(event)
