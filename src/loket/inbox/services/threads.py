"""Email threading: which conversation a message with :class:`ThreadHints` continues, and why.

Tried in this order, and recorded on the message (``data["thread"]``) so an agent can see why
a mail landed where it did:

1. ``references``: In-Reply-To / References name a message Loket stored or sent on this channel;
2. ``reply_address``: the mail was sent to the conversation's own reply address
   (``support+<token>@...``); the token is signed, so it cannot be guessed from a number;
3. ``subject_reference``: the subject carries ``[#1234]`` *and* the sender takes part in that
   conversation (its contact, or an address it was sent to or copied to). A stranger quoting a
   number never lands in someone else's conversation.

A match that is closed, or resolved longer ago than the channel allows (or resolved while the
channel does not reopen), starts a new conversation that names the previous one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings

from loket import crypto
from loket.inbox.items import ThreadHints
from loket.inbox.models import Channel, Conversation, ConversationStatus, Message

_ACTIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED)
_TOKEN = re.compile(r"^c([0-9a-z]+)-([a-z2-7]{10})$")
MAX_REFERENCES = 50
MAX_PARTICIPANT_ROWS = 500


@dataclass(frozen=True)
class Match:
    conversation_id: int
    number: int
    status: str
    continues: bool  # False: a new conversation starts, naming this one as the previous
    reason: str  # references | reply_address | subject_reference


def reply_token(conversation_id: int) -> str:
    """The token of a conversation's reply address: its id and a signature over it."""
    return f"c{_base36(conversation_id)}-{_signature(conversation_id)}"


def conversation_for_token(token: str) -> int | None:
    found = _TOKEN.match(token.strip().lower())
    if not found:
        return None
    conversation_id = int(found.group(1), 36)
    if not hmac.compare_digest(found.group(2), _signature(conversation_id)):
        return None
    return conversation_id


def _signature(conversation_id: int) -> str:
    digest = hmac.new(
        crypto.derived_key("reply-address"), str(conversation_id).encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest).decode().lower()[:10]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def find(channel: Channel, contact_id: int, hints: ThreadHints, now: dt.datetime) -> Match | None:
    """The conversation ``hints`` point at, or None (a new conversation starts)."""
    candidates = []  # (conversation id, reason), most trusted first
    if hints.references:
        found = _by_references(channel, hints.references[:MAX_REFERENCES])
        if found:
            candidates.append((found, "references"))
    if hints.reply_token:
        found = conversation_for_token(hints.reply_token)
        if found:
            candidates.append((found, "reply_address"))
    if hints.conversation_number:
        number_match = (
            Conversation.objects.filter(
                workspace_id=channel.workspace_id, number=hints.conversation_number
            )
            .values_list("pk", flat=True)
            .first()
        )
        if number_match:
            candidates.append((number_match, "subject_reference"))
    for conversation_id, reason in candidates:
        row = _follow_merges(channel.workspace_id, conversation_id)
        if row is None:
            continue
        if reason == "subject_reference" and not _takes_part(row, contact_id, hints):
            continue
        pk, number, status, resolved_at = row[0], row[1], row[2], row[3]
        return Match(pk, number, status, _continues(channel, status, resolved_at, now), reason)
    return None


def _by_references(channel: Channel, references: tuple[str, ...]) -> int | None:
    """The conversation of the most specific referenced message stored on this channel."""
    rows = dict(
        Message.objects.filter(
            channel=channel, direction__in=("in", "out"), external_id__in=references
        ).values_list("external_id", "conversation_id")
    )
    for reference in references:
        if reference in rows:
            return rows[reference]
    return None


def _follow_merges(workspace_id: int, conversation_id: int):
    """(id, number, status, resolved_at, contact id) of the conversation, or of the one it was
    merged into; None when it is not in this workspace."""
    for _ in range(20):  # merges form chains, never cycles; the bound is a guard
        row = (
            Conversation.objects.filter(workspace_id=workspace_id, pk=conversation_id)
            .values_list("pk", "number", "status", "resolved_at", "contact_id", "merged_into_id")
            .first()
        )
        if row is None:
            return None
        if row[5] is None:
            return row[:5]
        conversation_id = row[5]
    return None


def _continues(channel: Channel, status: str, resolved_at, now: dt.datetime) -> bool:
    if status in _ACTIVE:
        return True
    if status != ConversationStatus.RESOLVED or not channel.settings.get("reopen_resolved", True):
        return False
    days = channel.settings.get("new_conversation_after_days", settings.LOKET_REOPEN_WITHIN_DAYS)
    return resolved_at is None or now - resolved_at <= dt.timedelta(days=days)


def _takes_part(row, contact_id: int, hints: ThreadHints) -> bool:
    """Whether the sender is a participant of the conversation ``row``."""
    conversation_id, conversation_contact = row[0], row[4]
    if conversation_contact == contact_id:
        return True
    address = hints.sender_address.strip().lower()
    if not address:
        return False
    return address in participants(conversation_id)


def participants(conversation_id: int) -> set[str]:
    """Lower-cased addresses taking part in a conversation: its contact's email and every
    address its emails came from, went to or were copied to."""
    from loket.inbox.models import Contact

    found: set[str] = set()
    contact_email = (
        Contact.objects.filter(conversations__pk=conversation_id).values_list("email", flat=True)
    ).first()
    if contact_email:
        found.add(contact_email.lower())
    datas = (
        Message.objects.filter(conversation_id=conversation_id, kind="message")
        .order_by("-id")
        .values_list("data", flat=True)[:MAX_PARTICIPANT_ROWS]
    )
    for data in datas:
        email = (data or {}).get("email") or {}
        for key in ("from", "to", "cc"):
            for entry in email.get(key) or ():
                address = entry.get("address") if isinstance(entry, dict) else entry
                if isinstance(address, str) and address:
                    found.add(address.lower())
    return found
