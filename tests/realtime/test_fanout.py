"""Production shape: events fan out between `loket serve` processes over Redis.

Issue requirement: a message ingested in one `loket serve` process reaches an agent websocket
connected to another `loket serve` process (both on PostgreSQL + Redis).
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack

import httpx
import pytest
from django.conf import settings
from websockets.sync.client import ClientConnection, connect

from loket.inbox.models import Message
from loket.tenancy.services import create_api_token
from tests import factories
from tests.conftest import require
from tests.processes import free_port, loket_process, subprocess_env, wait_for_http

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.subprocess]

DELIVERY_WAIT = 10.0  # seconds: a bound on how long an event may take, not a speed claim


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _agent_socket(port: int, token: str) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{port}/ws/agent/",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=DELIVERY_WAIT,
    )


def _receive(socket: ClientConnection, timeout: float) -> dict:
    return json.loads(socket.recv(timeout=timeout))


def _events_until(socket: ClientConnection, name: str, message_id: int) -> list[dict]:
    """Everything the socket receives up to and including ``name`` for ``message_id``."""
    deadline = time.monotonic() + DELIVERY_WAIT
    received = []
    while True:
        remaining = deadline - time.monotonic()
        try:
            event = _receive(socket, max(remaining, 0.001))
        except TimeoutError:
            raise AssertionError(
                f"no {name} for message {message_id} within {DELIVERY_WAIT}s; got {received}"
            ) from None
        received.append(event)
        if event.get("type") == name and event.get("message_id") == message_id:
            return received


def _deliver(port: int, channel, external_id: str, text: str) -> Message:
    """POST a signed API-channel delivery to the process on ``port``; the stored message."""
    body = json.dumps(
        {"type": "message", "id": external_id, "contact": {"id": "c-1"}, "text": text}
    ).encode()
    response = httpx.post(
        f"http://127.0.0.1:{port}/hooks/api/{channel.uuid}/",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Loket-Signature": factories.signature(channel.secrets["secret"], body),
        },
        timeout=DELIVERY_WAIT,
    )
    assert response.status_code == 200, response.text
    # 200 means committed: the row is visible to this (the test's) connection now.
    return Message.objects.get(channel=channel, external_id=external_id)


def _print_logs(logs: dict) -> None:
    for name, path in logs.items():
        print(f"----- loket serve {name} ({path}) -----")
        print(path.read_text(errors="replace") if path.exists() else "(no log)")


def test_a_message_ingested_in_one_serve_process_reaches_an_agent_socket_on_another(
    transactional_db, tmp_path
):
    require(bool(settings.REDIS_URL), "Redis (REDIS_URL)")
    require(_redis_answers(settings.REDIS_URL), f"Redis at {settings.REDIS_URL}")

    acme, other = factories.workspace("acme"), factories.workspace("other")
    acme_channel, other_channel = factories.api_channel(acme), factories.api_channel(other)
    _, acme_token = create_api_token(factories.owner_of(acme), name="fan-out")
    _, other_token = create_api_token(factories.owner_of(other), name="fan-out")

    env = subprocess_env(
        tmp_path,
        REDIS_URL=settings.REDIS_URL,
        LOKET_INPROCESS_WORKERS="0",
        # Concurrent runs on one Redis must not hear each other (workspace ids repeat).
        LOKET_CHANNEL_PREFIX=f"loket-test-{uuid.uuid4().hex[:12]}",
    )
    port_a = free_port()
    port_b = free_port()
    while port_b == port_a:
        port_b = free_port()
    logs = {"A": tmp_path / "serve-a.log", "B": tmp_path / "serve-b.log"}

    with ExitStack() as stack:
        try:
            process_a = stack.enter_context(
                loket_process(["serve", "--port", str(port_a)], env=env, log_path=logs["A"])
            )
            process_b = stack.enter_context(
                loket_process(["serve", "--port", str(port_b)], env=env, log_path=logs["B"])
            )
            wait_for_http(f"http://127.0.0.1:{port_a}/healthz", process=process_a)
            wait_for_http(f"http://127.0.0.1:{port_b}/healthz", process=process_b)

            acme_agent = stack.enter_context(_agent_socket(port_b, acme_token))
            other_agent = stack.enter_context(_agent_socket(port_b, other_token))
            assert _receive(acme_agent, DELIVERY_WAIT) == {
                "type": "hello",
                "workspace_id": acme.pk,
            }
            assert _receive(other_agent, DELIVERY_WAIT) == {
                "type": "hello",
                "workspace_id": other.pk,
            }

            # Ingested by A ...
            message = _deliver(port_a, acme_channel, "ext-1", "Where is my parcel?")

            # ... reaches the agent connected to B.
            received = _events_until(acme_agent, "message.created", message.pk)
            assert received[-1] == {
                "type": "message.created",
                "workspace_id": acme.pk,
                "actor": {"type": "contact", "id": message.author_contact_id},
                "conversation_id": message.conversation_id,
                "message_id": message.pk,
                "kind": "message",
                "direction": "in",
            }
            assert {e["workspace_id"] for e in received} == {acme.pk}

            # The other workspace's agent on B heard none of it: events reach a socket in
            # order, so the first thing it receives after acme's event is its own.
            own = _deliver(port_a, other_channel, "ext-2", "Hello from the other tenant")
            received_other = _events_until(other_agent, "message.created", own.pk)
            assert [e["type"] for e in received_other] == [
                "conversation.created",
                "message.created",
            ]
            assert {e["workspace_id"] for e in received_other} == {other.pk}
            assert message.conversation_id not in {e["conversation_id"] for e in received_other}
        except BaseException:
            _print_logs(logs)
            raise
