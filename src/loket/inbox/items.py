"""Normalised items a connector hands to the core: the only shapes ingest understands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InboundContact:
    external_id: str  # the sender's id on this channel
    name: str = ""
    email: str = ""
    phone: str = ""
    locale: str = ""


@dataclass(frozen=True)
class InboundAttachment:
    filename: str
    content_type: str = "application/octet-stream"
    url: str = ""  # fetched by a background task when set
    content: bytes | None = None  # or given inline
    content_id: str = ""  # an email part's Content-ID, referenced from the HTML as cid:
    inline: bool = False  # shown inside the message body, not listed as a download
    # A provider's own media reference (a WhatsApp media id, a Telegram file_id, ...): a
    # background task asks the channel's connector where to fetch it (Connector.resolve_media).
    media_ref: str = ""


@dataclass(frozen=True)
class ThreadHints:
    """How a message names the conversation it continues (email). With hints, a message that
    matches none of them starts a new conversation instead of continuing the sender's latest
    one, as a new email (no In-Reply-To) is a new question."""

    references: tuple[str, ...] = ()  # ids of earlier messages, most specific first
    reply_token: str = ""  # from a per-conversation reply address (support+<token>@...)
    conversation_number: int | None = None  # a "[#1234]" reference in the subject
    sender_address: str = ""  # the sender's email, for the participant check of the number


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message. ``text`` is always what a person would read, also for kinds that
    are not text (a location, a contact card, a sticker, a kind Loket does not know), so search,
    notifications and previews work; the structure goes in ``data``:

    - ``data["location"]``: ``{"latitude", "longitude", "name", "address", "url"}``
    - ``data["contacts"]``: ``[{"name", "phones": [...], "emails": [...]}]`` (shared cards)
    - ``data["choice"]``: ``{"id", "title"}``: a button or list reply
    - ``data["sticker"]``: true when the attachment is a sticker
    - ``data["unsupported"]``: the provider's name of a kind Loket cannot show (a placeholder,
      never dropped)
    - ``data["provider"]``: anything else worth keeping from the provider, small
    """

    external_id: str
    contact: InboundContact
    text: str = ""
    html: str = ""
    subject: str = ""
    sent_at: dt.datetime | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    thread: ThreadHints | None = None  # None: chat threading (the sender's open conversation)
    # The provider's id of the message this one answers (a swipe-reply, a quoted message):
    # the core links it and shows its excerpt above this one.
    reply_to: str = ""
    # Work the connector wants done once this message is stored: ``(job, args)`` pairs, each
    # enqueued by the core in the transaction that stores it; nothing for a redelivery.
    follow_up: tuple[tuple[Any, tuple], ...] = ()


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's delivery report for a message Loket sent."""

    external_id: str
    status: str  # one of DeliveryStatus
    error: str = ""
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Reaction:
    """A customer's emoji reaction to a message (theirs or ours); ``emoji`` empty: removed."""

    target_external_id: str
    contact: InboundContact
    emoji: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class MessageEdit:
    """The customer edited a message they sent; the earlier text is kept for the agent."""

    target_external_id: str
    text: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class MessageDeletion:
    """The customer deleted (unsent) a message; it stays visible to the agent, marked."""

    target_external_id: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Ignored:
    """An event kind the connector does not handle; journaled, acknowledged, not processed."""

    reason: str


InboundItem = InboundMessage | StatusUpdate | Reaction | MessageEdit | MessageDeletion | Ignored
