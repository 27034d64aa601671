"""Declaring background jobs: retry policy per task and periodic schedules.

``django-tasks`` has no retries, no recovery of tasks left RUNNING and no periodic jobs; Loket's
worker (loket.jobs.worker) adds them and reads the policies declared here.

    @job(retries=8, on_give_up=mark_failed)
    def send_message(message_id: int) -> None: ...

    send_message.enqueue(message.pk)   # inside the transaction that stored the message
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from django_tasks import task


class RetryLater(Exception):
    """Raised by a job for a transient failure; ``delay`` (seconds) overrides the backoff, e.g.
    from a provider's Retry-After."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 0  # attempts after the first
    backoff_base: float = 2.0  # seconds before the first retry; doubles each time
    backoff_cap: float = 900.0
    retry_on: tuple[type[BaseException], ...] = (RetryLater,)
    on_give_up: Callable[..., None] | None = None

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def delay_for(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds before the next attempt, or None to give up. ``attempt`` counts from 1."""
        if attempt >= self.max_attempts or not isinstance(exc, self.retry_on):
            return None
        if isinstance(exc, RetryLater) and exc.delay is not None:
            return min(max(exc.delay, 0.0), self.backoff_cap)
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        # "Equal jitter": at least half the backoff, so retries spread but never bunch up at 0.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


DEFAULT_POLICY = RetryPolicy()
_policies: dict[str, RetryPolicy] = {}


@dataclass(frozen=True)
class Periodic:
    name: str
    every_seconds: float
    task: object


_periodic: dict[str, Periodic] = {}


def job(
    *,
    retries: int = 0,
    backoff_base: float = 2.0,
    backoff_cap: float = 900.0,
    retry_on: tuple[type[BaseException], ...] = (RetryLater,),
    on_give_up: Callable[..., None] | None = None,
    every_seconds: float | None = None,
    priority: int = 0,
    queue_name: str = "default",
):
    """Make a function a background task with a retry policy (and optionally a schedule)."""

    def decorate(func):
        declared = task(priority=priority, queue_name=queue_name)(func)
        _policies[declared.module_path] = RetryPolicy(
            retries=retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            retry_on=retry_on,
            on_give_up=on_give_up,
        )
        if every_seconds is not None:
            _periodic[declared.module_path] = Periodic(
                declared.module_path, every_seconds, declared
            )
        return declared

    return decorate


def policy_for(task_path: str) -> RetryPolicy:
    return _policies.get(task_path, DEFAULT_POLICY)


def periodic_jobs() -> list[Periodic]:
    return list(_periodic.values())
