"""The worker in-process: running tasks, retries by policy, giving up, the stale-task sweeper and
periodic jobs. Task rows are real django-tasks-db rows in the test database."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from loket.jobs import policy
from loket.jobs import worker as worker_module
from loket.jobs.models import PeriodicSchedule, WorkerHeartbeat
from loket.jobs.policy import Periodic, RetryLater
from loket.jobs.worker import (
    Worker,
    WorkerDied,
    db_now_minus,
    run_due_periodic_jobs,
    sweep_stale_tasks,
)
from tests.jobs import sample_jobs
from tests.processes import subprocess_env


@pytest.fixture(autouse=True)
def _no_give_ups_yet():
    sample_jobs.GAVE_UP.clear()
    yield
    sample_jobs.GAVE_UP.clear()


def row_of(result) -> DBTaskResult:
    return DBTaskResult.objects.get(pk=result.id)


def make_due(result) -> None:
    DBTaskResult.objects.filter(pk=result.id).update(run_after=db_now_minus(1))


def run_one(worker_id: str) -> DBTaskResult:
    """One claim-and-execute cycle of a worker; returns the row as stored afterwards."""
    worker = Worker(worker_id=worker_id)
    row = worker.claim()
    assert row is not None, "no task was ready"
    worker.execute(row)
    row.refresh_from_db()
    return row


# -- running tasks ------------------------------------------------------------------------------


def test_a_task_runs_once_and_stores_its_result(db):
    result = sample_jobs.add.enqueue(2, 3)
    worker = Worker(worker_id="w-1")

    row = worker.claim()
    assert row is not None and str(row.pk) == str(result.id)
    row.refresh_from_db()
    assert row.status == TaskResultStatus.RUNNING
    assert row.worker_ids == ["w-1"]
    assert worker.claim() is None  # a RUNNING task is not handed out twice

    worker.execute(row)
    row.refresh_from_db()
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.return_value == 5
    assert row.finished_at is not None
    assert worker.claim() is None


def test_a_return_value_that_is_not_json_fails_the_task(transactional_db):
    # (transactional: a failed save inside the test's own transaction would poison it; a worker
    # runs tasks in autocommit mode)
    result = sample_jobs.not_json.enqueue()
    row = run_one("w-1")
    assert row.status == TaskResultStatus.FAILED
    assert row.pk == row_of(result).pk
    assert row.exception_class_path == "builtins.TypeError"


def test_retry_later_requeues_with_its_delay_and_counts_the_attempt(db):
    result = sample_jobs.busy.enqueue("acme")
    before = timezone.now()
    row = run_one("w-1")
    after = timezone.now()

    assert row.status == TaskResultStatus.READY
    assert row.worker_ids == ["w-1"]  # the attempt history
    assert row.exception_class_path == "loket.jobs.policy.RetryLater"
    assert "acme is busy" in row.traceback
    # RetryLater(delay=30) wins over the policy's 10 s backoff.
    assert before + dt.timedelta(seconds=29) <= row.run_after <= after + dt.timedelta(seconds=31)
    assert Worker(worker_id="w-2").claim() is None  # not due yet
    assert row_of(result).status == TaskResultStatus.READY
    assert sample_jobs.GAVE_UP == []


def test_the_last_attempt_fails_the_task_and_calls_the_give_up_handler(db):
    result = sample_jobs.busy.enqueue("acme")  # retries=2: three attempts
    assert run_one("w-1").status == TaskResultStatus.READY
    make_due(result)
    second = run_one("w-2")
    assert second.status == TaskResultStatus.READY
    assert second.worker_ids == ["w-1", "w-2"]
    assert sample_jobs.GAVE_UP == []

    make_due(result)
    third = run_one("w-3")
    assert third.status == TaskResultStatus.FAILED
    assert third.worker_ids == ["w-1", "w-2", "w-3"]
    assert third.exception_class_path == "loket.jobs.policy.RetryLater"
    assert len(sample_jobs.GAVE_UP) == 1
    exc, args, kwargs = sample_jobs.GAVE_UP[0]
    assert isinstance(exc, RetryLater) and exc.reason == "acme is busy"
    assert args == ("acme",) and kwargs == {}

    make_due(result)
    assert Worker(worker_id="w-4").claim() is None  # a failed task stays failed


def test_an_exception_outside_retry_on_fails_at_once(db):
    sample_jobs.broken.enqueue("printer")  # retries=3, but ValueError is not retried
    row = run_one("w-1")
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "builtins.ValueError"
    assert [(type(exc), args) for exc, args, _ in sample_jobs.GAVE_UP] == [
        (ValueError, ("printer",))
    ]


def test_the_worker_loop_runs_tasks_and_sends_heartbeats(transactional_db):
    first = sample_jobs.add.enqueue(1, 2)
    second = sample_jobs.add.enqueue(3, 4)
    worker = Worker(worker_id="loop-1", max_tasks=2, poll_seconds=0.05, heartbeat_seconds=0.2)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    runner.join(timeout=30)
    if runner.is_alive():
        worker.stop.set()
        runner.join(timeout=10)
        pytest.fail("the worker did not stop after max_tasks")
    assert row_of(first).status == TaskResultStatus.SUCCESSFUL
    assert row_of(second).return_value == 7
    assert WorkerHeartbeat.objects.filter(worker_id="loop-1").exists()


# -- recovering tasks of dead workers -------------------------------------------------------------


def running_since(result, worker_ids: list[str], seconds_ago: float) -> None:
    DBTaskResult.objects.filter(pk=result.id).update(
        status=TaskResultStatus.RUNNING,
        worker_ids=worker_ids,
        started_at=db_now_minus(seconds_ago),
    )


def beat(worker_id: str, seconds_ago: float = 0) -> None:
    WorkerHeartbeat.objects.create(
        worker_id=worker_id,
        started_at=db_now_minus(3600),
        seen_at=db_now_minus(seconds_ago) if seconds_ago else Now(),
    )


def test_the_sweeper_requeues_tasks_of_silent_workers_only(db):
    alive = sample_jobs.add.enqueue(1, 1)
    silent = sample_jobs.add.enqueue(2, 2)
    vanished = sample_jobs.add.enqueue(3, 3)
    just_claimed = sample_jobs.add.enqueue(4, 4)
    beat("alive")
    beat("silent", seconds_ago=300)
    running_since(alive, ["alive"], 600)  # a long task; its worker still beats
    running_since(silent, ["silent"], 600)
    running_since(vanished, ["vanished"], 600)  # no heartbeat row at all
    running_since(just_claimed, ["new"], 0)  # its worker may not have beaten yet

    assert sweep_stale_tasks(stale_seconds=60) == 2

    assert row_of(alive).status == TaskResultStatus.RUNNING
    assert row_of(just_claimed).status == TaskResultStatus.RUNNING
    for result in (silent, vanished):
        row = row_of(result)
        assert row.status == TaskResultStatus.READY
        assert row.exception_class_path == "loket.jobs.worker.WorkerDied"
        assert len(row.worker_ids) == 1  # the lost attempt stays counted

    # Requeued to run now, so the next claim takes one of them, and the rerun succeeds.
    row = run_one("rescuer")
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.worker_ids[-1] == "rescuer" and len(row.worker_ids) == 2
    assert sweep_stale_tasks(stale_seconds=60) == 0


def test_the_sweeper_uses_the_stale_setting(db, settings):
    settings.LOKET_WORKER_STALE_SECONDS = 5
    result = sample_jobs.add.enqueue(1, 1)
    beat("old", seconds_ago=10)
    running_since(result, ["old"], 10)
    assert sweep_stale_tasks() == 1
    assert row_of(result).status == TaskResultStatus.READY


def test_a_task_out_of_attempts_fails_when_its_worker_dies(db):
    result = sample_jobs.busy.enqueue("acme")  # three attempts allowed
    running_since(result, ["w-1", "w-2", "w-3"], 600)

    assert sweep_stale_tasks(stale_seconds=60) == 1

    row = row_of(result)
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "loket.jobs.worker.WorkerDied"
    assert len(sample_jobs.GAVE_UP) == 1
    exc, args, _ = sample_jobs.GAVE_UP[0]
    assert isinstance(exc, WorkerDied) and args == ("acme",)


def test_a_crash_is_retried_even_for_a_task_without_retries(db):
    result = sample_jobs.add.enqueue(1, 1)  # retries=0, yet a crash is not the task's fault
    running_since(result, ["w-1"], 600)
    assert sweep_stale_tasks(stale_seconds=60) == 1
    assert row_of(result).status == TaskResultStatus.READY


def test_the_sweeper_leaves_a_task_another_worker_claimed_meanwhile(db, monkeypatch):
    result = sample_jobs.add.enqueue(1, 1)
    running_since(result, ["dead"], 600)

    real_atomic = transaction.atomic

    def claimed_by_another_sweeper_and_worker(*args, **kwargs):
        # Between the sweeper's scan and its locked re-read, another sweeper recovers the task
        # and a live worker claims it.
        running_since(result, ["dead", "fresh"], 0)
        beat("fresh")
        return real_atomic(*args, **kwargs)

    fake = type("T", (), {"atomic": staticmethod(claimed_by_another_sweeper_and_worker)})
    monkeypatch.setattr(worker_module, "transaction", fake)

    assert sweep_stale_tasks(stale_seconds=60) == 0
    row = row_of(result)
    assert row.status == TaskResultStatus.RUNNING
    assert row.worker_ids == ["dead", "fresh"]


# -- periodic jobs --------------------------------------------------------------------------------


@pytest.fixture
def hourly_tick(monkeypatch):
    path = sample_jobs.tick.module_path
    monkeypatch.setitem(policy._periodic, path, Periodic(path, 3600, sample_jobs.tick))
    return path


def test_a_due_periodic_job_is_enqueued_once(db, hourly_tick):
    assert hourly_tick in run_due_periodic_jobs()
    assert hourly_tick not in run_due_periodic_jobs()
    assert DBTaskResult.objects.filter(task_path=hourly_tick).count() == 1

    schedule = PeriodicSchedule.objects.get(name=hourly_tick)
    now = timezone.now()
    assert now + dt.timedelta(minutes=59) < schedule.next_run_at <= now + dt.timedelta(hours=1)
    assert schedule.last_run_at is not None

    # Once due again (by the database's clock) it is enqueued again, once.
    PeriodicSchedule.objects.filter(name=hourly_tick).update(next_run_at=db_now_minus(1))
    assert hourly_tick in run_due_periodic_jobs()
    assert hourly_tick not in run_due_periodic_jobs()
    assert DBTaskResult.objects.filter(task_path=hourly_tick).count() == 2


def test_concurrent_workers_enqueue_a_due_periodic_job_once(transactional_db, hourly_tick):
    start = threading.Barrier(4)
    results: list[list[str] | BaseException] = []

    def maintain() -> None:
        try:
            start.wait(timeout=10)
            results.append(run_due_periodic_jobs())
        except BaseException as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=maintain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4, results
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(hourly_tick in r for r in results) == 1
    assert DBTaskResult.objects.filter(task_path=hourly_tick).count() == 1


@pytest.mark.subprocess
def test_a_worker_process_knows_the_periodic_jobs_of_all_apps(tmp_path):
    # `loket worker` never loads the URLconf, so nothing else imports loket.inbox.tasks there.
    code = (
        "import django; django.setup(); "
        "from loket.jobs.policy import periodic_jobs; "
        "print(sorted(p.name for p in periodic_jobs()))"
    )
    env = subprocess_env(tmp_path, DJANGO_SETTINGS_MODULE="loket.settings")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "loket.inbox.tasks.wake_snoozed_conversations" in out.stdout
    assert "loket.inbox.tasks.prune_finished_tasks" in out.stdout
