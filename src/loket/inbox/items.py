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


@dataclass(frozen=True)
class InboundMessage:
    external_id: str
    contact: InboundContact
    text: str = ""
    html: str = ""
    subject: str = ""
    sent_at: dt.datetime | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's delivery report for a message Loket sent."""

    external_id: str
    status: str  # one of DeliveryStatus
    error: str = ""
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Ignored:
    """An event kind the connector does not handle; journaled, acknowledged, not processed."""

    reason: str


InboundItem = InboundMessage | StatusUpdate | Ignored
