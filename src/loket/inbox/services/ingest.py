"""receive(): the one ingest path. Every connector hands its normalised items here.

In the caller's transaction (or its own): dedupe (the unique (channel, external_id) constraint
with ON CONFLICT DO NOTHING, not a look-up), resolve the contact, thread into a conversation,
store the message and its attachments, update the conversation and enqueue follow-up work.
Realtime events go out after commit.

A blocked contact's message (``Contact.blocked_at`` set) is stored with ``data["blocked"] = True``;
it changes no conversation's status (no reopening, no waking, no waiting clock) and a new
conversation for it starts resolved, so it stays out of the open views and notifies nobody.
(Events carry no marker yet; subscribers can check the message's data.)
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from loket import events
from loket.db import rows
from loket.events import Actor
from loket.inbox import ports, tasks
from loket.inbox.items import (
    Ignored,
    InboundItem,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    Reaction,
    StatusUpdate,
)
from loket.inbox.models import (
    DELIVERY_RANK,
    Attachment,
    AttachmentStatus,
    AuthorType,
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.sanitize import sanitize_html
from loket.inbox.services import media, message_changes, outbound, threads

log = logging.getLogger(__name__)

# Conversations a new customer message continues instead of starting a new one.
_ACTIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED)


@dataclass(frozen=True)
class ReceiveResult:
    # created | duplicate | ignored | status_applied | status_stale | status_unmatched
    # | updated (a reaction, edit or deletion) | target_unknown (of a message not in Loket)
    outcome: str
    message_id: int | None = None
    conversation_id: int | None = None

    @property
    def needs_retry(self) -> bool:
        # A status for a message whose send has not recorded its provider id yet.
        return self.outcome == "status_unmatched"


def receive(channel: Channel, item: InboundItem) -> ReceiveResult:
    if isinstance(item, InboundMessage):
        return _receive_message(channel, item)
    if isinstance(item, StatusUpdate):
        return apply_status(channel, item)
    if isinstance(item, Reaction):
        return message_changes.apply_reaction(channel, item)
    if isinstance(item, MessageEdit):
        return message_changes.apply_edit(channel, item)
    if isinstance(item, MessageDeletion):
        return message_changes.apply_deletion(channel, item)
    if isinstance(item, Ignored):
        return ReceiveResult("ignored")
    raise TypeError(f"not an inbound item: {item!r}")


def _receive_message(channel: Channel, item: InboundMessage) -> ReceiveResult:
    if not item.external_id:
        raise ValueError("an inbound message needs the sender's message id")
    # No savepoint of its own: duplicates are caught by ON CONFLICT, not by exceptions; anything
    # unexpected rolls back the caller's transaction (the journal then keeps the delivery as a
    # failed row, to be replayed).
    with transaction.atomic(savepoint=False):
        return _store_message(channel, item)


# The hot path below uses loket.db.rows (SQL built once, no ORM compiler) for the statements
# every message runs; rare branches (new contact, new conversation) use the ORM.
def _store_message(channel: Channel, item: InboundMessage) -> ReceiveResult:
    with connection.cursor() as cursor:  # one cursor for the statements every message runs
        return _store_message_with(cursor, channel, item)


def _store_message_with(cursor, channel: Channel, item: InboundMessage) -> ReceiveResult:
    now = timezone.now()
    message = _message_values(channel, item, now)
    if cursor.db.vendor == "postgresql" and item.thread is None and not item.reply_to:
        # Most messages continue the sender's open conversation: one statement finds the sender
        # and, when that is the case, stores the message and updates the conversation.
        row = _continue_known_sender(cursor, channel, item, now, message)
        if row[_CONTINUED]:
            contact_id, conversation_id = row[0], row[7]
            _fill_in_contact(contact_id, item.contact, row[3:7])
            if row[_MESSAGE_ID] is None:
                return ReceiveResult("duplicate")
            return _stored(
                channel, item, contact_id, conversation_id, row[_MESSAGE_ID],
                previous=row[_PREVIOUS_STATUS], created=False, blocked=False,
            )  # fmt: skip
        found = _sender_from(row, channel, item, now)
    else:
        found = _sender(cursor, channel, item, now)
    if found is None:
        return ReceiveResult("duplicate")
    contact_id, new_contact, latest, blocked = found
    data = {**item.data, "blocked": True} if blocked else item.data
    if item.reply_to:
        data = {**data, "reply_to": message_changes.reply_context(channel, item.reply_to)}
    if item.thread is not None:
        conversation = _thread_by_hints(
            channel, contact_id, item, now, new_contact=new_contact, blocked=blocked
        )
        if conversation is not None:
            data = {**data, "thread": conversation[3]}
    else:
        conversation = _thread(
            channel, contact_id, item, now, latest, new_contact=new_contact, blocked=blocked
        )
    if conversation is None:
        return ReceiveResult("duplicate")
    conversation_id, status, created = conversation[:3]

    values = {
        **message,
        "data": data,
        "conversation_id": conversation_id,
        "author_contact_id": contact_id,
    }
    if cursor.db.vendor == "postgresql":
        stored = _insert_and_touch(cursor, values, conversation_id, now, blocked=blocked)
        if stored is None:
            return ReceiveResult("duplicate")
        message_id, previous = stored
    else:
        message_id = rows.insert(Message, values, **_MESSAGE_CONFLICT, cursor=cursor)
        if message_id is None:
            return ReceiveResult("duplicate")
        previous = _touch_conversation(cursor, conversation_id, now, status, blocked=blocked)
    return _stored(
        channel, item, contact_id, conversation_id, message_id,
        previous=previous, created=created, blocked=blocked,
    )  # fmt: skip


def _message_values(channel: Channel, item: InboundMessage, now: dt.datetime) -> dict:
    """The new message's columns but its conversation and author (``data``: the item's own)."""
    return {
        "workspace_id": channel.workspace_id,
        "channel_id": channel.pk,
        "direction": Direction.INBOUND,
        "kind": MessageKind.MESSAGE,
        "author_type": AuthorType.CONTACT,
        "text": item.text,
        "html": sanitize_html(item.html) if item.html else "",
        "external_id": item.external_id,
        "status": "",
        "error": "",
        "send_attempts": 0,
        "data": item.data,
        "sent_at": item.sent_at,
        "created_at": now,
    }


def _stored(
    channel: Channel,
    item: InboundMessage,
    contact_id: int,
    conversation_id: int,
    message_id: int,
    *,
    previous: str | None,
    created: bool,
    blocked: bool,
) -> ReceiveResult:
    """What follows a stored message: its attachments, follow-up jobs and events."""
    if item.attachments:
        _store_attachments(channel.workspace_id, message_id, item)
    for job, args in item.follow_up:
        job.enqueue(*args)
    actor = Actor(AuthorType.CONTACT, contact_id)
    if created:
        events.emit(events.ConversationCreated(channel.workspace_id, actor, conversation_id))
    elif previous not in (ConversationStatus.OPEN, ConversationStatus.CLOSED) and not blocked:
        events.emit(
            events.ConversationUpdated(
                channel.workspace_id, actor, conversation_id, {"status": ConversationStatus.OPEN}
            )
        )
    events.emit(
        events.MessageCreated(
            channel.workspace_id,
            actor,
            conversation_id=conversation_id,
            message_id=message_id,
            kind=MessageKind.MESSAGE,
            direction=Direction.INBOUND,
        )
    )
    return ReceiveResult("created", message_id, conversation_id)


# A redelivered message (same provider id on the channel, inbound) is a no-op.
_MESSAGE_CONFLICT = {
    "on_conflict_do_nothing": ("channel", "direction", "external_id"),
    "conflict_where": "external_id IS NOT NULL",
}


def _message_exists(channel: Channel, external_id: str) -> bool:
    return Message.objects.filter(
        channel=channel, direction=Direction.INBOUND, external_id=external_id
    ).exists()


# The sender's contact (whether blocked, what we know) and their latest conversation on this
# channel, in one round trip; for a sender not known here (no identity: all NULL), whether the
# message is already stored (a redelivery whose sender id changed), so no contact is created.
_SENDER_SQL = """
    SELECT c.id, c.merged_into_id, c.blocked_at IS NOT NULL, c.name, c.email, c.phone, c.locale,
           v.id, v.status, v.resolved_at >= %s,
           CASE WHEN i.id IS NULL THEN EXISTS (
               SELECT 1 FROM inbox_message m
               WHERE m.channel_id = %s AND m.direction = %s AND m.external_id = %s
           ) END
    FROM (SELECT 1) AS one
    LEFT JOIN inbox_contactidentity i ON i.channel_id = %s AND i.external_id = %s
    LEFT JOIN inbox_contact c ON c.id = i.contact_id
    LEFT JOIN inbox_conversation v ON v.id = (
        SELECT w.id FROM inbox_conversation w
        WHERE w.contact_id = i.contact_id AND w.channel_id = i.channel_id
        ORDER BY w.last_message_at DESC, w.id DESC LIMIT 1
    )
