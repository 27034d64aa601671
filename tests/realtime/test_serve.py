"""`loket serve` and the agents' websocket as a client sees it through the real server."""

from __future__ import annotations

import json

import pytest
import uvicorn
from django.core.management import CommandError, call_command
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from loket.tenancy.services import create_api_token
from tests import factories
from tests.processes import free_port, loket_process, subprocess_env, wait_for_http

WAIT = 10.0  # seconds: a bound, not a speed claim


@pytest.fixture
def no_server(monkeypatch):
    """Starting a server here would block the test forever: fail instead."""

    def refuse(*args, **kwargs):
        raise AssertionError("serve started a server instead of refusing")

    monkeypatch.setattr(uvicorn, "run", refuse)
    monkeypatch.setattr(uvicorn, "Server", refuse)


def test_serve_refuses_several_workers_without_redis(settings, no_server):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL") as refused:
        call_command("serve", "--workers", "2")
    assert "websocket" in str(refused.value)


def test_serve_refuses_several_workers_in_embedded_mode(settings, no_server):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.EMBEDDED = True
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("serve", "--workers", "2")


@pytest.mark.subprocess
def test_a_served_agent_socket_says_hello_or_closes_with_4401(transactional_db, tmp_path):
    ws = factories.workspace("acme")
    _, token = create_api_token(factories.owner_of(ws), name="serve")
    port = free_port()
    log = tmp_path / "serve.log"
    env = subprocess_env(tmp_path, LOKET_INPROCESS_WORKERS="0")
    with loket_process(["serve", "--port", str(port)], env=env, log_path=log) as process:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process)
            url = f"ws://127.0.0.1:{port}/ws/agent/"

            with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as agent:
                hello = json.loads(agent.recv(timeout=WAIT))
                assert hello == {"type": "hello", "workspace_id": ws.pk}

            # A browser cannot read a refused handshake; it can read a close code.
            for attempt in (url, f"{url}?token=lkt_not-a-real-token"):
                with (
                    connect(attempt, open_timeout=WAIT) as stranger,
                    pytest.raises(ConnectionClosed) as closed,
                ):
                    stranger.recv(timeout=WAIT)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4401
        except BaseException:
            print(f"----- loket serve ({log}) -----")
            print(log.read_text(errors="replace") if log.exists() else "(no log)")
            raise
