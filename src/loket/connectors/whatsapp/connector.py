"""The WhatsApp Business Cloud API channel: one business phone number of a WhatsApp Business
Account, through Meta's Graph API.

Inbound: Meta POSTs ``messages`` notifications to ``/hooks/whatsapp/<channel uuid>/``, signed
with the app secret (``X-Hub-Signature-256``); subscribing is Meta's ``hub.challenge``
handshake with the channel's verify token. Outbound: ``POST {graph}/{phone number id}/messages``
with the access token. Media: ``GET {graph}/{media id}``, then its URL with the same token.
See README.md beside this file for setting it up in Meta's developer console.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.connectors.base import (
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    MediaSource,
    MediaUnavailable,
    SendResult,
    SetupField,
    WebhookRequest,
    WebhookResponse,
)
from loket.connectors.meta import graph, webhooks
from loket.connectors.whatsapp import inbound
from loket.connectors.whatsapp.outbound import Sender
from loket.inbox.items import InboundItem
from loket.inbox.models import Channel, Message

log = logging.getLogger(__name__)

_ID = re.compile(r"\d{5,30}")
_TOKEN = re.compile(r"[^\s]{8,1024}")
CHECK_FIELDS = "display_phone_number,verified_name,quality_rating"
TEMPLATE_FIELDS = "name,language,status,category,components,id"
MAX_TEMPLATE_PAGES = 50
_SHOWN_SETTINGS = ("display_phone_number", "verified_name", "quality_rating")


class WhatsAppConnector(Connector):
    key = "whatsapp"
    label = _("WhatsApp")
    capabilities = Capabilities(
        text=True,
        media=True,
        templates=True,
        reply_window_hours=24,
        delivery_statuses=True,
        read_receipts=True,
        choices=10,  # up to 3 reply buttons, else a list of up to 10 rows
        choice_title_max=20,  # a button title (a list row shows 24)
    )
    setup_fields = (
        SetupField(
            "phone_number_id",
            _("Phone number ID"),
            help=_(
                "In Meta's developer console: your app → WhatsApp → API Setup, the ID shown"
                " under the business phone number (not the number itself)."
            ),
        ),
        SetupField(
            "business_account_id",
            _("WhatsApp Business Account ID"),
            help=_("Shown on the same API Setup page; Loket reads the message templates there."),
        ),
        SetupField(
            "access_token",
            _("Access token"),
            help=_(
                "A permanent token of a system user in Meta Business Settings with the"
                " whatsapp_business_messaging and whatsapp_business_management permissions."
            ),
            secret=True,
        ),
        SetupField(
            "app_secret",
            _("App secret"),
            help=_("Your app → App settings → Basic: used to check that webhooks come from Meta."),
            secret=True,
        ),
        SetupField(
            "verify_token",
            _("Webhook verify token"),
            help=_(
                "Any phrase you also enter in Meta's webhook settings. Leave it blank and Loket"
                " makes one up and shows it to you once."
            ),
            secret=True,
            required=False,
        ),
    )
    shows_webhook_url = True

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        fields = {field.name for field in self.setup_fields}
        unknown = set(config) - fields
        if unknown:
            raise InvalidConfig(
                gettext("unknown setting(s): %(names)s") % {"names": ", ".join(sorted(unknown))}
            )
        values = {name: str(config.get(name) or "").strip() for name in fields}
        for name, label in (
            ("phone_number_id", gettext("The phone number ID")),
            ("business_account_id", gettext("The WhatsApp Business Account ID")),
        ):
            if not _ID.fullmatch(values[name]):
                raise InvalidConfig(
                    gettext("%(field)s is a number of digits, as Meta's API Setup page shows it.")
                    % {"field": label}
                )
        kept = dict(existing.secrets) if existing is not None else {}
        stored: dict[str, str] = {}
        for name, label in (
            ("access_token", gettext("the access token")),
            ("app_secret", gettext("the app secret")),
            ("verify_token", gettext("the verify token")),
        ):
            value = values[name] or str(kept.get(name) or "")
            if value and not _TOKEN.fullmatch(value):
                raise InvalidConfig(
                    gettext("Check %(field)s: at least 8 characters, no spaces.") % {"field": label}
                )
            if value:
                stored[name] = value
        for name, label in (
            ("access_token", gettext("Enter the access token.")),
            ("app_secret", gettext("Enter the app secret.")),
        ):
            if name not in stored:
                raise InvalidConfig(label)
        shown_once: dict[str, Any] = {}
        if "verify_token" not in stored:
            stored["verify_token"] = secrets.token_urlsafe(24)
            shown_once["verify_token"] = stored["verify_token"]
        channel_settings = {
            "phone_number_id": values["phone_number_id"],
            "business_account_id": values["business_account_id"],
        }
        if (
            existing is not None
            and existing.settings.get("phone_number_id") == (values["phone_number_id"])
        ):
            channel_settings.update(
                {k: existing.settings[k] for k in _SHOWN_SETTINGS if k in existing.settings}
            )
        return ChannelSetup(settings=channel_settings, secrets=stored, shown_once=shown_once)

    @staticmethod
    def _graph(channel: Channel) -> graph.Graph:
        return graph.Graph(str(channel.secrets.get("access_token") or ""))

    def check_connection(self, channel: Channel) -> None:
        number_id = channel.settings.get("phone_number_id")
        info = graph.checking(lambda: self._graph(channel).get(number_id, fields=CHECK_FIELDS))
        found = {k: str(info[k])[:200] for k in _SHOWN_SETTINGS if info.get(k)}
        if found and any(channel.settings.get(k) != v for k, v in found.items()):
            channel.settings = {**channel.settings, **found}
            Channel.objects.filter(pk=channel.pk).update(settings=channel.settings)

    def channel_saved(self, channel: Channel) -> None:
        from loket.inbox.services import templates

        try:
            templates.sync(channel)
        except Exception as exc:  # templates can be synced later; the channel works without
            log.warning("syncing the templates of WhatsApp channel %s failed: %s", channel.pk, exc)

    # -- inbound --------------------------------------------------------------------------------
    def handshake(self, channel: Channel, request: WebhookRequest) -> WebhookResponse | None:
        return webhooks.handshake(channel, request)

    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        webhooks.verify(channel, request)

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        return inbound.parse(channel, body)

    def resolve_media(self, channel: Channel, ref: str) -> MediaSource:
        if not ref.isdigit():
            raise MediaUnavailable(f"not a WhatsApp media id: {ref[:40]!r}")
        client = self._graph(channel)
        answer = graph.fetching(lambda: client.get(ref))
        url = str(answer.get("url") or "")
        if urlsplit(url).scheme not in ("http", "https"):
            raise MediaUnavailable(gettext("WhatsApp gave no download address for the file."))
        return MediaSource(
            url,
            headers={"Authorization": f"Bearer {client.token}"},
            content_type=str(answer.get("mime_type") or ""),
        )

    # -- outbound -------------------------------------------------------------------------------
    def send(self, channel: Channel, message: Message) -> SendResult:
        return Sender(channel).send(message)

    def sync_templates(self, channel: Channel) -> list[dict[str, Any]]:
        client = self._graph(channel)
        account = channel.settings.get("business_account_id")
        path: str | None = f"{account}/message_templates?fields={TEMPLATE_FIELDS}&limit=100"
        found: list[dict[str, Any]] = []
        for _page in range(MAX_TEMPLATE_PAGES):
            answer = graph.checking(lambda p=path: client.request("GET", p))
            for spec in answer.get("data") or []:
                if isinstance(spec, dict) and spec.get("name"):
                    found.append(
                        {
                            "name": str(spec["name"]),
                            "language": str(spec.get("language") or ""),
                            "category": str(spec.get("category") or ""),
                            "status": str(spec.get("status") or ""),
                            "external_id": str(spec.get("id") or ""),
                            "components": spec.get("components") or [],
                        }
                    )
            path = _next_page(answer)
            if path is None:
                break
        return found


def _next_page(answer: dict[str, Any]) -> str | None:
    """The path of the next page, only when Meta's ``paging.next`` points at the same Graph
    API (the token goes along with it)."""
    following = str((answer.get("paging") or {}).get("next") or "")
    if not following:
        return None
    base = urlsplit(settings.LOKET_META_GRAPH_URL.rstrip("/"))
    target = urlsplit(following)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        log.warning("ignoring a template page on another host: %s", target.netloc)
        return None
    path = target.path
    if base.path and not path.startswith(base.path + "/"):
        return None
    path = path[len(base.path) :].lstrip("/")
    version, _slash, rest = path.partition("/")
    if not re.fullmatch(r"v\d+(\.\d+)?", version) or not rest:
        return None
    return rest + (f"?{target.query}" if target.query else "")