"""


def _reopen_after(now: dt.datetime, db=None):
    cutoff = now - dt.timedelta(days=settings.LOKET_REOPEN_WITHIN_DAYS)
    return rows.db_value(Conversation, "resolved_at", cutoff, db)


def _latest(conversation_id, status, recently_resolved):
    """(id, status, continues) or None: whether a new customer message continues it."""
    if conversation_id is None:
        return None
    continues = status in _ACTIVE or (status == ConversationStatus.RESOLVED and recently_resolved)
    return conversation_id, status, bool(continues)


def _sender_params(channel: Channel, item: InboundMessage, now: dt.datetime, db) -> list:
    return [
        _reopen_after(now, db),
        *(channel.pk, Direction.INBOUND, item.external_id),
        *(channel.pk, item.contact.external_id),
    ]


def _sender(cursor, channel: Channel, item: InboundMessage, now: dt.datetime):
    """(contact id, whether it was created just now, latest conversation, whether blocked) for
    the sender; None when the message is a duplicate."""
    cursor.execute(_SENDER_SQL, _sender_params(channel, item, now, cursor.db))
    return _sender_from(cursor.fetchone(), channel, item, now)


def _sender_from(row, channel: Channel, item: InboundMessage, now: dt.datetime):
    """``_sender()`` from a row of ``_SENDER_SQL``."""
    sender = item.contact
    if row[0] is None:
        # A redelivered message whose sender id changed must not leave an empty contact behind.
        if row[10]:
            return None
        contact_id, created = _create_contact(channel, sender)
        if created:
            return contact_id, True, None, False
        # Another delivery created this sender a moment ago: nobody has blocked them yet.
        return contact_id, False, _latest_conversation(channel, contact_id, now), False
    contact_id, merged_into_id, blocked, *known = row[:7]
    latest = _latest(*row[7:10])
    if merged_into_id is not None:
        while merged_into_id is not None:
            contact_id, merged_into_id = Contact.objects.values_list("pk", "merged_into_id").get(
                pk=merged_into_id
            )
        *known, blocked_at = Contact.objects.values_list(
            "name", "email", "phone", "locale", "blocked_at"
        ).get(pk=contact_id)
        blocked = blocked_at is not None
        latest = _latest_conversation(channel, contact_id, now)
    _fill_in_contact(contact_id, sender, known)
    return contact_id, False, latest, bool(blocked)


def _fill_in_contact(contact_id: int, sender, known) -> None:
    """Fill in what we did not know; never overwrite what an agent may have corrected."""
    missing = {
        field: getattr(sender, field)[:limit]
        for (field, limit), current in zip(_CONTACT_FIELDS, known, strict=True)
        if getattr(sender, field) and not current
    }
    if missing:
        Contact.objects.filter(pk=contact_id).update(**missing)


_CONTACT_FIELDS = (("name", 200), ("email", 254), ("phone", 40), ("locale", 10))


def _create_contact(channel: Channel, sender) -> tuple[int, bool]:
    contact_id = rows.insert(
        Contact,
        rows.with_defaults(
            Contact,
            {
                "workspace_id": channel.workspace_id,
                **{field: getattr(sender, field)[:limit] for field, limit in _CONTACT_FIELDS},
            },
        ),
    )
    identity_id = rows.insert(
        ContactIdentity,
        {
            "workspace_id": channel.workspace_id,
            "contact_id": contact_id,
            "channel_id": channel.pk,
            "external_id": sender.external_id,
            "created_at": timezone.now(),
        },
        on_conflict_do_nothing=("channel", "external_id"),
    )
    if identity_id is not None:
        if not sender.name and ports.connector_for(channel.kind).capabilities.profiles:
            tasks.fill_contact_profile.enqueue(contact_id, channel.pk, sender.external_id)
        return contact_id, True
    # A concurrent delivery created this sender's identity first (ON CONFLICT waited for it to
    # commit): use that contact and drop ours.
    Contact.objects.filter(pk=contact_id).delete()
    winner = ContactIdentity.objects.values_list("contact_id", flat=True).get(
        channel=channel, external_id=sender.external_id
    )
    return winner, False


_LATEST_CONVERSATION_SQL = """
    SELECT id, status, resolved_at >= %s FROM inbox_conversation
    WHERE contact_id = %s AND channel_id = %s ORDER BY last_message_at DESC, id DESC LIMIT 1
