"""Background jobs of the reports (loket.jobs discovers ``tasks`` modules)."""

from loket.jobs.policy import RetryLater, job


@job(every_seconds=30.0, priority=-10)
def roll_up_reports() -> None:
    """Facts and daily sums of conversations with new messages (loket.reports.rollups)."""
    from loket.reports import rollups

    rollups.catch_up()


@job(every_seconds=60.0, priority=-5)
def send_due_report_schedules() -> None:
    """One send job per scheduled report whose day or week has ended and whose hour has come
    (loket.reports.schedules)."""
    from loket.reports import schedules

    schedules.enqueue_due()


def _schedule_gave_up(exc: BaseException, schedule_id: int, period: str) -> None:
    from django.db.models import Q

    from loket.reports.models import ReportSchedule

    # The claim was released for the retries; the last attempt's failure stands as sent (the
    # page shows its error), so the next tick does not start over with this period.
    unsent = Q(last_period_sent__isnull=True) | Q(last_period_sent__lt=period)
    ReportSchedule.objects.filter(unsent, pk=schedule_id).update(last_period_sent=period)


@job(retries=3, backoff_base=60.0, on_give_up=_schedule_gave_up)
def send_report_schedule(schedule_id: int, period: str) -> None:
    """E-mail one schedule's period to its recipients, at most once (the period is claimed)."""
    import datetime as dt

    from loket.reports import schedules

    try:
        schedules.send(schedule_id, dt.date.fromisoformat(period))
    except schedules.SendFailed as exc:  # not one e-mail went: the claim is released
        raise RetryLater(str(exc)) from exc
