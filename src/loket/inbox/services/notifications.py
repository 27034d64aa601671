"""Notifications for members: @mentions in internal notes, assignments, new messages, SLA
due times coming close or passing (loket.automation.sla).

Mention syntax, in an internal note's text:

* ``@[Display Name](member:<id>)`` — the explicit token the composer inserts when an agent
  picks a teammate from its mention menu (:func:`mention_token` builds it). Only the id counts;
  the name is there so the raw text still reads well. The robust form: names may repeat,
  change, or contain spaces.
* ``@word`` — typed by hand: matches the one active member whose first name (the first word of
  their name) or email local part (before the ``@``) is ``word``, ignoring case and accents.
  A word that fits no member, or more than one, mentions nobody. Dots, ``+`` and ``-`` may be
  part of the word (``@anna.smith``); trailing ones are punctuation (``@anna.`` is ``@anna``).
  An email address in the text (``x@example.com``) is not a mention.

Only the workspace's own members can ever match. A notification is stored, then published
after commit to its recipient's sockets only, as ``notification.created`` (the browser app
shows a toast, bumps the unread badge and, if allowed, a browser notification).

Nobody is notified of their own actions, and a blocked contact never causes a notification:
a new-message notification for their conversation, or one about a message they sent (marked
``data["blocked"]`` by ingest), is not created.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.text import Truncator
from django.utils.translation import gettext

from loket.inbox.models import (
    AuthorType,
    Contact,
    Conversation,
    Message,
    MessageKind,
    Notification,
    NotificationKind,
)
from loket.inbox.services.conversations import InvalidChange
from loket.tenancy.models import Membership, Workspace

# Resolved by name at call time, like the event subscribers (loket.events), so the core never
# imports the realtime edge; a deployment or a test may name another publisher in settings.
_DEFAULT_PUBLISHER = "loket.realtime.publish.publish"

MENTION_TOKEN = re.compile(r"@\[(?P<name>[^\]\n]*)\]\(member:(?P<id>\d{1,18})\)")
# Not after a word character or "@": "x@example.com" and "@@x" are not mentions.
_PLAIN_MENTION = re.compile(r"(?<![\w@])@(?P<word>\w[\w.+-]*)")
_TRAILING_PUNCTUATION = ".+-"

# The badge shows "999+" beyond this; counting further is work nobody reads.
UNREAD_CAP = 1000
_TEXT_LENGTH = 200


def mention_token(member: Membership) -> str:
    """The explicit mention of ``member`` the composer inserts."""
    name = re.sub(r"[\[\]\n]", "", member.display_name).strip()
    return f"@[{name}](member:{member.pk})"


def plain_text(text: str) -> str:
    """The text with explicit mention tokens shown as ``@Display Name``."""
    return MENTION_TOKEN.sub(lambda match: f"@{match['name']}", text or "")


def _folded(word: str) -> str:
    """Compared without case or accents: ``@eve`` finds Éve."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _first_name(member: Membership) -> str:
    name = (member.user.name or "").split()
    return _folded(name[0]) if name else ""


def _local_part(member: Membership) -> str:
    return _folded(member.user.email.partition("@")[0])


def mentioned_members(workspace_id: int, text: str) -> list[Membership]:
    """The workspace's active members ``text`` mentions, in order of first mention, each once.
    One query (the workspace's members), however many mentions."""
    text = text or ""
    if "@" not in text:
        return []
    members = list(
        Membership.objects.filter(workspace_id=workspace_id, user__is_active=True)
        .select_related("user", "workspace")
        .order_by("pk")
    )
    by_id = {member.pk: member for member in members}
    by_word: dict[str, set[int]] = {}
    for member in members:
        for word in {_first_name(member), _local_part(member)} - {""}:
            by_word.setdefault(word, set()).add(member.pk)

    # Resolve in the order the mentions appear in the text.
    positions: list[tuple[int, int]] = []
    for match in MENTION_TOKEN.finditer(text):
        member_id = int(match["id"])
        if member_id in by_id:
            positions.append((match.start(), member_id))
    masked = MENTION_TOKEN.sub(lambda match: " " * len(match[0]), text)
    for match in _PLAIN_MENTION.finditer(masked):
        candidates = by_word.get(_folded(match["word"].rstrip(_TRAILING_PUNCTUATION)), set())
        if len(candidates) == 1:  # ambiguous or unknown: nobody
            positions.append((match.start(), next(iter(candidates))))
    found: list[Membership] = []
    for _, member_id in sorted(positions):
        if by_id[member_id] not in found:
            found.append(by_id[member_id])
    return found


def _from_blocked_contact(kind: str, conversation: Conversation, message: Message | None) -> bool:
    """Whether the blocked contact is what this notification would be about."""
    if message is not None and message.data.get("blocked"):
        return True
    caused_by_contact = kind == NotificationKind.MESSAGE or (
        message is not None and message.author_type == AuthorType.CONTACT
    )
    if not caused_by_contact:
        return False  # an agent's mention or assignment in their conversation still counts
    if Conversation.contact.is_cached(conversation):
        return conversation.contact.blocked_at is not None
    return Contact.objects.filter(pk=conversation.contact_id, blocked_at__isnull=False).exists()


