"""Background jobs of the inbox. Thin: each calls one service function."""

from __future__ import annotations

from loket.jobs.policy import job


def _send_gave_up(exc: BaseException, message_id: int) -> None:
    from loket.inbox.services import outbound

    outbound.mark_failed(message_id, getattr(exc, "reason", None) or str(exc))


def _download_gave_up(exc: BaseException, attachment_id: int) -> None:
    from loket.inbox.services import media

    media.mark_download_failed(getattr(exc, "reason", None) or str(exc), attachment_id)


@job(
    retries=8,
    backoff_base=2.0,
    backoff_cap=900.0,
    retry_on=(Exception,),  # a connector bug or odd network error is worth another try too
    on_give_up=_send_gave_up,
    priority=10,
)
def send_message(message_id: int) -> None:
    from loket.inbox.services import outbound

    outbound.deliver(message_id)


@job(retries=6, backoff_base=5.0, on_give_up=_download_gave_up)
def fetch_attachment(attachment_id: int) -> None:
    from loket.inbox.services import media

    media.download(attachment_id)


@job(retries=5, backoff_base=10.0)
def fill_contact_profile(contact_id: int, channel_id: int, external_id: str) -> None:
    from loket.inbox.services import contacts

    contacts.fill_profile(contact_id, channel_id, external_id)


@job(retries=10, backoff_base=5.0, backoff_cap=1800.0)
def replay_inbound_event(event_id: int) -> None:
    from loket.inbox.services import journal

    journal.replay(event_id)


@job(every_seconds=30)
def wake_snoozed_conversations() -> int:
    from loket.inbox.services import conversations

    return conversations.wake_due_snoozed()


@job(every_seconds=6 * 3600)
def prune_finished_tasks() -> int:
    from loket.jobs.maintenance import prune_finished_tasks as prune

    return prune()
