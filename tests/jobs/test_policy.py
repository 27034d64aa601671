"""RetryPolicy.delay_for: exponential backoff with equal jitter, a cap, Retry-After, giving up."""

from __future__ import annotations

import pytest

from loket.jobs import policy as policy_module
from loket.jobs.policy import DEFAULT_POLICY, RetryLater, RetryPolicy, policy_for
from tests.jobs import sample_jobs


class Transient(Exception):
    pass


@pytest.fixture
def lowest_jitter(monkeypatch):
    monkeypatch.setattr(policy_module.random, "uniform", lambda low, high: low)


@pytest.fixture
def highest_jitter(monkeypatch):
    monkeypatch.setattr(policy_module.random, "uniform", lambda low, high: high)


def test_backoff_doubles_per_attempt_until_the_cap(highest_jitter):
    policy = RetryPolicy(retries=6, backoff_base=2.0, backoff_cap=20.0)
    delays = [policy.delay_for(RetryLater("busy"), attempt) for attempt in range(1, 7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


def test_equal_jitter_never_goes_below_half_the_backoff(lowest_jitter):
    policy = RetryPolicy(retries=6, backoff_base=2.0, backoff_cap=20.0)
    delays = [policy.delay_for(RetryLater("busy"), attempt) for attempt in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.5, 3.0), (3, 6.0, 12.0), (6, 30, 60)])
def test_jittered_delays_stay_within_bounds_and_spread(attempt, low, high):
    policy = RetryPolicy(retries=9, backoff_base=3.0, backoff_cap=60.0)
    delays = [policy.delay_for(RetryLater("busy"), attempt) for _ in range(300)]
    assert all(low <= delay <= high for delay in delays), (min(delays), max(delays))
    assert len(set(delays)) > 100  # jittered, not one fixed delay
    assert min(delays) < low + (high - low) / 4 and max(delays) > high - (high - low) / 4


def test_retry_later_delay_overrides_the_backoff():
    policy = RetryPolicy(retries=5, backoff_base=2.0, backoff_cap=900.0)
    assert policy.delay_for(RetryLater("slow down", delay=7), 1) == 7
    assert policy.delay_for(RetryLater("slow down", delay=7), 4) == 7
    assert policy.delay_for(RetryLater("slow down", delay=0), 2) == 0


def test_retry_later_delay_is_capped_and_never_negative():
    policy = RetryPolicy(retries=5, backoff_cap=60.0)
    assert policy.delay_for(RetryLater("tomorrow", delay=86400), 1) == 60.0
    assert policy.delay_for(RetryLater("clock skew", delay=-5), 1) == 0.0


def test_gives_up_after_the_last_retry():
    policy = RetryPolicy(retries=2)
    assert policy.max_attempts == 3
    assert policy.delay_for(RetryLater("busy"), 1) is not None
    assert policy.delay_for(RetryLater("busy"), 2) is not None
    assert policy.delay_for(RetryLater("busy"), 3) is None
    assert policy.delay_for(RetryLater("busy", delay=1), 3) is None  # Retry-After cannot extend
    assert policy.delay_for(RetryLater("busy"), 4) is None


def test_no_retries_means_the_first_failure_is_final():
    assert RetryPolicy().delay_for(RetryLater("busy"), 1) is None


def test_exceptions_outside_retry_on_are_not_retried():
    policy = RetryPolicy(retries=5)
    assert policy.delay_for(ValueError("bug"), 1) is None
    assert policy.delay_for(Transient("blip"), 1) is None

    wide = RetryPolicy(retries=5, retry_on=(Transient,))
    assert wide.delay_for(Transient("blip"), 1) is not None
    assert wide.delay_for(ValueError("bug"), 1) is None
    assert wide.delay_for(RetryLater("busy"), 1) is None  # not listed, so not retried


def test_job_decorator_registers_the_policy_by_task_path():
    declared = policy_for(sample_jobs.busy.module_path)
    assert declared.retries == 2
    assert declared.backoff_base == 10.0
    assert declared.on_give_up is sample_jobs.record_give_up
    assert policy_for(sample_jobs.add.module_path).retries == 0
    assert policy_for("tests.jobs.sample_jobs.nothing_here") is DEFAULT_POLICY
