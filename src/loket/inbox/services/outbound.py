"""reply() and deliver(): the one outbound path.

A reply is stored ``queued`` together with its send task in one transaction. A worker runs
``deliver()``: it marks the message ``sending``, hands it to the channel's connector, and records
``sent`` with the provider's id, or retries a transient error with backoff, or stores ``failed``
with the provider's reason. Provider status callbacks then move it to delivered/read
(loket.inbox.services.ingest.apply_status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from loket import events
from loket.events import Actor
from loket.inbox import ports, tasks
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    AuthorType,
    ContactIdentity,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.sanitize import sanitize_html
from loket.inbox.services import media, templates, windows
from loket.jobs.policy import RetryLater
from loket.tenancy.models import Membership

log = logging.getLogger(__name__)

_UNSENT = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


@dataclass(frozen=True)
class OutgoingFile:
    """A file an agent attaches to a reply or note."""

    filename: str
    content_type: str
    content: bytes


def reply(
    conversation: Conversation,
    *,
    author: Membership | None,
    text: str,
    html: str = "",
    kind: str = MessageKind.MESSAGE,
    author_type: str | None = None,
    attachments: Sequence[OutgoingFile] = (),
    data: dict | None = None,
    template: templates.Filled | None = None,
    event_actor: Actor | None = None,
    on_stored: Callable[[Message], None] | None = None,
) -> Message:
    """Store an agent's (or bot's) reply or internal note; a reply is queued for sending.
    ``data``: channel-specific details the connector reads when sending (e.g. an email's
    ``{"email": {"cc": [...], "bcc": [...]}}``). ``template``: a filled message template (its
    text is the reply's). ``event_actor``: who the event names when it is not the author (a
    rule, so it does not trigger itself). ``on_stored``: called with the stored message in the
    same transaction (the composer's suggestion feedback). A reply the channel's reply window
    does not allow is refused with a ValueError that says why, before anything is stored."""
    if template is not None:
        if template.template.channel_id != conversation.channel_id:
            raise ValueError(_("That template belongs to another channel."))
        text, data = template.text, {**(data or {}), **template.as_data()}
    text = (text or "").strip()
    if not text and not html and not attachments:
        raise ValueError(_("a message needs text"))
    if kind not in (MessageKind.MESSAGE, MessageKind.NOTE):
        raise ValueError(f"cannot reply with a {kind!r}")
    author_type = author_type or (AuthorType.MEMBER if author else AuthorType.SYSTEM)
    if kind == MessageKind.MESSAGE:
        windows.check_reply(conversation, template=template is not None)

    with transaction.atomic():
        now = timezone.now()
        is_reply = kind == MessageKind.MESSAGE
        message = Message.objects.create(
            workspace_id=conversation.workspace_id,
            conversation=conversation,
            channel_id=conversation.channel_id,
            direction=Direction.OUTBOUND,
            kind=kind,
            author_type=author_type,
            author_member=author,
            text=text,
            html=sanitize_html(html) if html else "",
            status=DeliveryStatus.QUEUED if is_reply else "",
            data=data or {},
            created_at=now,
            status_changed_at=now if is_reply else None,
        )
        for upload in attachments:
            stored = media.store_content(
                Attachment(
                    workspace_id=conversation.workspace_id,
                    message=message,
                    filename=media.safe_filename(upload.filename),
                    content_type=upload.content_type or "application/octet-stream",
                ),
                upload.content,
            )
            if stored.status != AttachmentStatus.STORED:
                raise ValueError(f"{stored.filename}: {stored.error}")
        if is_reply:
            changes = {"last_message_at": now, "last_outbound_at": now, "waiting_since": None}
            if author_type == AuthorType.MEMBER:
                # Decided by the row, not our copy: of two concurrent first replies, one counts.
                changes["first_response_at"] = Coalesce(F("first_response_at"), Value(now))
            Conversation.objects.filter(pk=conversation.pk).update(**changes)
            conversation.refresh_from_db(fields=list(changes))
            tasks.send_message.enqueue(message.pk)
        if on_stored is not None:
            on_stored(message)
        events.emit(
            events.MessageCreated(
                conversation.workspace_id,
                event_actor or Actor(author_type, author.pk if author else None),
                conversation_id=conversation.pk,
                message_id=message.pk,
                kind=message.kind,
                direction=message.direction,
            )
        )
    return message


def set_delivery_status(
    message_id: int,
    status: str,
    *,
    only_from,
    at=None,
    known: Message | None = None,
    **fields,
) -> bool:
    """Move a message to ``status`` if it is in one of ``only_from`` (one conditional UPDATE, so
    concurrent reports cannot move it backwards) and announce it after commit. ``known``: the
    message with its workspace and conversation already loaded, to skip a query."""
    with transaction.atomic():
        moved = Message.objects.filter(pk=message_id, status__in=only_from).update(
            status=status, status_changed_at=at or timezone.now(), **fields
        )
        if moved:
            message = known or Message.objects.only("workspace_id", "conversation_id").get(
                pk=message_id
            )
            events.emit(
                events.MessageStatusChanged(
                    message.workspace_id,
                    Actor.system(),
                    conversation_id=message.conversation_id,
                    message_id=message_id,
                    status=status,
                    error=fields.get("error", ""),
                )
            )
    return bool(moved)


def deliver(message_id: int) -> None:
    """Send one queued message through its channel's connector (run by a worker)."""
    message = (
        Message.objects.select_related("channel", "conversation__contact")
        .filter(pk=message_id, kind=MessageKind.MESSAGE, direction=Direction.OUTBOUND)
        .first()
    )
    if message is None or message.status not in _UNSENT:
        return  # already sent, failed or gone: a retried or recovered task is a no-op
    claimed = Message.objects.filter(pk=message_id, status__in=_UNSENT).update(
        status=DeliveryStatus.SENDING, send_attempts=F("send_attempts") + 1
    )
    if not claimed:
        return  # another run finished it in the meantime
    connector = ports.connector_for(message.channel.kind)
    try:
        result = connector.send(message.channel, message)
    except ports.PermanentSendError as exc:
        mark_failed(message_id, exc.reason)
        return
    except ports.TransientSendError as exc:
        Message.objects.filter(pk=message_id, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.QUEUED, error=f"Retrying: {exc.reason}"[:2000]
        )
        raise RetryLater(exc.reason, exc.retry_after) from exc
    _record_sent(message_id, result)


def keep_on_message(message: Message, key: str, value) -> None:
    """Keep a connector's fact about a send in ``message.data[key]`` (e.g. the ids of the parts
    already delivered, so a retry sends only the rest): merged into the row under its lock, so
    nothing else written to ``data`` meanwhile is lost; ``message.data`` follows."""
    with transaction.atomic():
        row = Message.objects.select_for_update().only("data").get(pk=message.pk)
        data = {**(row.data or {}), key: value}
        Message.objects.filter(pk=message.pk).update(data=data)
    message.data = data


def recipient_id(message: Message) -> str | None:
    """The customer's id on the message's channel (what a connector addresses the reply to)."""
    return (
        ContactIdentity.objects.filter(
            contact_id=message.conversation.contact_id, channel_id=message.channel_id
        )
        .values_list("external_id", flat=True)
        .first()
    )


def _record_sent(message_id: int, result: ports.SendResult) -> None:
    """The provider has the message: record that, retrying only the database write, since a
    failure here would otherwise retry the task and send the message again."""
    for attempt in range(3):
        try:
            set_delivery_status(
                message_id,
                DeliveryStatus.SENT,
                only_from=_UNSENT,
                external_id=result.external_id or None,
                sent_at=result.sent_at or timezone.now(),
                error=result.warning[:2000],
            )
            return
        except DatabaseError:
            if attempt == 2:
                raise  # the task is retried: at-least-once, receivers drop repeats by id
            log.warning("recording message %s as sent failed; trying again", message_id)
            time.sleep(0.5 * (attempt + 1))


def mark_failed(message_id: int, reason: str) -> bool:
    return set_delivery_status(
        message_id,
        DeliveryStatus.FAILED,
        only_from=_UNSENT,
        error=(reason or "sending failed")[:2000],
    )


def retry(message: Message) -> Message:
    """An agent asks to send a failed message again."""
    if message.status != DeliveryStatus.FAILED:
        raise ValueError(_("only a failed message can be retried"))
    with transaction.atomic():
        if set_delivery_status(
            message.pk, DeliveryStatus.QUEUED, only_from=(DeliveryStatus.FAILED,), error=""
        ):
            tasks.send_message.enqueue(message.pk)
    message.refresh_from_db()
    return message
