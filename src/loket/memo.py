"""Per-process memory of small per-workspace facts that hot paths ask for on every message
(has this workspace any rules, flows, auto-replies?), kept for a few seconds: a change made in
this process is seen at once (``forget``), one made in another within ``seconds``."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_all: weakref.WeakSet = weakref.WeakSet()


class PerWorkspace(Generic[T]):
    """``load(workspace_id)`` kept for ``seconds``. With ``refresh(workspace_id, old)``, an
    expired value is brought up to date from the old one instead of loaded anew (for values
    that are costly to build and cheap to patch)."""

    def __init__(
        self,
        load: Callable[[int], T],
        *,
        seconds: float = 10.0,
        limit: int = 10_000,
        refresh: Callable[[int, T], T] | None = None,
    ):
        self.load = load
        self.refresh = refresh
        self.seconds = seconds
        self.limit = limit
        self._kept: dict[int, tuple[float, T]] = {}
        _all.add(self)

    def get(self, workspace_id: int) -> T:
        now = time.monotonic()
        kept = self._kept.get(workspace_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        if kept is not None and self.refresh is not None:
            value = self.refresh(workspace_id, kept[1])
        else:
            value = self.load(workspace_id)
        if len(self._kept) >= self.limit:
            self._kept.clear()
        self._kept[workspace_id] = (now + self.seconds, value)
        return value

    def forget(self, workspace_id: int) -> None:
        self._kept.pop(workspace_id, None)

    def expire(self, workspace_id: int) -> None:
        """Seen as out of date by the next ``get`` (refreshed then, when it can be)."""
        kept = self._kept.get(workspace_id)
        if kept is not None:
            self._kept[workspace_id] = (0.0, kept[1])

    def clear(self) -> None:
        self._kept.clear()


def forget_everything() -> None:
    """Every memory of every workspace (tests: ids come back after a rollback)."""
    for memo in list(_all):
        memo.clear()