"""


def _latest_conversation(channel: Channel, contact_id: int, now: dt.datetime):
    """The contact's latest conversation here as (id, status, continues), locked; or None."""
    lock = "FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            _LATEST_CONVERSATION_SQL + lock, [_reopen_after(now), contact_id, channel.pk]
        )
        row = cursor.fetchone()
    return _latest(*row) if row else None


def _thread(
    channel: Channel,
    contact_id: int,
    item: InboundMessage,
    now: dt.datetime,
    latest,
    *,
    new_contact: bool,
    blocked: bool = False,
):
    """(conversation id, status, created) for this message, or None when the message turns out
    to be a duplicate. A blocked sender's new conversation starts resolved."""
    if latest and latest[2]:
        return latest[0], latest[1], False
    if not new_contact:  # a contact created in this transaction is invisible to all others
        # Serialise new-conversation decisions per contact, then look again.
        Contact.objects.select_for_update().filter(pk=contact_id).values_list("pk").first()
        if _message_exists(channel, item.external_id):
            return None
        latest = _latest_conversation(channel, contact_id, now)
        if latest and latest[2]:
            return latest[0], latest[1], False
    return _new_conversation(channel, contact_id, item, now, blocked=blocked)


def _thread_by_hints(
    channel: Channel,
    contact_id: int,
    item: InboundMessage,
    now: dt.datetime,
    *,
    new_contact: bool,
    blocked: bool,
):
    """(conversation id, status, created, why) for a message with thread hints (email), or
    None when it turns out to be a duplicate. ``why`` is kept on the message."""
    match = threads.find(channel, contact_id, item.thread, now)
    if match and match.continues:
        return match.conversation_id, match.status, False, {"by": match.reason}
    if not new_contact:
        # Two deliveries of one mail must not start two conversations: serialise per contact.
        Contact.objects.select_for_update().filter(pk=contact_id).values_list("pk").first()
        if _message_exists(channel, item.external_id):
            return None
    why = {"by": "new"}
    if match:
        why = {"by": "new_after_previous", "previous": match.number, "matched": match.reason}
    return (*_new_conversation(channel, contact_id, item, now, blocked=blocked), why)


