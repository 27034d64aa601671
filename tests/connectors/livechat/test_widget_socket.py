"""The widget's websocket in-process (as tests/realtime/test_agent_socket.py does it): a
visitor's message over the socket, the agent's reply and typing back, the visitor's typing to
the agents, bad frames and tokens, foreign origins and rate limits."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from loket.asgi import application
from loket.connectors.livechat import widget
from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, ConversationStatus, Message
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel
from loket.inbox.services.conversations import update_conversation
from loket.tenancy.services import create_api_token
from tests import factories
from tests.realtime.communicator import WebsocketCommunicator

WAIT = 5


def _chat():
    workspace = factories.workspace("site")
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Website", config={})
    return workspace, channel


async def _open(channel, token: str, headers=None) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(
        application, f"/ws/widget/{channel.uuid}/?token={token}", headers=headers
    )
    connected, code = await socket.connect(timeout=WAIT)
    assert connected, code
    return socket


async def _next(socket, kind: str) -> dict:
    while True:
        frame = json.loads(await socket.receive_from(timeout=WAIT))
        if frame["type"] == kind:
            return frame


def test_a_visitor_chats_over_the_socket_and_gets_the_reply_live(transactional_db, channel_layer):
    workspace, channel = _chat()
    token, _ = widget.start_session(channel)
    owner = factories.owner_of(workspace)

    async def scenario():
        socket = await _open(channel, token)
        second_tab = await _open(channel, token)
        await socket.send_to(
            text_data=json.dumps({"type": "message", "client_id": "c-1", "text": "Hello!"})
        )
        echo = await _next(socket, "message")
        assert echo["message"]["text"] == "Hello!" and echo["message"]["direction"] == "in"
        assert (await _next(second_tab, "message"))["message"]["id"] == echo["message"]["id"]

        def reply():
            message = Message.objects.get(pk=echo["message"]["id"])
            conversation = Conversation.objects.get(pk=message.conversation_id)
            sent = outbound.reply(conversation, author=owner, text="Hi, I am Owner.")
            outbound.deliver(sent.pk)
            return sent.pk

        reply_id = await database_sync_to_async(reply)()
        answer = await _next(socket, "message")
        assert answer["message"]["id"] == reply_id and answer["message"]["direction"] == "out"

        await socket.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await _next(socket, "pong"))["type"] == "pong"

        def resolve():
            conversation = Conversation.objects.get(
                pk=Message.objects.get(pk=echo["message"]["id"]).conversation_id
            )
            update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
            return conversation.pk

        resolved = await database_sync_to_async(resolve)()
        prompt = await _next(socket, "csat")  # the widget asks for a rating
        assert prompt["conversation_id"] == resolved
        await socket.disconnect()
        await second_tab.disconnect()

    async_to_sync(scenario)()


def test_bad_tokens_and_frames_close_the_socket_with_a_clear_code(transactional_db, channel_layer):
    _, channel = _chat()
    token, _ = widget.start_session(channel)

    async def scenario():
        socket = WebsocketCommunicator(application, f"/ws/widget/{channel.uuid}/?token=forged")
        connected, _ = await socket.connect(timeout=WAIT)
        assert connected
        assert (await socket.receive_output(timeout=WAIT))["code"] == 4401

        socket = WebsocketCommunicator(application, "/ws/widget/not-a-uuid/?token=x")
        await socket.connect(timeout=WAIT)
        assert (await socket.receive_output(timeout=WAIT))["code"] == 4404

        socket = await _open(channel, token)
        await socket.send_to(text_data="x" * 20000)
        assert (await socket.receive_output(timeout=WAIT))["code"] == 4400

        socket = await _open(channel, token)
        await socket.send_to(text_data="{not json")
        assert (await socket.receive_output(timeout=WAIT))["code"] == 4400

    async_to_sync(scenario)()


def _agent_token(workspace) -> str:
    _, raw = create_api_token(factories.owner_of(workspace), name="widget tests")
    return raw


async def _agent_socket(raw_token: str) -> WebsocketCommunicator:
    """An agent's realtime socket (bearer token) that has said hello."""
    socket = WebsocketCommunicator(
        application, "/ws/agent/", headers=[(b"authorization", f"Bearer {raw_token}".encode())]
    )
    connected, code = await socket.connect(timeout=WAIT)
    assert connected, code
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "hello"
    return socket


