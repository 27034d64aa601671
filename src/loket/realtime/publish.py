"""The one entry point for realtime: ``publish(workspace_id, payload, recipients)``.

Events are handed to the channel layer after commit (loket.events calls ``on_event``). Sending
happens on an event loop: the web server's own loop when this process serves websockets (the
in-memory layer only works there), otherwise a small publisher loop thread kept for the process,
so Redis connections are reused instead of opened per event.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterable

from channels.layers import get_channel_layer

from loket.events import Event

log = logging.getLogger(__name__)

AGENTS = "agents"
_server_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None
_own_loop_lock = threading.Lock()


def agents_group(workspace_id: int) -> str:
    return f"ws-{workspace_id}-agents"


def member_group(membership_id: int) -> str:
    return f"member-{membership_id}"


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    with _own_loop_lock:
        if _own_loop is None or _own_loop.is_closed():
            _own_loop = asyncio.new_event_loop()
            threading.Thread(
                target=_own_loop.run_forever, name="loket-publisher", daemon=True
            ).start()
        return _own_loop


def _target_loop() -> asyncio.AbstractEventLoop:
    if _server_loop is not None and not _server_loop.is_closed() and _server_loop.is_running():
        return _server_loop
    return _publisher_loop()


# Events wait here for the loop; one drain task at a time sends them in order. Handing over a
# batch costs one loop wake-up instead of a future per event (measured: publishing was ~0.5 ms
# of CPU per inbound message when each event was its own run_coroutine_threadsafe).
# Under load the drain sends at most one round per COALESCE_SECONDS: the events that arrive
# meanwhile share one PUBLISH per group (and need no loop wake-up at all), instead of a Redis
# round trip and a socket write each. An idle process still sends an event at once.
COALESCE_SECONDS = 0.02
_pending: deque[tuple[list[str], dict]] = deque()
_pending_lock = threading.Lock()
_draining = False
_drain_loop: asyncio.AbstractEventLoop | None = None


async def _drain() -> None:
    global _draining
    finished = False
    try:
        layer = get_channel_layer()
        loop = asyncio.get_running_loop()
        while True:
            with _pending_lock:
                if not _pending:
                    # Under the lock: an event appended after this check starts the next drain.
                    _draining, finished = False, True
                    return
                batch = list(_pending)
                _pending.clear()
            round_started = loop.time()
            # One send per group per batch: under load a busy workspace's events share one
            # Redis PUBLISH instead of one each (the consumer unpacks them in order).
            per_group: dict[str, list[dict]] = {}
            for groups, payload in batch:
                for group in groups:
                    per_group.setdefault(group, []).append(payload)
            for group, payloads in per_group.items():
                if len(payloads) == 1:
                    message = {"type": "realtime.event", "event": payloads[0]}
                else:
                    message = {"type": "realtime.events", "events": payloads}
                try:
                    await layer.group_send(group, message)
                except Exception as exc:  # one failed send must not drop the rest
                    log.error("realtime publish to %s failed: %s", group, exc)
            await asyncio.sleep(max(0.0, round_started + COALESCE_SECONDS - loop.time()))
    finally:
        # Whatever else ends this drain (cancelled, broken layer), the next publish starts one.
        if not finished:
            with _pending_lock:
                _draining = False


def _start_drain(loop: asyncio.AbstractEventLoop) -> None:
    loop.create_task(_drain())


def publish(workspace_id: int, payload: dict, recipients: str | Iterable[int] = AGENTS) -> None:
    """Send ``payload`` to the workspace's agents, or to the given membership ids, in the order
    of the calls."""
    if recipients == AGENTS:
        groups = [agents_group(workspace_id)]
    else:
        groups = [member_group(member_id) for member_id in recipients]
    publish_to_groups(groups, {"workspace_id": workspace_id, **payload})


def publish_to_groups(groups: list[str], payload: dict) -> None:
    """Send ``payload`` to channel-layer groups other than agents' (e.g. a website visitor's
    widget), through the same ordered, batched drain."""
    global _draining, _drain_loop
    with _pending_lock:
        _pending.append((list(groups), payload))
        if _draining and _drain_loop is not None and _drain_loop.is_running():
            return
        # No drain running, or its loop stopped before draining (a server shutting down).
        _draining = True
        _drain_loop = loop = _target_loop()
    loop.call_soon_threadsafe(_start_drain, loop)


def on_event(event: Event) -> None:
    """Event subscriber: every domain event goes to the workspace's agents."""
    data = event.as_dict()
    data["type"] = data.pop("name")
    publish(event.workspace_id, data)
