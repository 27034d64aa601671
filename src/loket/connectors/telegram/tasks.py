"""Background work of the Telegram channel: taking a keyboard away once a button was tapped.

An inline keyboard stays under the bot's message after the customer taps one of its buttons, so
old choices could be tapped again and the chat looks unfinished. The tap is stored as a message
whose ``data["telegram_tapped"]`` names the message that showed the keyboard (updates.py);
``enqueue_jobs`` (in ``settings.LOKET_EVENT_ENQUEUERS``) enqueues ``remove_keyboard`` in the
transaction that stores it, and the job calls ``editMessageReplyMarkup`` with the chat and message
id and no ``reply_markup``, which removes the keyboard. Never inside the webhook's request.

Telegram refusing (a message too old to edit, a keyboard already gone: "message is not
modified", the bot blocked) is logged and the job ends; no answer at all, 429 and 5xx are tried a
few more times, then logged by the worker. Nothing here can fail the ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextvars import ContextVar

from loket import events
from loket.connectors.telegram.client import BotApi, TelegramError, TelegramUnreachable
from loket.connectors.telegram.updates import TAPPED_KEY
from loket.inbox.items import InboundItem, InboundMessage
from loket.inbox.models import Channel, Direction, Message
from loket.jobs.policy import RetryLater, job

log = logging.getLogger(__name__)

KIND = "telegram"

# The external ids of taps the connector has just parsed in this thread, about to be stored. The
# enqueuer runs for every message of every channel; only while a tap is expected does it read the
# stored message (one query by primary key), so any other message costs it nothing. Parsing and
# storing a delivery happen in one call on one thread (loket.inbox.services.journal), and a
# Telegram delivery holds one Update, so the next inbound message stored here is the tap, or the
# tap was a duplicate and is not stored: either way the expectation is used up then.
_expected: ContextVar[frozenset[str]] = ContextVar("loket_telegram_taps", default=frozenset())


def expect_taps(items: Iterable[InboundItem]) -> None:
    """Called by the connector with what it parsed (replacing what an earlier delivery left)."""
    _expected.set(
        frozenset(
            item.external_id
            for item in items
            if isinstance(item, InboundMessage) and TAPPED_KEY in item.data
        )
    )


def enqueue_jobs(event: events.Event) -> None:
    """Enqueuer (settings.LOKET_EVENT_ENQUEUERS): a tapped button's message gets the job that
    removes the keyboard it was tapped on, stored in the same transaction."""
    if not isinstance(event, events.MessageCreated) or event.direction != Direction.INBOUND:
        return
    expected = _expected.get()
    if not expected:
        return
    found = (
        Message.objects.filter(pk=event.message_id, channel__kind=KIND)
        .values_list("channel_id", "external_id", f"data__{TAPPED_KEY}")
        .first()
    )
    if found is None or found[1] not in expected:
        _expected.set(frozenset())  # the tap was not stored (a redelivery): nothing to wait for
        return
    channel_id, external_id, tapped = found
    _expected.set(expected - {external_id})
    if not isinstance(tapped, dict):
        return
    chat_id, message_id = tapped.get("chat_id"), tapped.get("message_id")
    if isinstance(chat_id, int) and isinstance(message_id, int):
        remove_keyboard.enqueue(channel_id, chat_id, message_id)


@job(retries=3, backoff_base=10.0, backoff_cap=300.0)
def remove_keyboard(channel_id: int, chat_id: int, message_id: int) -> None:
    """Take the inline keyboard away from one of the bot's messages (``editMessageReplyMarkup``
    without a ``reply_markup``)."""
    channel = Channel.objects.filter(pk=channel_id, kind=KIND, is_active=True).first()
    token = (channel.secrets or {}).get("bot_token", "") if channel is not None else ""
    if not token:
        log.info("Telegram channel %s is gone or has no token: keyboard left", channel_id)
        return
    try:
        BotApi(token).call("editMessageReplyMarkup", {"chat_id": chat_id, "message_id": message_id})
    except TelegramUnreachable as exc:
        raise RetryLater(str(exc)) from None
    except TelegramError as exc:
        if exc.transient:
            raise RetryLater(
                f"Telegram answered {exc.status}: {exc.description}", exc.retry_after
            ) from None
        # Already without a keyboard (tapped twice), too old to edit, deleted, bot blocked.
        quiet = "message is not modified" in exc.description.lower()
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "could not remove the keyboard of Telegram message %s:%s (channel %s): %s",
            chat_id,
            message_id,
            channel_id,
            exc,
        )
