"""Live-chat widget benchmark: its size, idle visitor websockets per process, and the message
round trip from a visitor to an agent's screen under that load.

    python bench/widget.py                      # PostgreSQL + Redis (production shape)
    python bench/widget.py --sockets 1000       # fewer sockets, for development

1. ``widget.size``: the bytes a host page loads (the loader, then inside the iframe the frame
   page's script and stylesheet), raw and gzipped as served. Target: under 30 KB gzipped.
2. ``widget.sockets``: one ``loket serve`` process (PostgreSQL, Redis channel layer); this
   process opens idle visitor websockets to it, each with its own signed session token, in
   batches, and reads the server's resident memory (RSS) before and after. Target: 5,000 held.
3. ``widget.roundtrip``: with those sockets open, visitors send messages over their sockets;
   an agent's websocket (API token) receives each ``message.created`` event. p50/p99 of send →
   agent event.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c
from ingest import WORKSPACE, Backend, loket, setup_django, stop_servers, wait_ready

TARGET_SOCKETS = 5_000
TARGET_WIDGET_GZ_BYTES = 30 * 1024
ROUND_TRIPS = 300
STATIC = Path(__file__).resolve().parent.parent / "src/loket/connectors/livechat/static/livechat"


def measure_size() -> bool:
    total_raw = total_gz = 0
    for name in ("loader.js", "widget.js", "widget.css"):
        data = (STATIC / name).read_bytes()
        gz = len(gzip.compress(data, 9))
        c.figure(f"widget.size.{name}", gz / 1024, "KB gz")
        total_raw += len(data)
        total_gz += gz
    c.figure("widget.size.raw", total_raw / 1024, "KB")
    c.figure("widget.size.gzip", total_gz / 1024, "KB")
    return c.verdict(
        "target",
        total_gz < TARGET_WIDGET_GZ_BYTES,
        "widget.size",
        f"loader + widget script + stylesheet {total_gz / 1024:.1f} KB gzipped "
        f"(need < {TARGET_WIDGET_GZ_BYTES // 1024} KB)",
    )


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def open_sockets(url: str, tokens: list[str], batch: int = 200) -> list:
    import websockets

    sockets = []
    for start in range(0, len(tokens), batch):
        chunk = tokens[start : start + batch]
        opened = await asyncio.gather(
            *(
                websockets.connect(f"{url}?token={t}", compression=None, open_timeout=30)
                for t in chunk
            ),
            return_exceptions=True,
        )
        for socket in opened:
            if isinstance(socket, Exception):
                raise RuntimeError(f"a widget socket did not open: {socket!r}")
            sockets.append(socket)
    return sockets


async def round_trips(port: int, agent_token: str, visitors: list) -> list[float]:
    """Send → the agent's ``message.created``, one message at a time, ~50 a second."""
    import websockets

    agent = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/agent/?token={agent_token}", compression=None
    )
    await agent.recv()  # hello
    arrivals: list[float] = []

    async def listen():
        while True:
            for event in _events(json.loads(await agent.recv())):
                if event.get("type") == "message.created" and event.get("direction") == "in":
                    arrivals.append(time.perf_counter())

    listener = asyncio.create_task(listen())
    latencies = []
    for index in range(ROUND_TRIPS):
        seen = len(arrivals)
        frame = {"type": "message", "client_id": f"bench-{index}", "text": f"hi {index}"}
        started = time.perf_counter()
        await visitors[index % len(visitors)].send(json.dumps(frame))
        deadline = started + 10
        while len(arrivals) == seen and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        if len(arrivals) == seen:
            raise RuntimeError(f"message {index} never reached the agent")
        latencies.append(arrivals[seen] - started)
        await asyncio.sleep(0.02)
    listener.cancel()
    await agent.close()
    return latencies


def _events(frame: dict) -> list[dict]:
    return frame.get("events") or [frame]


def run(sockets: int) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="loket-bench-widget-"))
    backend = Backend("pg", tmp)
    ok = measure_size()
    server = None
    c.note(f"PostgreSQL + Redis, one `loket serve`, load average {c.load_average()}")
    try:
        backend.create()
        loket(backend, "migrate", "--noinput")
        loket(backend, "createadmin", "--email", "owner@bench.example", "--workspace", WORKSPACE,
              "--password", "bench-password-not-used")  # fmt: skip
        setup_django(backend)
        from loket.connectors.livechat import widget
        from loket.connectors.registry import get_connector
        from loket.inbox.services.channels import create_channel
        from loket.tenancy.models import Membership, Role, Workspace
        from loket.tenancy.services import create_api_token

        workspace = Workspace.objects.get(slug=WORKSPACE)
        channel, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
        tokens = [widget.start_session(channel)[0] for _ in range(sockets)]
        owner = Membership.objects.get(workspace=workspace, role=Role.OWNER)
        _, agent_token = create_api_token(owner, name="bench")

        port = c.free_port()
        log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - as long as the server
        server = subprocess.Popen(
            [c.python(), "-m", "loket.cli", "serve", "--port", str(port)],
            # All the benchmark's visitors come from one address: lift the per-IP limit.
            env=backend.env(
                LOKET_PUBLIC_URL=f"http://127.0.0.1:{port}",
                LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP="1000000",
            ),
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(port, server)
        time.sleep(1.0)
        before = rss_mb(server.pid)
        url = f"ws://127.0.0.1:{port}/ws/widget/{channel.uuid}/"

        async def scenario():
            started = time.monotonic()
            opened = await open_sockets(url, tokens)
            c.figure("widget.sockets.open_s", time.monotonic() - started, "s")
            await asyncio.sleep(2.0)
            after = rss_mb(server.pid)
            held = sum(1 for s in opened if s.state.name == "OPEN")
            c.figure("widget.sockets.held", held, "sockets")
            c.figure("widget.sockets.server_rss_mb", after, "MB")
            c.figure("widget.sockets.kb_per_socket", (after - before) * 1024 / max(held, 1), "KB")
            latencies = await round_trips(port, agent_token, opened[:50])
            for socket in opened:
                await socket.close()
            return held, latencies

        held, latencies = asyncio.run(scenario())
        p50 = c.percentile(latencies, 50) * 1000
        p99 = c.percentile(latencies, 99) * 1000
        c.figure("widget.roundtrip.p50_ms", p50, "ms")
        c.figure("widget.roundtrip.p99_ms", p99, "ms")
        ok &= c.verdict(
            "target",
            held >= min(sockets, TARGET_SOCKETS) and sockets >= TARGET_SOCKETS,
            "widget.sockets",
            f"{held} idle widget sockets held by one process (need {TARGET_SOCKETS}); "
            f"visitor → agent p99 {p99:.1f} ms with them open",
        )
        if server.poll() is not None:
            ok = c.verdict("check", False, "widget.server", "loket serve exited")
    except Exception as exc:
        ok = c.verdict("check", False, "widget", f"benchmark error: {exc!r}")
        if (tmp / "serve.log").exists():
            c.note((tmp / "serve.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        if server is not None:
            stop_servers([(0, server)])
        from inbox import close_django

        close_django()
        backend.drop()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=TARGET_SOCKETS)
    parser.add_argument("--no-machine", action="store_true", help="skip the machine facts")
    args = parser.parse_args(argv)
    if not args.no_machine:
        c.print_machine()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return 0 if run(args.sockets) else 1


if __name__ == "__main__":
    sys.exit(main())
