"""What the timeline shows for each stored message: a customer message, a reply, an internal
note, or an activity line written as a sentence ("Anna assigned this to Bram")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loket.automation.rules import actions as rule_actions
from loket.inbox.models import (
    AttachmentStatus,
    AuthorType,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Priority,
)

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}

# Delivery status → (ticks shown, accessible label)
TICKS = {
    DeliveryStatus.QUEUED: ("🕓", DeliveryStatus.QUEUED.label),
    DeliveryStatus.SENDING: ("…", DeliveryStatus.SENDING.label),
    DeliveryStatus.SENT: ("✓", DeliveryStatus.SENT.label),
    DeliveryStatus.DELIVERED: ("✓✓", DeliveryStatus.DELIVERED.label),
    DeliveryStatus.READ: ("✓✓", DeliveryStatus.READ.label),
    DeliveryStatus.FAILED: ("⚠", DeliveryStatus.FAILED.label),
}


@dataclass
class Entry:
    message: Message
    kind: str  # "in" | "out" | "note" | "activity"
    author: str
    sentence: str = ""
    images: list = field(default_factory=list)
    files: list = field(default_factory=list)
    ticks: str = ""
    status_label: str = ""
    # Email: why it landed in this conversation, what was cut from it, what to warn about.
    notes: list = field(default_factory=list)
    warning: str = ""
    quoted_text: str = ""
    quoted_html: bool = False
    remote_images: bool = False  # the HTML has remote images ...
    images_allowed: bool = False  # ... and its sender's load without asking
    cc: str = ""
    # Messaging channels: what the message answers, reactions, shared places and people...
    reply_to: dict | None = None
    reactions: list = field(default_factory=list)  # [(emoji, count)]
    location: dict | None = None
    map_url: str = ""
    contacts: list = field(default_factory=list)
    choice: str = ""
    offered: list = field(default_factory=list)  # an outbound message's choices (titles)
    offered_numbered: bool = False  # ... sent as numbered text (the channel has no buttons)
    template: str = ""
    unsupported: str = ""
    edited: bool = False
    previous_texts: list = field(default_factory=list)
    deleted: bool = False

    @property
    def pk(self) -> int:
        return self.message.pk


def _author(message: Message) -> str:
    data = message.data or {}
    if (data.get("via") == "rule" and message.kind == MessageKind.ACTIVITY) or (
        data.get("rule_name") and message.author_type == AuthorType.SYSTEM
    ):
        return _("Rule “%(name)s”") % {"name": data.get("rule_name") or ""}
    if message.author_type == AuthorType.MEMBER and message.author_member:
        return message.author_member.display_name
    if message.author_type == AuthorType.CONTACT and message.author_contact:
        return message.author_contact.display_name
    if data.get("via") == "bot" and message.kind == MessageKind.ACTIVITY:
        return _("Bot “%(name)s”") % {"name": data.get("flow_name") or ""}
    if message.author_type == AuthorType.BOT:
        flow = (data.get("bot") or {}).get("flow_name") if isinstance(data.get("bot"), dict) else ""
        return _("Bot “%(name)s”") % {"name": flow} if flow else _("Bot")
    if message.direction == Direction.INBOUND:
        return _("Customer")
    return _("System")


def _status_name(value: str | None) -> str:
    try:
        return str(ConversationStatus(value).label)
    except ValueError:
        return value or ""


def activity_sentence(message: Message, who: str) -> str:
    data = message.data or {}
    action = data.get("action") or message.text
    if action == "status_changed" and data.get("via") == "auto_resolve":
        days = data.get("days") or 0
        return ngettext(
            "Resolved automatically after %(days)d day without an answer",
            "Resolved automatically after %(days)d days without an answer",
            days,
        ) % {"days": days}
    if action == "csat_rated":
        if data.get("changed"):
            return _("The customer changed their rating to %(rating)s/5") % {
                "rating": data.get("rating")
            }
        return _("The customer rated this conversation %(rating)s/5") % {
            "rating": data.get("rating")
        }
    if action == "status_changed" and data.get("via") == "csat":
        return _("Resolved again: the customer's message answered the satisfaction survey")
    if action == "rule_ran":
        matched = data.get("matched") or []
        failed = data.get("failed") or []
        if failed:
            reasons = "; ".join(rule_actions.described_detail(item) for item in failed)
            return ngettext(
                "%(who)s ran; %(count)d action failed: %(reasons)s",
                "%(who)s ran; %(count)d actions failed: %(reasons)s",
                len(failed),
            ) % {"who": who, "count": len(failed), "reasons": reasons}
        skipped = data.get("skipped") or []
        if skipped:
            reasons = "; ".join(rule_actions.described_detail(item) for item in skipped)
            return ngettext(
                "%(who)s ran; %(count)d action skipped: %(reasons)s",
                "%(who)s ran; %(count)d actions skipped: %(reasons)s",
                len(skipped),
            ) % {"who": who, "count": len(skipped), "reasons": reasons}
        if matched:
            return ngettext(
                "%(who)s ran (%(count)d condition held)",
                "%(who)s ran (%(count)d conditions held)",
                len(matched),
            ) % {"who": who, "count": len(matched)}
        return _("%(who)s ran") % {"who": who}
    if action == "rules_stopped":
        return _(
            "Rules stopped acting on this conversation: they acted %(limit)s times within an "
            "hour, which looks like a loop (%(rules)s). Check these rules."
        ) % {"limit": data.get("limit"), "rules": ", ".join(data.get("rules") or [])}
    if action == "macro_ran":
        failed = [item for item in data.get("done") or [] if not item.get("ok")]
        if failed:
            return ngettext(
                "%(who)s ran macro “%(name)s” (%(count)d action failed)",
                "%(who)s ran macro “%(name)s” (%(count)d actions failed)",
                len(failed),
            ) % {"who": who, "name": data.get("macro_name") or "", "count": len(failed)}
        return _("%(who)s ran macro “%(name)s”") % {
            "who": who,
            "name": data.get("macro_name") or "",
        }
    if action == "status_changed":
        if data.get("status") == ConversationStatus.SNOOZED:
            if data.get("snoozed_until"):
                return _("%(who)s snoozed this until %(until)s") % {
                    "who": who,
                    "until": data["snoozed_until"][:16].replace("T", " "),
                }
            return _("%(who)s snoozed this until the customer replies") % {"who": who}
        return _("%(who)s changed the status to %(status)s") % {
            "who": who,
            "status": _status_name(data.get("status")),
        }
    if action == "snooze_changed":
        return _("%(who)s changed the snooze time") % {"who": who}
    if action == "assigned" and data.get("via") == "auto_assign":
        return _("Assigned to %(assignee)s (auto-assign)") % {
            "assignee": data.get("assignee_name") or _("someone")
        }
    if action == "unassigned" and data.get("reason") == "offline":
        return _("Unassigned: %(name)s went offline (auto-assign)") % {
            "name": data.get("previous_name") or _("someone")
        }
    if action == "assigned":
        return _("%(who)s assigned this to %(assignee)s") % {
            "who": who,
            "assignee": data.get("assignee_name") or _("someone"),
        }
    if action == "unassigned":
        return _("%(who)s unassigned this") % {"who": who}
    if action == "team_changed":
        if data.get("team_name"):
            team = data["team_name"]
            return _("%(who)s moved this to team %(team)s") % {"who": who, "team": team}
        return _("%(who)s removed the team") % {"who": who}
    if action == "priority_changed":
        try:
            priority = str(Priority(data.get("priority")).label)
        except ValueError:
            priority = str(data.get("priority"))
        return _("%(who)s set the priority to %(priority)s") % {"who": who, "priority": priority}
    if action == "labels_changed":
        labels = ", ".join(data.get("labels") or []) or _("none")
        return _("%(who)s set the labels: %(labels)s") % {"who": who, "labels": labels}
    if action == "bot_taken_over":
        return _("%(who)s took over from bot “%(name)s”") % {
            "who": who,
            "name": data.get("flow_name") or "",
        }
    if action in ("merged", "merged_into", "merged_from"):
        return _("%(who)s merged conversations") % {"who": who}
    if action in ("merge_undone",):
        return _("%(who)s undid a merge") % {"who": who}
    if action in ("split", "split_from", "split_into"):
        return _("%(who)s moved a message to another conversation") % {"who": who}
    return f"{who}: {message.text or action}"


_REMOTE_IMAGE = re.compile(r"<img\b[^>]*\bsrc=[\"']?https?:", re.IGNORECASE)


def thread_note(data: dict) -> str:
    thread = data.get("thread") or {}
    by = thread.get("by")
    if by == "references":
        return _("Added here: it answers an earlier message of this conversation (In-Reply-To)")
    if by == "reply_address":
        return _("Added here: it was sent to this conversation's reply address")
    if by == "subject_reference":
        return _("Added here: its subject names this conversation and the sender takes part")
    if by == "new_after_previous":
        return _(
            "New conversation: it answers #%(number)s, which is closed or was resolved too long ago"
        ) % {"number": thread.get("previous")}
    return ""


def _email_details(result: Entry, message: Message) -> None:
    data = message.data or {}
    email = data.get("email") or {}
    note = thread_note(data)
    if note:
        result.notes.append(note)
    if data.get("auto_submitted"):
        result.notes.append(
            _("Automatic mail (%(reason)s): it never triggers an automatic reply")
            % {"reason": email.get("auto_reason") or _("auto-submitted")}
        )
    for skipped in email.get("skipped_attachments") or ():
        result.notes.append(
            _("Attachment “%(name)s” was not stored: %(reason)s")
            % {"name": skipped.get("filename", ""), "reason": skipped.get("reason", "")}
        )
    if (email.get("authentication") or {}).get("dmarc") == "fail":
        result.warning = _(
            "This sender failed DMARC: the mail may not come from the address it shows. "
            "Do not act on requests for payments or passwords without checking."
        )
    result.quoted_text = email.get("quoted_text") or ""
    result.quoted_html = bool(email.get("quoted_html"))
    result.remote_images = bool(message.html and _REMOTE_IMAGE.search(message.html))
    contact = message.author_contact if message.author_contact_id else None
    result.images_allowed = bool(contact and contact.load_remote_images)
    copied = email.get("cc") or ()
    result.cc = ", ".join(e.get("address", "") for e in copied if isinstance(e, dict))


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if -180.0 <= number <= 180.0 else None


def _chat_details(result: Entry, data: dict) -> None:
    """What messaging channels add to a message (see loket.inbox.items.InboundMessage)."""
    if isinstance(data.get("reply_to"), dict):
        result.reply_to = data["reply_to"]
    reactions = data.get("reactions")
    if isinstance(reactions, dict) and reactions:
        counted: dict[str, int] = {}
        for emoji in reactions.values():
            counted[str(emoji)] = counted.get(str(emoji), 0) + 1
        result.reactions = sorted(counted.items(), key=lambda item: -item[1])
    location = data.get("location")
    if isinstance(location, dict):
        result.location = location
        latitude, longitude = _number(location.get("latitude")), _number(location.get("longitude"))
        if latitude is not None and longitude is not None:
            # A link, never an embedded map: nothing loads from a third party by itself.
            result.map_url = (
                f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}"
                f"#map=16/{latitude:.6f}/{longitude:.6f}"
            )
    if isinstance(data.get("contacts"), list):
        result.contacts = [c for c in data["contacts"] if isinstance(c, dict)][:20]
    choice = data.get("choice")
    if isinstance(choice, dict):
        result.choice = str(choice.get("title") or choice.get("id") or "")
    offered = data.get("choices")
    if isinstance(offered, dict) and isinstance(offered.get("items"), list):
        result.offered = [
            str(item.get("title") or item.get("id") or "")
            for item in offered["items"][:100]
            if isinstance(item, dict)
        ]
        result.offered_numbered = offered.get("rendered") == "numbered"
    template = data.get("template")
    if isinstance(template, dict):
        result.template = f"{template.get('name', '')} ({template.get('language', '')})"
    if data.get("unsupported"):
        result.unsupported = _(
            "The customer sent something Loket cannot show here (%(kind)s). Ask them to"
            " send it another way, or look in the provider's app."
        ) % {"kind": str(data["unsupported"])[:50]}
    edited = data.get("edited")
    if isinstance(edited, dict):
        result.edited = True
        result.previous_texts = [str(t) for t in edited.get("previous") or []]
    result.deleted = bool(data.get("deleted_at"))


_CHAT_KEYS = frozenset(
    {"reply_to", "reactions", "location", "contacts", "choice", "choices", "template",
     "unsupported", "edited", "deleted_at"}
)  # fmt: skip


def entry(message: Message) -> Entry:
    who = _author(message)
    if message.kind == MessageKind.ACTIVITY:
        return Entry(message, "activity", who, sentence=activity_sentence(message, who))
    if message.kind == MessageKind.NOTE:
        kind = "note"
    else:
        kind = "in" if message.direction == Direction.INBOUND else "out"
    result = Entry(message, kind, who)
    if message.data and (message.data.get("email") or message.data.get("thread")):
        _email_details(result, message)
    if message.data and not _CHAT_KEYS.isdisjoint(message.data):
        _chat_details(result, message.data)
    for item in message.attachments.all():
        if item.inline and item.content_id and message.html:
            continue  # shown inside the email body
        if item.status == AttachmentStatus.STORED and item.content_type in IMAGE_TYPES:
            result.images.append(item)
        else:
            result.files.append(item)
    if kind == "out" and message.status:
        result.ticks, label = TICKS.get(message.status, ("", message.status))
        result.status_label = str(label)
    return result
