"""What the core needs from a connector, and how it finds one without importing connectors.

The connector registry (loket.connectors) installs itself here at start-up; the core looks
connectors up by channel kind and never imports a provider package.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loket.inbox.items import InboundContact, InboundItem
    from loket.inbox.models import Channel, Message


class BadPayload(Exception):
    """A verified request whose body cannot be understood (answered 400, journaled as failed)."""


class TransientSendError(Exception):
    """The provider may accept the message later (timeouts, 5xx, 429); retried with backoff."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentSendError(Exception):
    """The provider refused the message for good; shown to the agent with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(Exception):
    """A provider cannot give what was asked (a file, a profile): gone, not allowed, or
    ``transient``: try again later (after ``retry_after`` seconds when it said so)."""

    def __init__(self, reason: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


class MediaUnavailable(ProviderUnavailable):
    """A provider's media cannot be fetched (expired, deleted, not allowed)."""


@dataclass(frozen=True)
class MediaSource:
    """Where a provider's media reference can be downloaded, with the headers it needs (e.g.
    a bearer token); fetched by the core through the guarded client, with its size limit."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    filename: str = ""  # when the provider tells a better name than the message did
    content_type: str = ""
    # What an answer with this HTTP status means, in the words the agent reads (e.g. 404: the
    # provider deleted the file); other failures are reported by their status.
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    external_id: str
    sent_at: dt.datetime | None = None
    # Sent, but not to everyone (e.g. an email recipient refused): shown with the message.
    warning: str = ""


class CoreConnector(Protocol):
    key: str
    capabilities: Any  # loket.connectors.base.Capabilities

    def resolve_media(self, channel: Channel, ref: str) -> MediaSource: ...

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]: ...

    def send(self, channel: Channel, message: Message) -> SendResult: ...

    def contact_profile(self, channel: Channel, external_id: str) -> InboundContact | None: ...

    def sync_templates(self, channel: Channel) -> list[dict[str, Any]]: ...


_connectors: dict[str, CoreConnector] = {}


def install(connectors: dict[str, CoreConnector]) -> None:
    _connectors.clear()
    _connectors.update(connectors)


def connector_for(kind: str) -> CoreConnector:
    try:
        return _connectors[kind]
    except KeyError:
        raise LookupError(f"no connector is registered for channel kind {kind!r}") from None
