"""Background jobs of the reports (loket.jobs discovers ``tasks`` modules)."""

from loket.jobs.policy import job


@job(every_seconds=30.0, priority=-10)
def roll_up_reports() -> None:
    """Facts and daily sums of conversations with new messages (loket.reports.rollups)."""
    from loket.reports import rollups

    rollups.catch_up()
