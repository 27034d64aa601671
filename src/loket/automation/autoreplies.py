"""Automatic answers to customers: a greeting on a new conversation, and an away message when a
customer writes outside business hours (the channel's own hours, else the workspace's).

When one goes out, decided for each new customer message after commit (``on_event``):

- never to an automatic message (``loket.automation.automatic.is_automatic``: an out-of-office,
  a bounce, a mailing: two robots answering each other is how mail loops start), nor to a
  blocked contact;
- at most one automatic answer per customer message, the away message first (it says more);
- the away message once per conversation; the greeting only for the first message a person
  wrote in it (machine mail before it does not count);
- at most one automatic answer per contact within ``LOKET_AUTO_REPLY_PER_CONTACT_MINUTES``
  across all their conversations, so a customer writing ten times at night gets one;
- through the one outbound path as a system message (email sends it with
  ``Auto-Submitted: auto-replied``), marked ``data["auto_reply"] = kind``.

A channel-specific auto-reply wins over the workspace's; a disabled one switches that kind off for
its channel (or everywhere).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from loket import events
from loket.automation.automatic import first_from_a_person, is_automatic
from loket.automation.canned import render_text
from loket.automation.models import AutoReply, AutoReplyKind
from loket.inbox.models import (
    AuthorType,
    Channel,
    Contact,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services import outbound
from loket.memo import PerWorkspace
from loket.tenancy.hours import Schedule
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import NotAllowed

log = logging.getLogger(__name__)
MAX_BODY = 5000
MAX_DAYS = 90
# The kinds that answer a customer's message (the closing one is sent by autoresolve instead).
ANSWERING_KINDS = (AutoReplyKind.GREETING, AutoReplyKind.AWAY)


class InvalidAutoReply(ValueError):
    """An auto-reply that cannot be saved; the message says why."""


def configure(
    workspace: Workspace,
    kind: str,
    *,
    body: str,
    enabled: bool = True,
    channel: Channel | None = None,
    actor: Membership | None = None,
    days: int | None = None,
) -> AutoReply:
    """Create or change the workspace's (or one channel's) auto-reply of this kind. ``actor``:
    the member doing it (owners and admins only); None for the system itself. ``days``: for the
    closing message only, how long a conversation waits pending on the customer before it is
    resolved automatically (loket.automation.autoresolve)."""
    _check_actor(actor)
    if kind not in AutoReplyKind.values:
        raise InvalidAutoReply(f"unknown kind {kind!r}; one of {', '.join(AutoReplyKind.values)}")
    if channel is not None and channel.workspace_id != workspace.pk:
        raise InvalidAutoReply("that channel belongs to another workspace")
    body = (body or "").strip()
    if enabled and not body:
        raise InvalidAutoReply(gettext("An enabled auto-reply needs a text."))
    if len(body) > MAX_BODY:
        raise InvalidAutoReply(
            gettext("The text has at most %(limit)d characters.") % {"limit": MAX_BODY}
        )
    if kind == AutoReplyKind.CLOSING:
        if days is None and enabled:
            raise InvalidAutoReply(gettext("Say after how many days to resolve (1 to 90)."))
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS
        ):
            raise InvalidAutoReply(gettext("Resolve after 1 to 90 days."))
    elif days is not None:
        raise InvalidAutoReply("only the closing message takes days")
    reply, _created = AutoReply.objects.update_or_create(
        workspace=workspace,
        kind=kind,
        channel=channel,
        defaults={"body": body, "enabled": enabled, "days": days, "updated_at": timezone.now()},
    )
    _in_use.forget(workspace.pk)
    return reply


def _check_actor(actor: Membership | None) -> None:
    if actor is not None and not actor.is_admin:
        raise NotAllowed(gettext("Only owners and admins can change auto-replies."))


def remove(
    workspace: Workspace, kind: str, *, channel: Channel | None, actor: Membership | None = None
) -> None:
    """Forget the workspace's (or one channel's) auto-reply of this kind: a channel then follows
    the workspace's again."""
    _check_actor(actor)
    AutoReply.objects.filter(workspace=workspace, kind=kind, channel=channel).delete()
    _in_use.forget(workspace.pk)


