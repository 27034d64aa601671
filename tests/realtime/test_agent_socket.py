"""The agents' websocket in-process: authentication, workspace scoping, events on commit.

The sockets run through loket.asgi.application (routing, auth middleware, consumer) on the event
loop that ``async_to_sync`` starts for each test; that application binds the loop as the
publisher's, as the server does, so events published from ORM code (run on the test's thread
through ``database_sync_to_async``) reach the consumers even on the in-memory channel layer.
Transactional tests, because events go out in on_commit callbacks.
"""

from __future__ import annotations

import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction

from loket.asgi import application
from loket.tenancy.models import Role
from loket.tenancy.services import add_member, create_api_token, revoke_api_token
from tests import factories
from tests.realtime.communicator import WebsocketCommunicator

WAIT = 5  # seconds: a bound on waits for something that should arrive, not a speed claim


def _token(workspace) -> str:
    _, raw = create_api_token(factories.owner_of(workspace), name="realtime tests")
    return raw


def _revoked_token(workspace) -> str:
    token, raw = create_api_token(factories.owner_of(workspace), name="revoked")
    revoke_api_token(token)
    return raw


def _bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def _open(path: str = "/ws/agent/", headers=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, code = await communicator.connect(timeout=WAIT)
    assert connected, f"socket closed with {code} during the handshake"
    return communicator


async def _hello(communicator: WebsocketCommunicator) -> dict:
    hello = await communicator.receive_json_from(timeout=WAIT)
    assert hello["type"] == "hello"
    return hello


async def _events_until(communicator, name: str, message_id: int) -> list[dict]:
    """Everything the socket receives up to and including ``name`` for ``message_id``."""
    received = []
    while True:
        event = await communicator.receive_json_from(timeout=WAIT)
        received.append(event)
        if event["type"] == name and event.get("message_id") == message_id:
            return received


def test_unauthenticated_sockets_are_closed_with_4401(transactional_db, channel_layer):
    ws = factories.workspace("acme")
    revoked = _revoked_token(ws)

    attempts = [
        ("/ws/agent/", []),
        ("/ws/agent/", _bearer("lkt_not-a-real-token")),
        ("/ws/agent/", [(b"authorization", b"Basic dXNlcjpwYXNz")]),
        ("/ws/agent/?token=lkt_not-a-real-token", []),
        ("/ws/agent/", _bearer(revoked)),
    ]

    async def scenario():
        for path, headers in attempts:
            communicator = WebsocketCommunicator(application, path, headers=headers)
            connected, _ = await communicator.connect(timeout=WAIT)
            # Accepted and then closed, so a browser sees 4401 rather than a failed handshake.
            assert connected, (path, headers)
            await _expect_4401(communicator)

    async_to_sync(scenario)()


def test_a_bearer_token_in_the_header_or_the_query_opens_the_workspace_socket(
    transactional_db, channel_layer
):
    factories.workspace("other")  # so the workspace id is not simply the first one
    ws = factories.workspace("acme")
    token = _token(ws)

    async def scenario():
        for path, headers in [("/ws/agent/", _bearer(token)), (f"/ws/agent/?token={token}", [])]:
            communicator = await _open(path, headers)
            assert await communicator.receive_json_from(timeout=WAIT) == {
                "type": "hello",
                "workspace_id": ws.pk,
            }
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from(timeout=WAIT) == {"type": "pong"}
            await communicator.disconnect()

    async_to_sync(scenario)()


async def _expect_4401(communicator: WebsocketCommunicator) -> None:
    output = await communicator.receive_output(timeout=WAIT)
    assert output == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


def test_a_logged_in_agent_gets_the_workspace_named_in_the_query(
    transactional_db, channel_layer, client
):
    first = factories.workspace("first")
    second = factories.workspace("second")
    member = factories.agent(first, "agent@example.com")
    add_member(second, member.user, role=Role.AGENT)
    client.force_login(member.user)
    session = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    own_page = (b"origin", b"http://testserver")

    async def scenario():
        communicator = await _open("/ws/agent/?workspace=second", [session, own_page])
        assert (await _hello(communicator))["workspace_id"] == second.pk
        await communicator.disconnect()
        communicator = await _open("/ws/agent/", [session, own_page])
        assert (await _hello(communicator))["workspace_id"] == first.pk
        await communicator.disconnect()
        await _expect_4401(await _open("/ws/agent/?workspace=nowhere", [session, own_page]))

    async_to_sync(scenario)()


def test_a_session_is_not_honoured_from_another_site(transactional_db, channel_layer, client):
    """Cross-site websocket hijacking: the browser sends the cookie with any page's socket."""
    ws = factories.workspace("acme")
    client.force_login(factories.owner_of(ws).user)
    session = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())

    async def scenario():
        for origin in [b"https://evil.example", b"null", b"https://testserver.evil.example"]:
            await _expect_4401(await _open("/ws/agent/", [session, (b"origin", origin)]))
        await _expect_4401(await _open("/ws/agent/", [session]))  # browsers always send one

    async_to_sync(scenario)()