def test_the_visitor_typing_reaches_the_agents_of_the_workspace(transactional_db, channel_layer):
    workspace, channel = _chat()
    agent_token = _agent_token(workspace)
    stranger_token = _agent_token(factories.workspace("elsewhere"))
    token, visitor = widget.start_session(channel)
    widget.save_prechat(channel, visitor, {"name": "Vera Visitor"})
    token, visitor = widget.start_session(channel, token=token)

    async def scenario():
        agent = await _agent_socket(agent_token)
        stranger = await _agent_socket(stranger_token)
        socket = await _open(channel, token)
        # Before the visitor has a conversation there is nobody to tell.
        await socket.send_to(text_data=json.dumps({"type": "typing", "typing": True}))
        await socket.send_to(
            text_data=json.dumps({"type": "message", "client_id": "c-1", "text": "Hello"})
        )
        echo = await _next(socket, "message")
        conversation_id = await database_sync_to_async(
            lambda: Message.objects.get(pk=echo["message"]["id"]).conversation_id
        )()

        await socket.send_to(text_data=json.dumps({"type": "typing", "typing": True}))
        typing = await agent.receive_json_of_type("presence", timeout=WAIT)
        assert typing == {
            "type": "presence",
            "workspace_id": workspace.pk,
            "conversation_id": conversation_id,
            "member_id": None,
            "visitor": True,
            "name": "Vera Visitor",
            "state": "typing",
        }
        await socket.send_to(text_data=json.dumps({"type": "typing", "typing": False}))
        stopped = await agent.receive_json_of_type("presence", timeout=WAIT)
        assert (stopped["conversation_id"], stopped["state"]) == (conversation_id, "viewing")
        # Agents of another workspace hear nothing of it.
        assert await stranger.receive_nothing(timeout=0.3)
        for each in (socket, agent, stranger):
            await each.disconnect()

    async_to_sync(scenario)()


def test_too_many_messages_close_the_socket_with_4429(
    transactional_db, channel_layer, settings, monkeypatch
):
    settings.LOKET_WIDGET_MESSAGES_PER_MINUTE = 2
    frozen = time.time()  # one rate window, however long the test takes
    monkeypatch.setattr(widget, "time", SimpleNamespace(time=lambda: frozen))
    _, channel = _chat()
    token, _ = widget.start_session(channel)

    async def scenario():
        socket = await _open(channel, token)
        for n in (1, 2):
            await socket.send_to(
                text_data=json.dumps({"type": "message", "client_id": f"c-{n}", "text": "hi"})
            )
            assert (await _next(socket, "message"))["message"]["client_id"] == f"c-{n}"
        await socket.send_to(
            text_data=json.dumps({"type": "message", "client_id": "c-3", "text": "hi"})
        )
        error = await _next(socket, "error")
        assert (error["code"], error["client_id"]) == ("rate_limited", "c-3")
        assert (await socket.receive_output(timeout=WAIT))["code"] == 4429

    async_to_sync(scenario)()
    assert Message.objects.filter(channel=channel).count() == 2


def test_the_socket_opens_only_from_loket_or_an_allowed_website(
    transactional_db, channel_layer, settings
):
    settings.LOKET_PUBLIC_URL = "https://support.loket.example"
    _, channel = _chat()
    channel.settings = {**channel.settings, "allowed_origins": ["https://www.shop.example"]}
    channel.save()
    token, _ = widget.start_session(channel)

    def origin(value: str, host: str = "support.loket.example"):
        return [(b"origin", value.encode()), (b"host", host.encode())]

    async def scenario():
        for refused in ("https://evil.example", "null", "http://www.shop.example"):
            socket = WebsocketCommunicator(
                application, f"/ws/widget/{channel.uuid}/?token={token}", headers=origin(refused)
            )
            connected, _ = await socket.connect(timeout=WAIT)
            assert connected  # accepted, then closed with the reason
            assert (await socket.receive_output(timeout=WAIT))["code"] == 4403, refused
        for allowed, host in [
            ("https://support.loket.example", "support.loket.example"),  # the frame's origin
            ("https://www.shop.example", "support.loket.example"),  # an allowed website
            ("http://chat.internal:8000", "chat.internal:8000"),  # the host it was sent to
        ]:
            socket = await _open(channel, token, headers=origin(allowed, host))
            await socket.send_to(text_data=json.dumps({"type": "ping"}))
            assert (await _next(socket, "pong"))["type"] == "pong"
            await socket.disconnect()

    async_to_sync(scenario)()