def _any_answering(workspace_id: int) -> bool:
    return AutoReply.objects.filter(
        workspace_id=workspace_id, enabled=True, kind__in=ANSWERING_KINDS
    ).exists()


# Whether a workspace has any enabled auto-reply: the enqueuer asks for every inbound message,
# and most workspaces have none.
_in_use = PerWorkspace(_any_answering)


def in_use(workspace_id: int) -> bool:
    return _in_use.get(workspace_id)


def policies(channel: Channel) -> dict[str, AutoReply]:
    """The enabled auto-replies that apply on ``channel``, by kind (one query): a channel's own
    wins over the workspace's, and a disabled own one switches that kind off there."""
    found = AutoReply.objects.filter(workspace_id=channel.workspace_id).filter(
        Q(channel=channel) | Q(channel__isnull=True)
    )
    chosen: dict[str, AutoReply] = {}
    for reply in sorted(found, key=lambda r: r.channel_id is not None):  # own ones last: win
        chosen[reply.kind] = reply
    return {kind: reply for kind, reply in chosen.items() if reply.enabled}


def _answered_recently(workspace_id: int, contact_id: int, now: dt.datetime) -> bool:
    since = now - dt.timedelta(minutes=settings.LOKET_AUTO_REPLY_PER_CONTACT_MINUTES)
    return Message.objects.filter(
        workspace_id=workspace_id,
        conversation__contact_id=contact_id,
        author_type=AuthorType.SYSTEM,
        direction=Direction.OUTBOUND,
        data__has_key="auto_reply",
        created_at__gte=since,
    ).exists()


def answer(message_id: int) -> Message | None:
    """Send the automatic answer this customer message calls for, if any."""
    message = (
        Message.objects.select_related(
            "conversation__contact", "conversation__workspace", "channel__workspace"
        )
        .filter(
            pk=message_id,
            direction=Direction.INBOUND,
            kind=MessageKind.MESSAGE,
            author_type=AuthorType.CONTACT,
        )
        .first()
    )
    if message is None or is_automatic(message):
        return None
    if (message.data or {}).get("blocked"):
        return None
    conversation, channel = message.conversation, message.channel
    now = timezone.now()
    earlier = Message.objects.filter(conversation=conversation, pk__lt=message.pk)
    chosen = None
    found = policies(channel)
    away, greeting = found.get(AutoReplyKind.AWAY), found.get(AutoReplyKind.GREETING)
    if (
        away is not None
        and not Schedule.of(channel.workspace, channel).is_open(message.created_at)
        and not earlier.filter(data__auto_reply=AutoReplyKind.AWAY).exists()
    ):
        chosen = away
    first_message = first_from_a_person(message)
    if chosen is None and greeting is not None and first_message:
        chosen = greeting
    if chosen is None:
        return None
    with transaction.atomic():
        # Serialise per contact, so two messages at once get one answer between them.
        Contact.objects.select_for_update().filter(pk=conversation.contact_id).first()
        if _answered_recently(conversation.workspace_id, conversation.contact_id, now):
            return None
        text, _unknown = render_text(chosen.body, conversation)
        if not text.strip():
            return None
        try:
            return outbound.reply(
                conversation,
                author=None,
                text=text,
                author_type=AuthorType.SYSTEM,
                data={"auto_reply": chosen.kind},
            )
        except ValueError as exc:  # e.g. a closed reply window: nothing to answer with
            log.info("no %s auto-reply in conversation %s: %s", chosen.kind, conversation.pk, exc)
            return None


def enqueue_jobs(event: events.Event) -> None:
    """Enqueuer (settings.LOKET_EVENT_ENQUEUERS), called inside the transaction that stored the
    message: a background job answers, so the webhook that stored it is not kept waiting."""
    if (
        isinstance(event, events.MessageCreated)
        and event.direction == Direction.INBOUND
        and event.kind == MessageKind.MESSAGE
        and in_use(event.workspace_id)
    ):
        from loket.automation.tasks import answer_automatically

        answer_automatically.enqueue(event.message_id)