def _new_conversation(
    channel: Channel, contact_id: int, item: InboundMessage, now: dt.datetime, *, blocked: bool
):
    status = ConversationStatus.RESOLVED if blocked else ConversationStatus.OPEN
    values = {
        "workspace_id": channel.workspace_id,
        "channel_id": channel.pk,
        "contact_id": contact_id,
        "number": next_conversation_number(channel.workspace_id),
        "subject": item.subject[:255],
        "team_id": channel.default_team_id,
        "status": status,
        "created_at": now,
        "updated_at": now,
        "last_message_at": now,
        **({"resolved_at": now} if blocked else {}),
    }
    conversation_id = rows.insert(Conversation, rows.with_defaults(Conversation, values))
    return conversation_id, status, True


# A customer message makes its conversation open (waking a snoozed one, reopening a resolved
# one) and starts the waiting clock. Decided in the UPDATE itself, on the row as it is now, so an
# agent's concurrent change cannot leave a new message in a resolved conversation; a conversation
# closed meanwhile stays closed.
_TOUCH_SET = """
    last_message_at = %s, last_inbound_at = %s, updated_at = %s,
    waiting_since = COALESCE(waiting_since, %s),
    status = CASE WHEN status = 'closed' THEN status ELSE 'open' END,
    snoozed_until = CASE WHEN status = 'closed' THEN snoozed_until ELSE NULL END,
    resolved_at = CASE WHEN status = 'closed' THEN resolved_at ELSE NULL END
"""
# A blocked contact's message only moves the timestamps: no status change, no waiting clock.
_TOUCH_BLOCKED_SET = " last_message_at = %s, last_inbound_at = %s, updated_at = %s "
_TOUCH_SQL = "UPDATE inbox_conversation SET" + _TOUCH_SET + "WHERE id = %s"
_TOUCH_BLOCKED_SQL = "UPDATE inbox_conversation SET" + _TOUCH_BLOCKED_SET + "WHERE id = %s"

