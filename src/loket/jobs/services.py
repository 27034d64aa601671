"""Long-running background services beside the task workers (e.g. the IMAP mailbox pollers).

Apps register a service at start-up (``AppConfig.ready``); ``loket worker`` and the in-process
workers of ``loket serve`` run every registered service in a thread until they stop. The core
runs them without knowing what they are, so it never imports the edges that provide them.
A service must return promptly once ``stop`` is set, and must be safe to run in several
processes at once (take a lease in the database for anything that must run once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Service = Callable[[threading.Event], None]
_services: dict[str, Service] = {}


def register(name: str, run: Service) -> None:
    _services[name] = run


def registered() -> dict[str, Service]:
    return dict(_services)


def _supervised(name: str, run: Service, stop: threading.Event) -> None:
    """Run a service; restart it after a crash (with a pause) until ``stop`` is set."""
    while not stop.is_set():
        try:
            run(stop)
        except Exception:
            log.exception("background service %s crashed; restarting it in 5 s", name)
            stop.wait(5)
        else:
            return


def start_services(stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for name, run in _services.items():
        thread = threading.Thread(
            target=_supervised, args=(name, run, stop), name=f"loket-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def join_services(threads: list[threading.Thread], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
