"""Background jobs of automation (loket.jobs discovers ``tasks`` modules of installed apps)."""

from loket.automation.assignment import assign_waiting_conversations  # noqa: F401 - periodic job
from loket.jobs.policy import job


@job(retries=3, backoff_base=10.0)
def answer_automatically(message_id: int) -> None:
    from loket.automation import autoreplies

    autoreplies.answer(message_id)


@job(retries=3, backoff_base=10.0)
def run_rules(occasion: dict) -> None:
    from loket.automation.rules import engine

    engine.run(engine.Occasion.from_job_arguments(dict(occasion)))


@job(every_seconds=60.0)
def run_timed_rules() -> None:
    from loket.automation.rules import engine

    engine.run_timed()


@job(retries=6, backoff_base=30.0)
def post_rule_webhook(url: str, conversation_id: int, rule_id: int | None, at: str) -> None:
    from loket.automation.rules import webhooks

    webhooks.post(url, conversation_id, rule_id, at)


@job(every_seconds=30)
def check_sla_due_times() -> int:
    from loket.automation import sla

    return sla.check_due()


@job(retries=3, backoff_base=10.0)
def recompute_sla_policy(policy_id: int) -> int:
    from loket.automation import sla

    return sla.recompute_policy(policy_id)


@job(every_seconds=300.0)
def resolve_pending_conversations() -> int:
    from loket.automation import autoresolve

    return autoresolve.run()
