"""Embedded mode end to end, as `make run` serves it: one `loket serve` process on SQLite in its
own var/ directory, in-memory realtime, task workers in-process. A signed webhook comes in, an
agent socket sees it, the agent's reply is sent to the channel's outbound URL by the in-process
worker, and the provider's delivery report moves it on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from websockets.sync.client import connect

from loket.connectors import signing
from tests.jobs.receiver import running_receiver
from tests.processes import free_port, loket_process, wait_for_http, wait_until

# Independent of the test database (it makes its own), so it runs once, in the SQLite pass.
pytestmark = [pytest.mark.sqlite, pytest.mark.subprocess]

WAIT = 15.0  # a bound, not a speed claim


def embedded_env(tmp_path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("LOKET_")
    }
    env.update(
        LOKET_VAR_DIR=str(tmp_path / "var"),
        LOKET_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LOKET_HTTP_ALLOW_PRIVATE="1",
        LOKET_WORKER_POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    return env


def events_until(socket, wanted, timeout=WAIT) -> list[dict]:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            event = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
        seen.append(event)
        if wanted(event):
            return seen
    raise AssertionError(f"the event did not arrive; got {seen}")


def signed_post(url: str, secret: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"X-Loket-Signature": signing.sign(secret, body), "Content-Type": "application/json"}
    return httpx.post(url, content=body, headers=headers, timeout=WAIT)


def test_make_run_mode_end_to_end(tmp_path):
    port = free_port()
    env = embedded_env(tmp_path, port)
    loket = [sys.executable, "-m", "loket.cli"]
    subprocess.run([*loket, "migrate", "-v", "0"], env=env, check=True, timeout=120)
    demo = subprocess.run(
        [*loket, "demo"], env=env, check=True, capture_output=True, text=True, timeout=120
    ).stdout
    token = next(line for line in demo.splitlines() if "API token:" in line).split(":", 1)[1]
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1",
        headers={"Authorization": f"Bearer {token.strip()}"},
        timeout=WAIT,
    )
    log = tmp_path / "serve.log"
    with (
        running_receiver() as receiver,
        loket_process(["serve", "--port", str(port)], env, log) as server,
    ):
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=server)
            created = api.post(
                "/channels",
                json={"kind": "api", "name": "Shop", "config": {"outbound_url": receiver.url}},
            )
            assert created.status_code == 201, created.text
            channel = created.json()
            with connect(
                f"ws://127.0.0.1:{port}/ws/agent/",
                additional_headers={"Authorization": f"Bearer {token.strip()}"},
            ) as socket:
                assert json.loads(socket.recv(timeout=WAIT))["type"] == "hello"

                inbound = {
                    "id": "shop-msg-1",
                    "contact": {"id": "cust-42", "name": "Noor", "email": "noor@example.org"},
                    "text": "Is my order LK-1001 on its way?",
                }
                answer = signed_post(channel["webhook_url"], channel["secret"], inbound)
                assert answer.status_code == 200, answer.text
                seen = events_until(socket, lambda e: e["type"] == "message.created")
                conversation_id = seen[-1]["conversation_id"]

                reply = api.post(
                    f"/conversations/{conversation_id}/messages",
                    json={"text": "Yes, it ships today."},
                )
                assert reply.status_code == 201, reply.text
                # Stored queued; the answer shows the row as it is by then, and the in-process
                # worker may already have claimed it.
                assert reply.json()["status"] in ("queued", "sending", "sent")
                reply_id = reply.json()["id"]

                # The in-process task worker sends it, signed, to the channel's outbound URL.
                assert receiver.wait_for_requests(1, WAIT)
                sent = receiver.requests[0]
                signing.verify(channel["secret"], sent.body, sent.headers["x-loket-signature"])
                assert json.loads(sent.body)["text"] == "Yes, it ships today."
                events_until(
                    socket,
                    lambda e: e["type"] == "message.status_changed" and e["status"] == "sent",
                )

                report = {"type": "status", "id": json.loads(sent.body)["id"], "status": "read"}
                assert signed_post(channel["webhook_url"], channel["secret"], report).is_success
                events_until(
                    socket,
                    lambda e: e["type"] == "message.status_changed" and e["status"] == "read",
                )

            def reply_status():
                items = api.get(f"/conversations/{conversation_id}/messages").json()["items"]
                return next(m["status"] for m in items if m["id"] == reply_id)

            assert wait_until(lambda: reply_status() == "read", timeout=WAIT)
        except BaseException:
            print(log.read_text(errors="replace")[-4000:])
            raise