def _workspace_slug(recipient: Membership) -> str:
    if Membership.workspace.is_cached(recipient):
        return recipient.workspace.slug
    return Workspace.objects.values_list("slug", flat=True).get(pk=recipient.workspace_id)


def conversation_url(slug: str, number: int, message_id: int | None = None) -> str:
    """Where a notification opens: the conversation, scrolled to the message."""
    try:
        url = reverse("inbox:conversation", args=[slug, number])
    except NoReverseMatch:  # a deployment without the agent app's URLs
        url = f"/w/{slug}/inbox/{number}/"
    return f"{url}?message={message_id}#m{message_id}" if message_id else url


def _title_and_text(
    kind: str,
    conversation: Conversation,
    message: Message | None,
    actor: Membership | None,
    sla: str = "",
) -> tuple[str, str]:
    number = conversation.number
    who = actor.display_name if actor is not None else gettext("Loket")
    if kind == NotificationKind.SLA and sla == "breached":
        title = gettext("#%(number)s is past its SLA due time") % {"number": number}
    elif kind == NotificationKind.SLA:
        title = gettext("#%(number)s is close to its SLA due time") % {"number": number}
    elif kind == NotificationKind.MENTION:
        title = gettext("%(who)s mentioned you in #%(number)s") % {"who": who, "number": number}
    elif kind == NotificationKind.ASSIGNED:
        title = gettext("#%(number)s was assigned to you") % {"number": number}
    else:
        title = gettext("New message in #%(number)s") % {"number": number}
    text = plain_text(message.text) if message is not None else conversation.subject
    text = " ".join(text.split()) or gettext("Conversation #%(number)s") % {"number": number}
    return title, Truncator(text).chars(_TEXT_LENGTH)


def _publish(workspace_id: int, payload: dict, recipients: list[int]) -> None:
    publisher = import_string(getattr(settings, "LOKET_NOTIFICATION_PUBLISHER", _DEFAULT_PUBLISHER))
    publisher(workspace_id, payload, recipients=recipients)


def notify(
    recipient: Membership,
    *,
    kind: str,
    conversation: Conversation,
    message: Message | None = None,
    actor: Membership | None = None,
    sla: str = "",
) -> Notification | None:
    """Store a notification for ``recipient`` and, after commit, push it to their sockets.
    None when nothing is notified: the recipient is the actor, or a blocked contact caused it.
    ``sla``: for an SLA notification, ``at_risk`` or ``breached`` (its title says which)."""
    if kind not in NotificationKind.values:
        raise InvalidChange(f"unknown notification kind {kind!r}")
    workspace_id = conversation.workspace_id
    if recipient.workspace_id != workspace_id or (
        actor is not None and actor.workspace_id != workspace_id
    ):
        raise InvalidChange("the members and the conversation belong to different workspaces")
    if message is not None and message.conversation_id != conversation.pk:
        raise InvalidChange("the message is not part of that conversation")
    if actor is not None and actor.pk == recipient.pk:
        return None
    if _from_blocked_contact(kind, conversation, message):
        return None

    notification = Notification.objects.create(
        workspace_id=workspace_id,
        recipient=recipient,
        kind=kind,
        conversation=conversation,
        message=message,
        actor=actor,
        created_at=timezone.now(),
    )
    language = (recipient.user.locale if Membership.user.is_cached(recipient) else "") or None
    with translation.override(language or translation.get_language()):
        title, text = _title_and_text(kind, conversation, message, actor, sla)
    message_id = message.pk if message is not None else None
    payload = {
        "type": "notification.created",
        "id": notification.pk,
        "recipient_id": recipient.pk,
        "kind": kind,
        "conversation_id": conversation.pk,
        "conversation_number": conversation.number,
        "message_id": message_id,
        "actor_id": actor.pk if actor is not None else None,
        "title": title,
        "text": text,
        "url": conversation_url(_workspace_slug(recipient), conversation.number, message_id),
        "created_at": notification.created_at.isoformat(),
    }
    transaction.on_commit(lambda: _publish(workspace_id, payload, [recipient.pk]))
    return notification


def notify_mentions(note_message: Message, *, actor: Membership | None) -> list[Notification]:
    """One ``mention`` notification per member an internal note mentions, never to its author.
    Replies to the customer are not scanned: a mention is a note's way to call a teammate."""
    if note_message.kind != MessageKind.NOTE:
        return []
    conversation = note_message.conversation
    authors = {actor.pk if actor else None, note_message.author_member_id} - {None}
    created = []
    for member in mentioned_members(note_message.workspace_id, note_message.text):
        if member.pk in authors:
            continue
        notification = notify(
            member,
            kind=NotificationKind.MENTION,
            conversation=conversation,
            message=note_message,
            actor=actor,
        )
        if notification is not None:
            created.append(notification)
    return created


def unread_count(membership: Membership) -> int:
    """Unread notifications, counted up to :data:`UNREAD_CAP` (the ``notification_inbox``
    index answers it)."""
    unread = Notification.objects.filter(recipient=membership, read_at__isnull=True)
    return unread[:UNREAD_CAP].count()


def mark_read(membership: Membership, ids: Iterable[int] | None = None) -> int:
    """Mark the member's unread notifications read (only those in ``ids`` when given); how
    many were. Other members' ids are ignored."""
    unread = Notification.objects.filter(recipient=membership, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
