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


async def _send(groups: list[str], payload: dict) -> None:
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, {"type": "realtime.event", "event": payload})


def _report(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("realtime publish failed: %s", future.exception())


def publish(workspace_id: int, payload: dict, recipients: str | Iterable[int] = AGENTS):
    """Send ``payload`` to the workspace's agents, or to the given membership ids."""
    if recipients == AGENTS:
        groups = [agents_group(workspace_id)]
    else:
        groups = [member_group(member_id) for member_id in recipients]
    loop = _target_loop()
    coro = _send(groups, {"workspace_id": workspace_id, **payload})
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task = loop.create_task(coro)
        task.add_done_callback(_report)
        return task
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    future.add_done_callback(_report)
    return future


def on_event(event: Event) -> None:
    """Event subscriber: every domain event goes to the workspace's agents."""
    data = event.as_dict()
    data["type"] = data.pop("name")
    publish(event.workspace_id, data)