def test_an_event_reaches_its_own_workspace_and_no_other(transactional_db, channel_layer):
    ws_a, ws_b = factories.workspace("alpha"), factories.workspace("beta")
    channel_a, channel_b = factories.api_channel(ws_a), factories.api_channel(ws_b)
    token_a, token_b = _token(ws_a), _token(ws_b)

    async def scenario():
        socket_a = await _open(headers=_bearer(token_a))
        socket_b = await _open(headers=_bearer(token_b))
        assert (await _hello(socket_a))["workspace_id"] == ws_a.pk
        assert (await _hello(socket_b))["workspace_id"] == ws_b.pk

        result_a = await database_sync_to_async(factories.inbound)(channel_a, "Hi from A")
        received_a = await _events_until(socket_a, "message.created", result_a.message_id)
        assert [e["type"] for e in received_a] == ["conversation.created", "message.created"]
        created = received_a[-1]
        assert created["workspace_id"] == ws_a.pk
        assert created["conversation_id"] == result_a.conversation_id
        assert created["direction"] == "in"
        assert created["actor"]["type"] == "contact"

        # B's socket would have queued A's events before anything published later: the first
        # thing it receives after this must be B's own conversation.
        result_b = await database_sync_to_async(factories.inbound)(channel_b, "Hi from B")
        received_b = await _events_until(socket_b, "message.created", result_b.message_id)
        assert [e["type"] for e in received_b] == ["conversation.created", "message.created"]
        assert {e["workspace_id"] for e in received_b} == {ws_b.pk}
        assert {e["conversation_id"] for e in received_b} == {result_b.conversation_id}
        assert await socket_a.receive_nothing(timeout=0.2)  # and A never saw B's

        await socket_a.disconnect()
        await socket_b.disconnect()

    async_to_sync(scenario)()


class _Abort(Exception):
    pass


def _inbound_then_roll_back(channel) -> None:
    try:
        with transaction.atomic():
            result = factories.inbound(channel, "never happened", message_id="rolled-back")
            assert result.outcome == "created"
            raise _Abort
    except _Abort:
        pass