# The conversation ({conversation}: an SQL expression) locked and touched once the message is in.
_LOCK_AND_TOUCH = (
    " locked AS (SELECT id, status AS previous FROM inbox_conversation"  # noqa: S608 - fixed text
    " WHERE id = {conversation} AND EXISTS (SELECT 1 FROM inserted) FOR UPDATE),"
    " touched AS (UPDATE inbox_conversation SET" + _TOUCH_SET + "FROM locked"
    " WHERE inbox_conversation.id = locked.id RETURNING locked.previous)"
)

# PostgreSQL: the message insert and the conversation update in one round trip (a third of the
# statements every message runs); a duplicate inserts nothing and so touches nothing. Returns
# the new message's id and the status the conversation had under its lock.
_INSERT_AND_TOUCH_SQL = (
    "WITH inserted AS ({insert}),"  # noqa: S608 - fixed text, no input
    + _LOCK_AND_TOUCH
    + " SELECT (SELECT id FROM inserted), (SELECT previous FROM touched)"
)
_INSERT_AND_TOUCH_BLOCKED_SQL = (
    "WITH inserted AS ({insert}),"  # noqa: S608 - fixed text, no input
    " touched AS (UPDATE inbox_conversation SET" + _TOUCH_BLOCKED_SET + "WHERE id = %s"
    " AND EXISTS (SELECT 1 FROM inserted) RETURNING status)"
    " SELECT (SELECT id FROM inserted), (SELECT status FROM touched)"
)


# PostgreSQL, a message without thread hints or a quoted message: the sender (``_SENDER_SQL``'s
# columns) and, when the message continues their latest conversation (a known, unmerged and
# unblocked contact; the conversation open, pending, snoozed or recently resolved), the message
# insert and the conversation update of ``_INSERT_AND_TOUCH_SQL``, in one round trip. Whether it
# continued is a column of its own, so the decision is made once, here; otherwise nothing was
# written and the caller goes the general way with the sender row.
_CONTINUE_SQL = (
    "WITH sender AS ({sender}),"  # noqa: S608 - fixed text, no input
    " fits AS (SELECT sender.*, COALESCE(contact_id IS NOT NULL AND merged_into_id IS NULL"
    " AND NOT blocked AND (conversation_status IN ({active})"
    " OR (conversation_status = '{resolved}' AND recently_resolved)), FALSE) AS continued"
    " FROM sender),"
    " inserted AS ({insert}),"
    + _LOCK_AND_TOUCH
    + " SELECT fits.*, (SELECT id FROM inserted), (SELECT previous FROM touched) FROM fits"
)
_SENDER_COLUMNS = (
    "contact_id", "merged_into_id", "blocked", "name", "email", "phone", "locale",
    "conversation_id", "conversation_status", "recently_resolved", "already_stored",
)  # fmt: skip
_CONTINUED, _MESSAGE_ID, _PREVIOUS_STATUS = range(len(_SENDER_COLUMNS), len(_SENDER_COLUMNS) + 3)


@functools.cache
def _continue_sql(insert: str) -> str:
    columns = ", ".join(_SENDER_COLUMNS)
    return _CONTINUE_SQL.format(
        sender=f"SELECT * FROM ({_SENDER_SQL}) AS found ({columns})",  # noqa: S608
        active=", ".join(f"'{status}'" for status in _ACTIVE),
        resolved=ConversationStatus.RESOLVED,
        insert=insert,
        conversation="(SELECT conversation_id FROM fits)",
    )


def _continue_known_sender(
    cursor, channel: Channel, item: InboundMessage, now: dt.datetime, message: dict
):
    """The row of ``_CONTINUE_SQL``: the sender's 11 columns, whether the message continued
    their conversation, its new id (None: a duplicate) and the conversation's previous status.
    ``message``: its columns but the conversation and author (``_message_values()``)."""
    insert, params = rows.insert_statement(
        Message,
        message,
        cursor.db,
        **_MESSAGE_CONFLICT,
        computed={"conversation_id": "conversation_id", "author_contact_id": "contact_id"},
        source="FROM fits WHERE continued",
    )
    at = rows.db_value(Conversation, "last_message_at", now, cursor.db)
    cursor.execute(
        _continue_sql(insert),
        [*_sender_params(channel, item, now, cursor.db), *params, at, at, at, at],
    )
    return cursor.fetchone()


