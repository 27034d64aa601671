"""Loket's task worker over django-tasks-db rows: runs tasks, retries them by policy, recovers
tasks whose worker died (heartbeats + a sweeper using database time) and runs periodic jobs.

Used two ways: ``loket worker`` (a process, production) and threads inside ``loket serve``
(embedded mode).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now
from django.db.utils import OperationalError
from django.utils.crypto import get_random_string
from django_tasks.base import TaskResultStatus
from django_tasks.signals import task_enqueued
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from loket.jobs.models import PeriodicSchedule, WorkerHeartbeat
from loket.jobs.policy import periodic_jobs, policy_for

log = logging.getLogger(__name__)

# Local workers sleep on this between polls; an enqueue in this process wakes them after commit.
_wakeup = threading.Condition()


def _wake_local_workers(**_kwargs) -> None:
    transaction.on_commit(wake_workers)


task_enqueued.connect(_wake_local_workers, dispatch_uid="loket.jobs.wake")


def _reset_connections() -> None:
    """Drop this thread's broken database connections so the next attempt reconnects.

    Never raises: it runs right after a failure, when the database may still be unreachable.
    """
    try:
        close_old_connections()
        # close_old_connections() only notices errors raised through Django's cursor wrappers.
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and not conn.is_usable():
                conn.close()
    except Exception:
        log.exception("closing broken database connections failed")


def db_now_minus(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() - dt.timedelta(seconds=seconds), output_field=DateTimeField())


def db_now_plus(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + dt.timedelta(seconds=seconds), output_field=DateTimeField())


def _error_text(exc: BaseException) -> tuple[str, str]:
    return (
        f"{type(exc).__module__}.{type(exc).__qualname__}",
        "".join(traceback.format_exception(exc)),
    )


def _give_up(row: DBTaskResult, exc: BaseException) -> None:
    policy = policy_for(row.task_path)
    if policy.on_give_up is None:
        return
    try:
        policy.on_give_up(exc, *row.args_kwargs["args"], **row.args_kwargs["kwargs"])
    except Exception:
        log.exception("give-up handler of %s failed", row.task_path)


def requeue(row: DBTaskResult, delay: float, exc: BaseException | None) -> None:
    """Put a task back as READY after ``delay`` seconds, keeping its attempt history."""
    fields = {"status": TaskResultStatus.READY, "run_after": db_now_plus(delay)}
    if exc is not None:
        fields["exception_class_path"], fields["traceback"] = _error_text(exc)
    DBTaskResult.objects.filter(pk=row.pk).update(**fields)


class WorkerDied(Exception):
    pass


def sweep_stale_tasks(stale_seconds: float | None = None) -> int:
    """Requeue RUNNING tasks whose worker stopped sending heartbeats (killed, crashed, lost power).

    Each recovery counts as an attempt; a task out of attempts fails and its give-up handler runs.
    Returns the number of tasks recovered.
    """
    stale = stale_seconds if stale_seconds is not None else settings.LOKET_WORKER_STALE_SECONDS
    live = set(
        WorkerHeartbeat.objects.filter(seen_at__gte=db_now_minus(stale)).values_list(
            "worker_id", flat=True
        )
    )
    recovered = 0
    candidates = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING, started_at__lt=db_now_minus(stale)
    )
    for row in candidates:
        if row.worker_ids and row.worker_ids[-1] in live:
            continue
        with transaction.atomic():
            # Claim the recovery: only the sweeper that flips it from RUNNING handles it.
            locked = (
                DBTaskResult.objects.select_for_update(skip_locked=True)
                .filter(pk=row.pk, status=TaskResultStatus.RUNNING)
                .first()
            )
            if locked is None or locked.worker_ids != row.worker_ids:
                continue  # recovered by another sweeper meanwhile (and maybe claimed again)
            attempts = len(locked.worker_ids)
            policy = policy_for(locked.task_path)
            exc = WorkerDied(f"worker {locked.worker_ids[-1:]} stopped while running this task")
            if attempts < max(policy.max_attempts, 3):
                requeue(locked, 0, exc)
                log.warning("requeued %s (%s) from a dead worker", locked.pk, locked.task_path)
            else:
                locked.set_failed(exc)
                _give_up(locked, exc)
            recovered += 1
    return recovered


def run_due_periodic_jobs() -> list[str]:
    """Enqueue each periodic job that is due; a conditional UPDATE makes one worker win."""
    enqueued = []
    for periodic in periodic_jobs():
        with transaction.atomic():
            # Due now by the database's clock (a Python timestamp can be ahead of it: on SQLite
            # Now() has millisecond precision, so a new job would not be due for its first run).
            PeriodicSchedule.objects.get_or_create(
                name=periodic.name, defaults={"next_run_at": Now()}
            )
            claimed = PeriodicSchedule.objects.filter(
                name=periodic.name, next_run_at__lte=Now()
            ).update(next_run_at=db_now_plus(periodic.every_seconds), last_run_at=Now())
            if claimed:
                periodic.task.enqueue()
                enqueued.append(periodic.name)
    return enqueued


class Worker:
    def __init__(
        self,
        *,
        worker_id: str | None = None,
        poll_seconds: float | None = None,
        heartbeat_seconds: float | None = None,
        stop: threading.Event | None = None,
        max_tasks: int | None = None,
    ) -> None:
        self.worker_id = worker_id or f"{socket.gethostname()[:20]}-{os.getpid()}-" + (
            get_random_string(8)
        )
        self.poll_seconds = (
            poll_seconds if poll_seconds is not None else settings.LOKET_WORKER_POLL_SECONDS
        )
        self.heartbeat_seconds = (
            heartbeat_seconds
            if heartbeat_seconds is not None
            else settings.LOKET_WORKER_HEARTBEAT_SECONDS
        )
        self.stop = stop or threading.Event()
        self.max_tasks = max_tasks
        self.tasks_run = 0
        self._unfinished: list[DBTaskResult] = []
        self._next_maintenance = 0.0

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("worker %s started", self.worker_id)
        try:
            self.heartbeat()
        except Exception:  # the heartbeat thread tries again soon
            log.exception("first heartbeat of %s failed", self.worker_id)
            _reset_connections()
        finished = threading.Event()
        # Heartbeats come from their own thread so a long task never looks like a dead worker.
        beats = threading.Thread(
            target=self._beat_until, args=(finished,), name="loket-heartbeat", daemon=True
        )
        beats.start()
        failures = 0
        try:
            while not self.stop.is_set():
                if self.max_tasks is not None and self.tasks_run >= self.max_tasks:
                    break
                try:
                    ran_a_task = self._run_once()
                except Exception:
                    # A worker must outlive a dropped connection or a database restart: as an
                    # embedded thread nobody would notice it died and tasks would wait for a
                    # restart. A task whose outcome could not be stored is requeued by
                    # _run_once once the database answers again.
                    failures += 1
                    delay = min(30.0, 0.5 * 2 ** (failures - 1))
                    log.exception(
                        "worker %s failed (%d in a row); trying again in %.1fs",
                        self.worker_id,
                        failures,
                        delay,
                    )
                    _reset_connections()
                    self.stop.wait(delay)  # not _wakeup: new tasks cannot help a failing database
                    continue
                failures = 0
                if not ran_a_task:
                    with _wakeup:
                        _wakeup.wait(self.poll_seconds)
        finally:
            finished.set()
            beats.join(timeout=self.heartbeat_seconds + 5)
            close_old_connections()
            log.info("worker %s stopped", self.worker_id)

    def _run_once(self) -> bool:
        """Maintenance, then claim and execute one task; returns whether a task ran."""
        close_old_connections()
        self._requeue_unfinished()
        self.maintenance()
        row = self.claim()
        if row is None:
            close_old_connections()
            return False
        try:
            self.execute(row)
        except Exception:
            # It ran, but its outcome could not be stored: once the database answers again it
            # goes back to the queue (the sweeper would not take it while we send heartbeats).
            self._unfinished.append(row)
            raise
        return True

    def _requeue_unfinished(self) -> None:
        while self._unfinished:
            row = self._unfinished[0]
            requeue(row, 0, WorkerDied("its worker could not record the outcome; run again"))
            self._unfinished.pop(0)

    def _beat_until(self, finished: threading.Event) -> None:
        try:
            while not finished.wait(self.heartbeat_seconds):
                try:
                    self.heartbeat()
                    close_old_connections()
                except Exception:
                    log.exception("heartbeat of %s failed", self.worker_id)
                    _reset_connections()  # never raises: the heartbeats must go on
        finally:
            from django.db import connection

            connection.close()

    def maintenance(self) -> None:
        if time.monotonic() < self._next_maintenance:
            return
        self._next_maintenance = time.monotonic() + self.heartbeat_seconds
        try:
            sweep_stale_tasks()
            run_due_periodic_jobs()
        except OperationalError as exc:
            if not is_locked_database_exception(exc):
                raise

    def heartbeat(self) -> None:
        updated = WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(seen_at=Now())
        if not updated:
            WorkerHeartbeat.objects.create(
                worker_id=self.worker_id,
                hostname=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=Now(),
                seen_at=Now(),
            )

    def claim(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(backend_name="default")
        try:
            with exclusive_transaction(tasks.db):
                row = tasks.get_locked()
                if row is not None:
                    row.claim(self.worker_id)
                return row
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                return None
            raise

    def execute(self, row: DBTaskResult) -> None:
        self.tasks_run += 1
        try:
            task = row.task
            value = task.call(*row.args_kwargs["args"], **row.args_kwargs["kwargs"])
        except Exception as exc:
            self._failed(row, exc)
            return
        try:
            row.set_successful(value)
        except Exception as exc:  # e.g. a return value that is not JSON
            self._failed(row, exc)

    def _failed(self, row: DBTaskResult, exc: Exception) -> None:
        attempt = len(row.worker_ids)
        delay = policy_for(row.task_path).delay_for(exc, attempt)
        if delay is not None:
            log.info("task %s attempt %d failed (%s); retry in %.1fs", row.task_path, attempt,
                     exc, delay)  # fmt: skip
            requeue(row, delay, exc)
            return
        log.warning("task %s failed after %d attempt(s): %s", row.task_path, attempt, exc)
        row.set_failed(exc)
        _give_up(row, exc)


def start_worker_threads(count: int) -> tuple[threading.Event, list[threading.Thread]]:
    """Task workers inside the web process (embedded mode), with the background services."""
    from loket.jobs import services

    stop = threading.Event()
    threads = services.start_services(stop)
    for index in range(count):
        worker = Worker(stop=stop)
        thread = threading.Thread(target=worker.run, name=f"loket-worker-{index}", daemon=True)
        thread.start()
        threads.append(thread)
    return stop, threads


def wake_workers() -> None:
    """Wake this process's idle workers now (new work, or time to stop)."""
    with _wakeup:
        _wakeup.notify_all()


def stop_worker_threads(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    wake_workers()
    for thread in threads:
        thread.join(timeout=30)