def test_an_ingest_that_rolls_back_publishes_nothing(transactional_db, channel_layer):
    ws = factories.workspace("acme")
    channel = factories.api_channel(ws)
    token = _token(ws)

    async def scenario():
        socket = await _open(headers=_bearer(token))
        await _hello(socket)

        await database_sync_to_async(_inbound_then_roll_back)(channel)
        assert await socket.receive_nothing(timeout=1.0)

        # The same path, committed, does publish: the silence above is not a broken pipe.
        result = await database_sync_to_async(factories.inbound)(channel, "this one stays")
        received = await _events_until(socket, "message.created", result.message_id)
        assert [e["type"] for e in received] == ["conversation.created", "message.created"]
        assert received[0]["conversation_id"] == result.conversation_id
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_presence_is_relayed_to_colleagues_only_for_own_conversations(
    transactional_db, channel_layer
):
    workspace = factories.workspace()
    other = factories.workspace()
    channel = factories.api_channel(workspace)
    ours = factories.inbound(channel, "Hi").conversation_id
    theirs = factories.inbound(factories.api_channel(other), "Hoi").conversation_id
    colleague = add_member(workspace, factories.user(name="Bram Agent"), role=Role.AGENT)
    _, colleague_token = create_api_token(colleague, name="colleague")
    owner_token = _token(workspace)

    async def scenario():
        watcher = await _open(headers=_bearer(owner_token))
        await _hello(watcher)
        typist = await _open(headers=_bearer(colleague_token))
        await _hello(typist)
        await typist.send_json_to(
            {"type": "presence", "conversation_id": theirs, "state": "typing"}
        )  # another workspace's conversation: dropped
        await typist.send_json_to({"type": "presence", "conversation_id": ours, "state": "bogus"})
        await typist.send_json_to({"type": "presence", "conversation_id": ours, "state": "typing"})
        # The setup's own events (published just before the sockets joined) may still arrive
        # first: under a stream of events the publisher sends a round per 20 ms.
        event = await watcher.receive_json_of_type("presence", timeout=WAIT)
        assert event == {
            "type": "presence",
            "workspace_id": workspace.pk,
            "conversation_id": ours,
            "member_id": colleague.pk,
            "name": "Bram Agent",
            "state": "typing",
        }
        # The other workspace's and the bogus presence were dropped (the setup's events may
        # still come in any order around it).
        while not await watcher.receive_nothing(timeout=0.3):
            assert (await watcher.receive_json_from(timeout=WAIT))["type"] != "presence"
        await watcher.disconnect()
        await typist.disconnect()

    async_to_sync(scenario)()


def test_a_burst_of_events_arrives_complete_and_in_order(transactional_db, channel_layer):
    """Events queued while a send is in flight go out together (one layer message per group);
    the socket still sees every one, in publish order."""
    from loket.realtime.publish import publish

    workspace = factories.workspace()
    token = _token(workspace)

    async def scenario():
        socket = await _open(headers=_bearer(token))
        await _hello(socket)
        await database_sync_to_async(
            lambda: [publish(workspace.pk, {"type": "burst", "n": n}) for n in range(50)]
        )()
        received = [await socket.receive_json_from(timeout=WAIT) for _ in range(50)]
        assert [event["n"] for event in received] == list(range(50))
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_events_published_one_by_one_under_load_share_layer_sends(
    transactional_db, channel_layer, monkeypatch
):
    """Right after a send, the publisher waits a moment before the next one, so a steady stream
    of single events (a busy webhook process) goes out in a few layer sends, still in order."""
    from channels.layers import get_channel_layer

    from loket.realtime.publish import publish

    layer = get_channel_layer()
    sends = []
    real_group_send = layer.group_send

    async def counting_group_send(group, message):
        sends.append(message["type"])
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", counting_group_send)
    workspace = factories.workspace()
    token = _token(workspace)

    def stream():
        for n in range(1, 11):
            publish(workspace.pk, {"type": "stream", "n": n})
            time.sleep(0.0005)

    async def scenario():
        socket = await _open(headers=_bearer(token))
        await _hello(socket)
        await database_sync_to_async(lambda: publish(workspace.pk, {"type": "stream", "n": 0}))()
        assert (await socket.receive_json_from(timeout=WAIT))["n"] == 0
        sends.clear()
        await database_sync_to_async(stream)()
        received = [await socket.receive_json_from(timeout=WAIT) for _ in range(10)]
        assert [event["n"] for event in received] == list(range(1, 11))
        assert len(sends) <= 4, sends
        await socket.disconnect()

    async_to_sync(scenario)()