def _insert_and_touch(
    cursor, values: dict, conversation_id: int, now: dt.datetime, *, blocked: bool
):
    """PostgreSQL: (message id, previous status), or None for a duplicate."""
    insert, params = rows.insert_statement(Message, values, cursor.db, **_MESSAGE_CONFLICT)
    at = rows.db_value(Conversation, "last_message_at", now, cursor.db)
    if blocked:
        sql = _INSERT_AND_TOUCH_BLOCKED_SQL.format(insert=insert)
        cursor.execute(sql, [*params, at, at, at, conversation_id])
    else:
        sql = _INSERT_AND_TOUCH_SQL.format(insert=insert, conversation="%s")
        cursor.execute(sql, [*params, conversation_id, at, at, at, at])
    message_id, previous = cursor.fetchone()
    return None if message_id is None else (message_id, previous)


def _touch_conversation(
    cursor, conversation_id: int, now: dt.datetime, read_status: str, *, blocked: bool = False
) -> str:
    """SQLite: apply a customer message to its conversation; returns the status it had before.
    This transaction began with the write lock (BEGIN IMMEDIATE), so the status read earlier in
    it is still the row's."""
    at = rows.db_value(Conversation, "last_message_at", now, cursor.db)
    if blocked:
        cursor.execute(_TOUCH_BLOCKED_SQL, [at, at, at, conversation_id])
    else:
        cursor.execute(_TOUCH_SQL, [at, at, at, at, conversation_id])
    return read_status


def next_conversation_number(workspace_id: int) -> int:
    """The next number in the workspace; one statement, and the row lock lasts until commit so
    numbers never repeat."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tenancy_workspace SET next_conversation_number = next_conversation_number + 1"
            " WHERE id = %s RETURNING next_conversation_number - 1",
            [workspace_id],
        )
        return cursor.fetchone()[0]


def _store_attachments(workspace_id: int, message_id: int, item: InboundMessage) -> None:
    for attachment in item.attachments:
        stored = Attachment(
            workspace_id=workspace_id,
            message_id=message_id,
            filename=media.safe_filename(attachment.filename),
            content_type=attachment.content_type[:127] or "application/octet-stream",
            content_id=attachment.content_id[:255],
            inline=attachment.inline,
        )
        if attachment.content is not None:
            media.store_content(stored, attachment.content)
        else:
            stored.source_url = attachment.url
            stored.source_ref = attachment.media_ref[:255]
            stored.status = AttachmentStatus.PENDING
            stored.save()
            tasks.fetch_attachment.enqueue(stored.pk)


def apply_status(channel: Channel, update: StatusUpdate) -> ReceiveResult:
    """Move a sent message's delivery status forward; never backwards."""
    if update.status not in DELIVERY_RANK:
        return ReceiveResult("ignored")
    message = (
        Message.objects.filter(
            channel=channel, direction=Direction.OUTBOUND, external_id=update.external_id
        )
        .only("pk", "conversation_id", "status", "workspace_id")
        .first()
    )
    if message is None:
        return ReceiveResult("status_unmatched")
    rank = DELIVERY_RANK[update.status]
    if update.status == DeliveryStatus.FAILED:
        # Possible until delivery: a provider may report a sent message as undeliverable.
        earlier = [s for s, r in DELIVERY_RANK.items() if r <= rank and s != update.status]
    else:
        # A late "sent" must not hide a reported failure; a delivery or read report proves
        # the failure report wrong.
        failed_rank = DELIVERY_RANK[DeliveryStatus.FAILED]
        earlier = [
            s
            for s, r in DELIVERY_RANK.items()
            if (r < rank and s != DeliveryStatus.FAILED)
            or (s == DeliveryStatus.FAILED and rank > failed_rank)
        ]
    error = ""
    if update.status == DeliveryStatus.FAILED:
        error = update.error or "the provider reported the message as failed"
    moved = outbound.set_delivery_status(
        message.pk,
        update.status,
        only_from=earlier,
        at=update.at,
        known=message,
        **({"error": error} if error else {}),
    )
    if not moved:
        return ReceiveResult("status_stale", message.pk, message.conversation_id)
    return ReceiveResult("status_applied", message.pk, message.conversation_id)
