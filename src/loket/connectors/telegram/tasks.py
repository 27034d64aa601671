"""Background work of the Telegram channel: taking a keyboard away once a button was tapped.

An inline keyboard stays under the bot's message after the customer taps one of its buttons, so
old choices could be tapped again and the chat looks unfinished. The tap is stored as a message
whose ``data["telegram_tapped"]`` names the message that showed the keyboard (updates.py); the
connector gives it ``remove_keyboard`` as a follow-up (``InboundMessage.follow_up``), which the
ingest core enqueues in the transaction that stores the tap — and not for a redelivered one.
The job calls ``editMessageReplyMarkup`` with the chat and message id and no ``reply_markup``,
which removes the keyboard. Never inside the webhook's request.

Telegram refusing (a message too old to edit, a keyboard already gone: "message is not
modified", the bot blocked) is logged and the job ends; no answer at all, 429 and 5xx are tried a
few more times, then logged by the worker. Nothing here can fail the ingest.
"""

from __future__ import annotations

import dataclasses
import logging

from loket.connectors.telegram.client import BotApi, TelegramError, TelegramUnreachable
from loket.connectors.telegram.updates import TAPPED_KEY
from loket.inbox.items import InboundItem, InboundMessage
from loket.inbox.models import Channel
from loket.jobs.policy import RetryLater, job

log = logging.getLogger(__name__)

KIND = "telegram"


def with_keyboard_removal(channel: Channel, item: InboundItem) -> InboundItem:
    """A tap, with the job that takes its keyboard away once it is stored; anything else as is."""
    if not isinstance(item, InboundMessage):
        return item
    tapped = item.data.get(TAPPED_KEY)
    if not isinstance(tapped, dict):
        return item
    chat_id, message_id = tapped.get("chat_id"), tapped.get("message_id")
    if not (isinstance(chat_id, int) and isinstance(message_id, int)):
        return item
    job_args = (channel.pk, chat_id, message_id)
    return dataclasses.replace(item, follow_up=(*item.follow_up, (remove_keyboard, job_args)))


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
