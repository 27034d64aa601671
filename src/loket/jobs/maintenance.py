from __future__ import annotations

from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from loket.jobs.models import WorkerHeartbeat
from loket.jobs.worker import db_now_minus

KEEP_SUCCESSFUL_DAYS = 3
KEEP_FAILED_DAYS = 30


def prune_finished_tasks() -> int:
    """Finished task rows are history; keep failures longer so operators can look at them."""
    deleted, _ = DBTaskResult.objects.filter(
        status=TaskResultStatus.SUCCESSFUL,
        finished_at__lt=db_now_minus(KEEP_SUCCESSFUL_DAYS * 86400),
    ).delete()
    failed, _ = DBTaskResult.objects.filter(
        status=TaskResultStatus.FAILED, finished_at__lt=db_now_minus(KEEP_FAILED_DAYS * 86400)
    ).delete()
    WorkerHeartbeat.objects.filter(seen_at__lt=db_now_minus(86400)).delete()
    return deleted + failed
