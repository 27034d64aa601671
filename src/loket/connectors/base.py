"""The connector contract. A connector is the only code that knows a provider's formats."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from django.utils.translation import gettext

from loket.inbox.items import InboundContact, InboundItem
from loket.inbox.models import Channel, Message
from loket.inbox.ports import (  # re-exported: a connector needs only this module
    BadPayload,
    MediaSource,
    MediaUnavailable,
    PermanentSendError,
    ProviderUnavailable,
    SendResult,
    TransientSendError,
)

__all__ = [
    "BadPayload",
    "Capabilities",
    "ChannelSetup",
    "Connector",
    "InvalidConfig",
    "MediaSource",
    "MediaUnavailable",
    "PermanentSendError",
    "ProviderUnavailable",
    "SendResult",
    "SetupField",
    "TransientSendError",
    "WebhookRejected",
    "WebhookRequest",
    "WebhookResponse",
    "attachment_bytes",
]


@dataclass(frozen=True)
class Capabilities:
    text: bool = True
    html: bool = False
    media: bool = False
    templates: bool = False
    # Free text only this long after the customer's last message (WhatsApp, Messenger: 24);
    # after it, only templates (WhatsApp) or a human-agent tagged reply until
    # ``tagged_window_hours`` (Messenger, Instagram: 168). See loket.inbox.services.windows.
    reply_window_hours: int | None = None
    tagged_window_hours: int | None = None
    typing: bool = False
    read_receipts: bool = False
    delivery_statuses: bool = False
    copies: bool = False  # replies can be copied to more people (email Cc/Bcc)
    # Webhooks carry no sender name; the connector can look the profile up (contact_profile).
    profiles: bool = False
    # Choices (buttons, quick replies, lists; see loket.inbox.services.choices): how many
    # options the channel shows natively (0: none, they go out as numbered text) and the
    # longest option title it shows (0: no limit).
    choices: int = 0
    choice_title_max: int = 0


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str  # as the provider saw it (scheme and host after proxy headers)
    path: str
    query_string: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class WebhookRejected(Exception):
    """Verification failed: nothing is stored. 401 (bad or missing credentials) or 403.
    ``headers`` go on the answer (e.g. a Basic auth challenge some providers wait for)."""

    def __init__(self, reason: str, status: int = 401, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers or {}


def attachment_bytes(attachment) -> bytes:
    """A stored attachment's content for sending; PermanentSendError naming the file when the
    storage no longer has it (never the storage path)."""
    try:
        with attachment.file.open("rb") as handle:
            return handle.read()
    except (OSError, ValueError):
        raise PermanentSendError(
            gettext("%(name)s could not be read from Loket's storage.")
            % {"name": attachment.filename}
        ) from None


@dataclass(frozen=True)
class SetupField:
    """One thing an admin enters to connect a channel; the settings page and the API build their
    forms from a connector's ``setup_fields``. A secret is never shown again: left blank when
    editing, the stored value stays."""

    name: str
    label: str
    help: str = ""
    secret: bool = False
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()  # a select instead of a text box
    initial: str = ""


class InvalidConfig(ValueError):
    """Channel settings an admin gave that cannot work; the message says what to fix."""


@dataclass(frozen=True)
class ChannelSetup:
    settings: dict[str, Any]
    secrets: dict[str, Any]
    # Values shown once to the admin who created the channel (e.g. a generated signing secret).
    shown_once: dict[str, Any] = field(default_factory=dict)


class Connector(abc.ABC):
    """``handshake``, ``verify`` and ``journal_meta`` run on the web server's event loop for
    known channels: they must not touch the database or the network (the channel, with its
    decrypted secrets, is given). ``parse`` runs in the storing transaction; ``send`` in a
    worker."""

    key: str  # the channel kind, used in URLs: /hooks/<key>/<channel uuid>/
    label: str
    capabilities: Capabilities = Capabilities()
    # What the generic "add channel" form asks (connectors with a form of their own leave it
    # empty), and whether the admin pastes Loket's webhook URL into the provider's console.
    setup_fields: tuple[SetupField, ...] = ()
    shows_webhook_url: bool = False

    @abc.abstractmethod
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        """Validate what an admin entered and split it into settings and encrypted secrets."""

    def public_settings(self, channel: Channel) -> dict[str, Any]:
        """Settings safe to show through the API (never secrets)."""
        return dict(channel.settings)

    def handshake(self, channel: Channel, request: WebhookRequest) -> WebhookResponse | None:
        """Answer a provider's subscription check (e.g. Meta's hub.challenge); None if unused."""
        return None

    @abc.abstractmethod
    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        """Raise WebhookRejected unless the request provably comes from the provider."""

    def journal_meta(self, request: WebhookRequest) -> dict[str, Any]:
        """What parse() needs from the request besides the body (kept in the journal)."""
        return {"content_type": request.content_type}

    @abc.abstractmethod
    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        """Turn a verified payload into normalised items; unknown kinds become Ignored.
        Raise BadPayload for a body that cannot be understood."""

    @abc.abstractmethod
    def send(self, channel: Channel, message: Message) -> SendResult:
        """Deliver one outbound message. Raise TransientSendError or PermanentSendError."""

    def check_connection(self, channel: Channel) -> None:  # noqa: B027 - optional
        """Raise InvalidConfig with a clear reason when the channel cannot work."""

    def channel_saved(self, channel: Channel) -> None:  # noqa: B027 - optional
        """After an admin created or reconfigured the channel (e.g. register the webhook with
        the provider). Raise InvalidConfig to tell the admin what went wrong."""

    def resolve_media(self, channel: Channel, ref: str) -> MediaSource:
        """Where to download a media reference this connector put in an InboundAttachment
        (``media_ref``). Raise MediaUnavailable (transient or not)."""
        raise MediaUnavailable(f"the {self.key} channel cannot fetch media references")

    def contact_profile(self, channel: Channel, external_id: str) -> InboundContact | None:
        """The sender's profile from the provider (name, locale...), for connectors with
        ``capabilities.profiles``; run by a background job after a new contact arrived without
        a name. Raise ProviderUnavailable(transient=True) to be asked again later."""
        return None

    def sync_templates(self, channel: Channel) -> list[dict[str, Any]]:
        """The provider's message templates: dicts with name, language, category, status,
        external_id, components. Only for connectors with ``capabilities.templates``."""
        raise InvalidConfig(f"the {self.key} channel has no message templates")

    def conversation_opened(self, conversation) -> None:  # noqa: B027 - optional
        """An agent has the conversation open (e.g. the customer then sees it was seen)."""

    def sidebar(self, conversation) -> dict[str, Any] | None:
        """What this channel knows about the customer for the agent's sidebar, or None."""
        return None

    def acknowledge(self, channel: Channel, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(200, b'{"status":"ok"}')
