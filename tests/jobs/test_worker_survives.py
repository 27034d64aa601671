"""A task worker outlives database errors: a failed round of its loop (the sweeper, a claim,
storing a result, the first heartbeat) is logged, backed off and retried, and the thread goes on
running tasks until it is told to stop. Real worker threads against the test database."""

from __future__ import annotations

import threading

import pytest
from django.db.utils import OperationalError
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from loket.jobs import policy
from loket.jobs import worker as worker_module
from loket.jobs.worker import Worker, stop_worker_threads
from tests.jobs import sample_jobs
from tests.processes import wait_until

SERVER_GONE = "server closed the connection unexpectedly"


@pytest.fixture(autouse=True)
def _no_periodic_jobs(monkeypatch):
    # Only the tasks a test enqueues run; the project's periodic jobs would be claimed too.
    monkeypatch.setattr(policy, "_periodic", {})


def failing(real, times: int = 1):
    """``real``, except that its first ``times`` calls raise a lost-connection error."""
    lock = threading.Lock()

    def flaky(*args, **kwargs):
        with lock:
            flaky.calls += 1
            fail = flaky.calls <= times
        if fail:
            raise OperationalError(SERVER_GONE)
        return real(*args, **kwargs)

    flaky.calls = 0
    return flaky


@pytest.fixture
def start_worker():
    """Runs a Worker in a thread (small intervals, so maintenance runs often); stops it after."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(worker_id: str) -> tuple[Worker, threading.Thread]:
        worker = Worker(worker_id=worker_id, poll_seconds=0.05, heartbeat_seconds=0.2)
        thread = threading.Thread(target=worker.run, name=worker_id, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker, thread

    yield start
    for worker, thread in started:
        stop_worker_threads(worker.stop, [thread])
        assert not thread.is_alive(), f"{worker.worker_id} did not stop"


def status_of(result) -> str:
    return DBTaskResult.objects.values_list("status", flat=True).get(pk=result.id)


def wait_for_success(result) -> None:
    wait_until(
        lambda: status_of(result) == TaskResultStatus.SUCCESSFUL,
        timeout=30,
        message="the worker did not run the task",
    )


def logged_the_error(caplog) -> bool:
    return any(
        record.levelname == "ERROR"
        and record.exc_info
        and isinstance(record.exc_info[1], OperationalError)
        for record in caplog.records
    )


def test_a_failing_sweep_does_not_stop_the_worker(
    transactional_db, monkeypatch, caplog, start_worker
):
    sweep = failing(worker_module.sweep_stale_tasks)
    monkeypatch.setattr(worker_module, "sweep_stale_tasks", sweep)
    result = sample_jobs.add.enqueue(2, 3)

    _, thread = start_worker("sweep-fails")

    wait_for_success(result)
    wait_until(lambda: sweep.calls >= 2, timeout=30, message="maintenance stopped running")
    assert thread.is_alive()
    assert logged_the_error(caplog)


def test_a_failing_claim_does_not_stop_the_worker(
    transactional_db, monkeypatch, caplog, start_worker
):
    claim = failing(Worker.claim, times=2)  # twice: a longer backoff the second time
    monkeypatch.setattr(Worker, "claim", claim)
    result = sample_jobs.add.enqueue(2, 3)

    _, thread = start_worker("claim-fails")

    wait_for_success(result)
    assert claim.calls >= 3
    assert thread.is_alive()
    assert logged_the_error(caplog)


def test_a_failing_first_heartbeat_does_not_stop_the_worker(
    transactional_db, monkeypatch, start_worker
):
    heartbeat = failing(Worker.heartbeat)
    monkeypatch.setattr(Worker, "heartbeat", heartbeat)
    result = sample_jobs.add.enqueue(2, 3)

    _, thread = start_worker("heartbeat-fails")

    wait_for_success(result)
    wait_until(lambda: heartbeat.calls >= 2, timeout=30, message="no heartbeat after the failure")
    assert thread.is_alive()


@pytest.mark.parametrize(
    ("task", "store_calls"),
    [
        # add succeeds; storing its result fails, and so does recording that failure.
        (sample_jobs.add, ("set_successful", "set_failed")),
        # busy asks for a retry; putting it back in the queue fails.
        (sample_jobs.busy, ("requeue",)),
    ],
    ids=["result", "retry"],
)
def test_a_task_whose_outcome_cannot_be_stored_is_run_again_and_the_worker_lives(
    transactional_db, monkeypatch, start_worker, task, store_calls
):
    flaky = {}
    for name in store_calls:
        owner = worker_module if name == "requeue" else DBTaskResult
        flaky[name] = failing(getattr(owner, name))
        monkeypatch.setattr(owner, name, flaky[name])
    lost = task.enqueue("acme") if task is sample_jobs.busy else task.enqueue(1, 2)

    _, thread = start_worker("store-fails")
    last = store_calls[-1]
    wait_until(lambda: flaky[last].calls >= 1, timeout=30, message="the task did not run")

    later = sample_jobs.add.enqueue(3, 4)
    wait_for_success(later)
    assert thread.is_alive()
    # Not lost and not stuck: once the database answered again it went back to the queue and
    # this worker claimed it a second time.
    wait_until(
        lambda: len(DBTaskResult.objects.get(pk=lost.id).worker_ids) >= 2,
        timeout=30,
        message="the task was not run again",
    )
    row = DBTaskResult.objects.get(pk=lost.id)
    assert row.worker_ids[:2] == ["store-fails", "store-fails"]
    assert "could not record" in row.traceback or row.status != TaskResultStatus.RUNNING


def test_a_worker_that_keeps_failing_still_stops_when_told(
    transactional_db, monkeypatch, start_worker
):
    claim = failing(Worker.claim, times=10**6)
    monkeypatch.setattr(Worker, "claim", claim)

    worker, thread = start_worker("always-fails")
    wait_until(lambda: claim.calls >= 2, timeout=30, message="the worker did not retry")
    assert thread.is_alive()

    stop_worker_threads(worker.stop, [thread])
    assert not thread.is_alive()
