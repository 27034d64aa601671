"""Background jobs of the live-chat channel."""

from __future__ import annotations

from loket.jobs.policy import job


@job(retries=8, backoff_base=5.0, backoff_cap=900.0)
def email_reply(message_id: int) -> str:
    from loket.connectors.livechat import continuity

    return continuity.send_email_reply(message_id)
