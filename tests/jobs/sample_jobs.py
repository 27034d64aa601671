"""Background jobs used by the job tests. Module-level, so a worker can import them by path."""

from __future__ import annotations

from loket.jobs.policy import RetryLater, job

# (exception, args, kwargs) of every give-up call, in this process.
GAVE_UP: list[tuple[BaseException, tuple, dict]] = []


def record_give_up(exc: BaseException, *args, **kwargs) -> None:
    GAVE_UP.append((exc, args, kwargs))


@job()
def add(a: int, b: int) -> int:
    return a + b


@job(retries=2, backoff_base=10.0, on_give_up=record_give_up)
def busy(key: str) -> None:
    raise RetryLater(f"{key} is busy", delay=30)


@job(retries=3, on_give_up=record_give_up)
def broken(key: str) -> None:
    raise ValueError(f"{key} is broken")  # not in retry_on: no retries


@job()
def not_json() -> object:
    return object()


@job()
def tick() -> str:
    return "tick"
