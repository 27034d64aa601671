"""Reply windows: how long after a customer's last message a channel lets a business answer
freely. A channel policy from its connector's capabilities, which the composer shows before the
agent types and reply() enforces before anything is queued:

- WhatsApp: free text within 24 hours of the customer's last message; after that only an
  approved message template.
- Messenger and Instagram: free text within 24 hours; then, until 7 days, a reply sent with the
  HUMAN_AGENT tag (a person answering); after that nothing until the customer writes again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from loket.inbox import ports
from loket.inbox.models import Conversation

HUMAN_AGENT_TAG = "HUMAN_AGENT"


@dataclass(frozen=True)
class ReplyWindow:
    limited: bool  # whether the channel has a window at all
    free_text: bool  # a normal reply can be sent now
    templates_only: bool = False  # closed, but a template can still be sent
    tag: str = ""  # the tag the reply must carry (HUMAN_AGENT), when free only with it
    closes_at: dt.datetime | None = None  # when the current state ends
    notice: str = ""  # what the composer tells the agent

    @property
    def closed(self) -> bool:
        return not self.free_text and not self.templates_only


OPEN = ReplyWindow(limited=False, free_text=True)


def reply_window(conversation: Conversation, *, now: dt.datetime | None = None) -> ReplyWindow:
    capabilities = ports.connector_for(conversation.channel.kind).capabilities
    hours = capabilities.reply_window_hours
    if not hours:
        return OPEN
    now = now or timezone.now()
    last = conversation.last_inbound_at
    tagged_hours = capabilities.tagged_window_hours
    templates = capabilities.templates
    if last is not None and now < last + dt.timedelta(hours=hours):
        return ReplyWindow(limited=True, free_text=True, closes_at=last + dt.timedelta(hours=hours))
    if last is not None and tagged_hours and now < last + dt.timedelta(hours=tagged_hours):
        closes = last + dt.timedelta(hours=tagged_hours)
        return ReplyWindow(
            limited=True,
            free_text=True,
            tag=HUMAN_AGENT_TAG,
            closes_at=closes,
            notice=_(
                "More than %(hours)d hours since the customer's last message: your reply is sent"
                " as a personal answer from a team member, possible until %(until)s."
            )
            % {"hours": hours, "until": timezone.localtime(closes).strftime("%Y-%m-%d %H:%M")},
        )
    if templates:
        return ReplyWindow(
            limited=True,
            free_text=False,
            templates_only=True,
            notice=_(
                "More than %(hours)d hours since the customer's last message: only an approved"
                " message template can be sent until they write again."
            )
            % {"hours": hours},
        )
    return ReplyWindow(
        limited=True,
        free_text=False,
        notice=_(
            "The customer last wrote more than %(days)d days ago: this channel allows no reply"
            " until they write again."
        )
        % {"days": (tagged_hours or hours) // 24 or 1},
    )


def check_reply(conversation: Conversation, *, template: bool) -> ReplyWindow:
    """The window a reply is sent in; ValueError with the composer's words when it may not."""
    window = reply_window(conversation)
    if template:
        if not ports.connector_for(conversation.channel.kind).capabilities.templates:
            raise ValueError(_("This channel has no message templates."))
        return window
    if not window.free_text:
        raise ValueError(window.notice)
    return window
