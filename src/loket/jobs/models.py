"""State the task workers share through the database (times are the database's)."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """A live worker says so every few seconds; the sweeper requeues tasks of silent ones."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.worker_id


class PeriodicSchedule(models.Model):
    """When a periodic job is next due; claimed with a conditional UPDATE so one worker runs it."""

    name = models.CharField(max_length=200, primary_key=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
