"""The widget's websocket in-process (as tests/realtime/test_agent_socket.py does it): a
visitor's message over the socket, the agent's reply and typing back, bad frames and tokens."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from loket.asgi import application
from loket.connectors.livechat import widget
from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, ConversationStatus, Message
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel
from loket.inbox.services.conversations import update_conversation
from tests import factories
from tests.realtime.communicator import WebsocketCommunicator

WAIT = 5


def _chat():
    workspace = factories.workspace("site")
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Website", config={})
    return workspace, channel


async def _open(channel, token: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/widget/{channel.uuid}/?token={token}")
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
