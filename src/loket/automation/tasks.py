"""Background jobs of automation (loket.jobs discovers ``tasks`` modules of installed apps)."""

from loket.automation.assignment import assign_waiting_conversations  # noqa: F401 - periodic job
from loket.jobs.policy import job


@job(retries=3, backoff_base=10.0)
def answer_automatically(message_id: int) -> None:
    from loket.automation import autoreplies

    autoreplies.answer(message_id)
