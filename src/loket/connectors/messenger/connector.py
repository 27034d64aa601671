"""Facebook Messenger: a Facebook Page's conversations through Meta's Messenger Platform.

Inbound: Meta POSTs ``{"object": "page", "entry": [{"id": <page id>, "messaging": [...]}]}``
to ``/hooks/messenger/<channel uuid>/``, signed with the app secret (``X-Hub-Signature-256``);
the subscription check is ``hub.challenge`` with the channel's verify token (loket.connectors.meta).
Outbound: ``POST {graph}/v21.0/me/messages`` with the page access token; files as a multipart
upload (``filedata``) in the same call. See README.md beside this file.

The Instagram connector (loket.connectors.instagram) is this one with a few differences.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import mimetypes
import posixpath
import re
import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.connectors.base import (
    BadPayload,
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    PermanentSendError,
    ProviderUnavailable,
    SendResult,
    SetupField,
    WebhookRequest,
    WebhookResponse,
    attachment_bytes,
)
from loket.connectors.meta import graph, webhooks
from loket.connectors.payload import as_dict as _dict
from loket.connectors.payload import as_list as _list
from loket.connectors.text import split_text
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    Reaction,
    StatusUpdate,
)
from loket.inbox.models import (
    AttachmentStatus,
    Channel,
    ContactIdentity,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services import choices, outbound, windows
from loket.jobs.policy import RetryLater, job

log = logging.getLogger(__name__)

# The webhook fields a Page is subscribed to (POST /{page id}/subscribed_apps).
PAGE_FIELDS = (
    "messages",
    "messaging_postbacks",
    "message_reactions",
    "message_edits",
    "message_deliveries",
    "message_reads",
)

# Messenger's reaction names, for a reaction event that names one without its emoji.
REACTION_EMOJI = {
    "like": "\U0001f44d",
    "love": "\u2764\ufe0f",
    "smile": "\U0001f606",
    "wow": "\U0001f62e",
    "sad": "\U0001f622",
    "angry": "\U0001f620",
}

# Meta allows sender actions (mark_seen) only within the 24-hour window.
SEEN_WINDOW = dt.timedelta(hours=24)

# Where send() keeps the ids of the parts of a message already accepted by Meta (text, each
# file), so a retry after a failure half-way does not send the first parts again.
SENT_PARTS = "sent_parts"
# Quick replies (Send API): at most 13, title 20 characters, payload 1000.
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000

_DIGITS = re.compile(r"^[0-9]{5,32}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")


def _when(milliseconds: Any) -> dt.datetime | None:
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(milliseconds / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _id(value: Any) -> str:
    """An id from the payload: Meta sends them as strings (sometimes as numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)[:255]


def _text(value: Any, limit: int = 65536) -> str:
    return value[:limit] if isinstance(value, str) else ""


# A name and type for a file whose URL does not end in a file name (Instagram's lookaside URLs),
# by the attachment's kind. Loket keeps the type given here (not the CDN's Content-Type).
_DEFAULT_FILES = {
    "image": ("image.jpg", "image/jpeg"),
    "video": ("video.mp4", "video/mp4"),
    "audio": ("audio.mp4", "audio/mp4"),
    "share": ("post.jpg", "image/jpeg"),
    "reel": ("reel.mp4", "video/mp4"),
    "ig_reel": ("reel.mp4", "video/mp4"),
}


def _filename(url: str, kind: str) -> tuple[str, str]:
    """A file name and content type for a CDN URL (Messenger's URLs end in the file's name)."""
    name = unquote(posixpath.basename(urlsplit(url).path))[:200]
    if not name or "." not in name.strip("."):
        return _DEFAULT_FILES.get(kind, (f"{kind or 'attachment'}", "application/octet-stream"))
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind == "audio" and guessed.startswith("video/"):
        guessed = "audio/" + guessed.split("/", 1)[1]  # voice clips come as .mp4
    return name, guessed


@job(retries=3, backoff_base=5.0, backoff_cap=120.0)
def mark_seen(conversation_id: int) -> str:
    """Tell Meta the customer's messages were seen (the customer sees "Seen")."""
    from loket.inbox import ports

    conversation = Conversation.objects.select_related("channel").filter(pk=conversation_id).first()
    if conversation is None:
        return "gone"
    return ports.connector_for(conversation.channel.kind).mark_seen(conversation)


def _outgoing_kind(content_type: str) -> str:
    major = (content_type or "").split("/", 1)[0].lower()
    return major if major in ("image", "video", "audio") else "file"


def _check_page(me: dict[str, Any], page_id: str | None) -> None:
    """The token's Page (GET /me) is the configured one."""
    other = _id(me.get("id"))
    if page_id and other and other != page_id:
        raise InvalidConfig(
            gettext(
                "The access token belongs to Page %(other)s, not to Page %(page)s: use a Page"
                " access token of this Page."
            )
            % {"other": other, "page": page_id}
        )


class MessengerConnector(Connector):
    key = "messenger"
    label = _("Facebook Messenger")
    capabilities = Capabilities(
        text=True,
        media=True,
        reply_window_hours=24,
        tagged_window_hours=168,
        delivery_statuses=True,
        read_receipts=True,
        profiles=True,
        choices=13,  # quick replies
        choice_title_max=20,
    )
    shows_webhook_url = True
    setup_fields = (
        SetupField(
            "page_id",
            _("Facebook Page ID"),
            help=_("The number in the Page's About section (Page transparency), or in Meta's app"
                   " dashboard next to the Page."),
        ),
        SetupField(
            "page_access_token",
            _("Page access token"),
            help=_("A long-lived Page access token with pages_messaging, made in the app"
                   " dashboard (Messenger API settings) or for a system user."),
            secret=True,
        ),
        SetupField(
            "app_secret",
            _("App secret"),
            help=_("App settings > Basic in Meta's app dashboard; Loket checks every delivery's"
                   " signature with it."),
            secret=True,
        ),
        SetupField(
            "verify_token",
            _("Webhook verify token"),
            help=_("Leave blank and Loket makes one (shown once); paste it with the webhook URL"
                   " into the app's Messenger webhook settings."),
            secret=True,
            required=False,
        ),
    )  # fmt: skip

    # What differs on Instagram (overridden there).
    webhook_object = "page"
    account_setting = "page_id"  # the setting holding the id that entry.id must match
    inbound_attachment_kinds = frozenset({"image", "video", "audio", "file"})
    profile_fields = "first_name,last_name,profile_pic"
    subscribed_fields: tuple[str, ...] = PAGE_FIELDS

    # -- setup ----------------------------------------------------------------------------------
    def _account_ids(self, config: dict[str, Any]) -> dict[str, str]:
        page_id = str(config.get("page_id") or "").strip()
        if not _DIGITS.match(page_id):
            raise InvalidConfig(gettext("The Page ID is the Page's number (digits only)."))
        return {"page_id": page_id}

    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        known = {field.name for field in self.setup_fields}
        unknown = set(config) - known
        if unknown:
            raise InvalidConfig(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = self._account_ids(config)
        if existing is not None:
            # Keep what Meta told us about the account until the connection check updates it.
            settings = {**existing.settings, **settings}
        stored = dict(existing.secrets) if existing is not None else {}
        secret_values: dict[str, str] = {}
        labels = {spec.name: spec.label for spec in self.setup_fields}
        for name in ("page_access_token", "app_secret"):
            value = str(config.get(name) or "").strip()
            if value and not _TOKEN.match(value):
                raise InvalidConfig(gettext("%(field)s: no spaces, at most 512 characters.")
                                    % {"field": labels[name]})  # fmt: skip
            secret_values[name] = value or str(stored.get(name) or "")
            if not secret_values[name]:
                raise InvalidConfig(gettext("%(field)s is required.") % {"field": labels[name]})
        shown_once: dict[str, str] = {}
        verify_token = str(config.get("verify_token") or "").strip()
        if verify_token and not _TOKEN.match(verify_token):
            raise InvalidConfig(gettext("The verify token must be printable, without spaces."))
        if not verify_token:
            verify_token = str(stored.get("verify_token") or "")
        if not verify_token:
            verify_token = secrets.token_urlsafe(24)
            shown_once["verify_token"] = verify_token
        secret_values["verify_token"] = verify_token
        return ChannelSetup(settings=settings, secrets=secret_values, shown_once=shown_once)

    def _graph(self, channel: Channel) -> graph.Graph:
        return graph.Graph(str(channel.secrets.get("page_access_token") or ""))

    def check_connection(self, channel: Channel) -> None:
        """The token works and belongs to the Page; keeps the Page's name in the settings."""
        me = graph.checking(lambda: self._graph(channel).get("me", fields="id,name"))
        page_id = channel.settings.get("page_id")
        _check_page(me, page_id)
        self._remember(channel, {"page_name": _text(me.get("name"), 200)})

    def _remember(self, channel: Channel, values: dict[str, Any]) -> None:
        changed = {k: v for k, v in values.items() if channel.settings.get(k) != v}
        if changed and channel.pk:
            channel.settings = {**channel.settings, **changed}
            channel.save(update_fields=["settings"])

    def channel_saved(self, channel: Channel) -> None:
        """Check the token, then subscribe the Page to this app's webhook fields (without it
        Meta sends nothing, even with the webhook URL set in the app)."""
        self.check_connection(channel)
        if self.subscribed_fields:
            page_id = channel.settings["page_id"]
            graph.checking(
                lambda: self._graph(channel).request(
                    "POST",
                    f"{page_id}/subscribed_apps",
                    params={"subscribed_fields": ",".join(self.subscribed_fields)},
                )
            )

    def fetch_profile(self, channel: Channel, user_id: str) -> dict[str, Any]:
        """The customer's profile (name, picture) from Meta; MediaUnavailable (a
        ProviderUnavailable, transient for throttling and outages) when Meta does not give it.
        Never called by parse(), which runs in the storing transaction without network."""
        return graph.fetching(lambda: self._graph(channel).get(user_id, fields=self.profile_fields))

    def contact_profile(self, channel: Channel, external_id: str) -> InboundContact | None:
        try:
            found = self.fetch_profile(channel, external_id)
        except ProviderUnavailable as exc:
            if exc.transient:
                raise  # asked again later by the background job
            return None  # no permission for profiles, or the person is gone: keep the id only
        name = (
            " ".join(
                str(found.get(key) or "").strip() for key in ("first_name", "last_name", "name")
            ).strip()
            or str(found.get("username") or "").strip()
        )
        return InboundContact(external_id, name=name[:200])

    # -- inbound --------------------------------------------------------------------------------
    def handshake(self, channel: Channel, request: WebhookRequest) -> WebhookResponse | None:
        return webhooks.handshake(channel, request)

    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        webhooks.verify(channel, request)

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadPayload("body must be a JSON object")
        kind = payload.get("object")
        if kind != self.webhook_object:
            return [Ignored(f"not a {self.webhook_object} notification: {str(kind)[:40]!r}")]
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise BadPayload("'entry' must be a list")
        account = str(channel.settings.get(self.account_setting) or "")
        items: list[InboundItem] = []
        for entry in entries:
            entry = _dict(entry)
            entry_id = _id(entry.get("id"))
            if account and entry_id != account:
                items.append(Ignored(f"an entry for another account ({entry_id[:40]})"))
                continue
            events = _list(entry.get("messaging"))
            # Events that reached us as the secondary receiver (another app, e.g. the Page
            # inbox, controls the thread): the customer's messages all the same.
            events += _list(entry.get("standby"))
            if not events:
                items.append(Ignored("an entry without messaging events (e.g. changes)"))
            for event in events:
                items.extend(self._event(channel, _dict(event), entry_id))
        return items or [Ignored("no entries")]

    def _event(self, channel: Channel, event: dict[str, Any], account: str) -> list[InboundItem]:
        sender = _id(_dict(event.get("sender")).get("id"))
        at = _when(event.get("timestamp"))
        if "message" in event:
            message = _dict(event["message"])
            if message.get("is_echo") or (sender and sender == account):
                # Our own messages coming back, and those a person sent from the Page inbox or
                # another app: the latter could be imported as outbound messages one day.
                return [Ignored("an echo of a message the Page sent")]
            if not sender:
                return [Ignored("a message without a sender")]
            if message.get("is_deleted"):
                return self._deletion(message, at)
            return [self._message(sender, message, at)]
        if not sender:
            return [Ignored("an event without a sender")]
        if "postback" in event:
            return [self._postback(sender, _dict(event["postback"]), event)]
        if "reaction" in event:
            return self._reaction(sender, _dict(event["reaction"]), at)
        if "message_edit" in event:
            edit = _dict(event["message_edit"])
            mid = _id(edit.get("mid"))
            if not mid:
                return [Ignored("an edit without a message id")]
            return [MessageEdit(mid, _text(edit.get("text")), at)]
        if "delivery" in event:
            return self._delivery(channel, sender, _dict(event["delivery"]), at)
        if "read" in event:
            return self._read(channel, sender, _dict(event["read"]), at)
        known = [k for k in event if k not in ("sender", "recipient", "timestamp")]
        return [Ignored(f"unhandled event {', '.join(sorted(known))[:80] or '(empty)'}")]

    def _deletion(self, message: dict[str, Any], at) -> list[InboundItem]:
        mid = _id(message.get("mid"))
        return [MessageDeletion(mid, at)] if mid else [Ignored("a deletion without a message id")]

    def _message(self, sender: str, message: dict[str, Any], at) -> InboundItem:
        mid = _id(message.get("mid"))
        if not mid:
            return Ignored("a message without a message id")
        text = _text(message.get("text"))
        data: dict[str, Any] = {}
        files: list[InboundAttachment] = []
        notes: list[str] = []
        for attachment in _list(message.get("attachments")):
            self._attachment(_dict(attachment), files, data, notes)
        if message.get("sticker_id") and "sticker" not in data:
            data["sticker"] = True
            data.setdefault("provider", {})["sticker_id"] = _id(message.get("sticker_id"))
        quick_reply = _dict(message.get("quick_reply"))
        if quick_reply.get("payload") is not None:
            data["choice"] = {"id": _text(quick_reply.get("payload"), 1000), "title": text}
        reply_to = _dict(message.get("reply_to"))
        story = _dict(reply_to.get("story"))
        if story:
            data.setdefault("provider", {})["story_reply"] = {
                "id": _id(story.get("id")),
                "url": _text(story.get("url"), 2000),
            }
        if not text:
            text = "\n".join(notes)
        if not text and not files and not data:
            text = gettext("[A message Loket cannot show]")
            data["unsupported"] = "empty"
        return InboundMessage(
            external_id=mid,
            contact=InboundContact(external_id=sender),
            text=text,
            sent_at=at,
            attachments=tuple(files),
            data=data,
            reply_to=_id(reply_to.get("mid")),
        )

    def _attachment(self, attachment: dict, files: list, data: dict, notes: list) -> None:
        kind = _text(attachment.get("type"), 40)
        payload = _dict(attachment.get("payload"))
        url = _text(payload.get("url"), 2000)
        downloadable = url.startswith(("https://", "http://"))
        if payload.get("sticker_id"):
            data["sticker"] = True
            data.setdefault("provider", {})["sticker_id"] = _id(payload.get("sticker_id"))
            notes.append(gettext("[Sticker]"))
        if kind == "location" or payload.get("coordinates"):
            coordinates = _dict(payload.get("coordinates"))
            title = _text(attachment.get("title") or payload.get("title"), 200)
            data["location"] = {
                "latitude": coordinates.get("lat"),
                "longitude": coordinates.get("long"),
                "name": title,
                "address": "",
                "url": _text(attachment.get("url") or url, 2000),
            }
            notes.append(gettext("Location: %(where)s") % {
                "where": title or f"{coordinates.get('lat')}, {coordinates.get('long')}"
            })  # fmt: skip
            return
        if kind in self.inbound_attachment_kinds and downloadable:
            filename, content_type = _filename(url, kind)
            files.append(InboundAttachment(filename=filename, content_type=content_type, url=url))
            note = self._attachment_note(kind, payload)
            if note:
                notes.append(note)
                data.setdefault("provider", {}).setdefault("shared", []).append(
                    {"type": kind, **self._shared_details(payload)}
                )
            return
        if kind == "fallback" and (url or attachment.get("title")):
            # A shared link Meta shows as a preview card.
            title = _text(attachment.get("title") or payload.get("title"), 300)
            link = _text(attachment.get("url") or url, 2000)
            notes.append(" ".join(part for part in (title, link) if part))
            data.setdefault("provider", {})["link"] = {"title": title, "url": link}
            return
        notes.append(gettext("[%(kind)s: not shown in Loket]") % {"kind": kind or "?"})
        data["unsupported"] = kind or "attachment"
        if payload:
            data.setdefault("provider", {})["attachment"] = self._shared_details(payload)

    def _attachment_note(self, kind: str, payload: dict[str, Any]) -> str:
        """Words for an attachment that is more than a file (an Instagram story, post, reel)."""
        return ""

    @staticmethod
    def _shared_details(payload: dict[str, Any]) -> dict[str, Any]:
        keep = ("id", "title", "reel_video_id", "url")
        return {k: str(payload[k])[:2000] for k in keep if payload.get(k) not in (None, "")}

    def _postback(self, sender: str, postback: dict[str, Any], event: dict) -> InboundItem:
        title = _text(postback.get("title"), 1000)
        choice = _text(postback.get("payload"), 1000)
        mid = _id(postback.get("mid"))
        if not mid:
            # Older postbacks carry no message id: one made of what identifies the tap, so a
            # repeated delivery is still recognised.
            seed = f"{sender}|{event.get('timestamp')}|{choice}".encode()
            mid = "postback:" + hashlib.sha256(seed).hexdigest()[:40]
        return InboundMessage(
            external_id=mid,
            contact=InboundContact(external_id=sender),
            text=title or choice,
            sent_at=_when(event.get("timestamp")),
            data={"choice": {"id": choice, "title": title}},
        )

    def _reaction(self, sender: str, reaction: dict[str, Any], at) -> list[InboundItem]:
        mid = _id(reaction.get("mid"))
        if not mid:
            return [Ignored("a reaction without a message id")]
        emoji = ""
        if reaction.get("action") != "unreact":
            emoji = _text(reaction.get("emoji"), 32) or REACTION_EMOJI.get(
                _text(reaction.get("reaction"), 32), ""
            )
            if not emoji:
                return [Ignored("a reaction without an emoji")]
        return [Reaction(mid, InboundContact(external_id=sender), emoji, at)]

    # Delivery and read reports. Meta reports the Page's messages to one person: a delivery
    # names message ids (not always) and a watermark; a Messenger read has only the watermark,
    # "every message sent up to this time was read". parse() may read the database (it runs in
    # the storing transaction), so the watermark is matched against the messages Loket sent to
    # that person, by the time each was handed to Meta (send() records it as sent_at).
    def _sent_to(self, channel: Channel, person: str):
        contacts = ContactIdentity.objects.filter(channel=channel, external_id=person).values(
            "contact_id"
        )
        return Message.objects.filter(
            channel=channel,
            direction=Direction.OUTBOUND,
            kind=MessageKind.MESSAGE,
            conversation__contact_id__in=contacts,
        )

    def _watermarked(self, channel, person, watermark, statuses) -> list[str]:
        if watermark is None:
            return []
        return list(
            self._sent_to(channel, person)
            .filter(status__in=statuses, external_id__isnull=False, sent_at__lte=watermark)
            .order_by("-sent_at")
            .values_list("external_id", flat=True)[:200]
        )

    def _delivery(self, channel, person: str, delivery: dict, at) -> list[InboundItem]:
        watermark = _when(delivery.get("watermark"))
        ids = dict.fromkeys(self._watermarked(channel, person, watermark, (DeliveryStatus.SENT,)))
        mids = [_id(m) for m in _list(delivery.get("mids")) if _id(m)]
        if mids:
            sent = self._sent_to(channel, person)
            known = set(sent.filter(external_id__in=mids).values_list("external_id", flat=True))
            # A report can overtake the recording of the send it reports on: while a message to
            # this person is being sent, an unknown id is passed on and the core retries it.
            in_flight = sent.filter(status=DeliveryStatus.SENDING).exists()
            ids.update(dict.fromkeys(m for m in mids if m in known or in_flight))
        if not ids:
            return [Ignored("a delivery report for messages not sent from Loket")]
        return [StatusUpdate(mid, DeliveryStatus.DELIVERED, at=at) for mid in ids]

    def _read(self, channel, person: str, read: dict, at) -> list[InboundItem]:
        watermark = _when(read.get("watermark"))
        if watermark is None and read.get("mid"):
            # Instagram names the message read: it and everything sent before it are read.
            target = (
                self._sent_to(channel, person)
                .filter(external_id=_id(read.get("mid")))
                .values_list("sent_at", flat=True)
                .first()
            )
            watermark = target
        ids = self._watermarked(
            channel, person, watermark, (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
        )
        if not ids:
            return [Ignored("a read report with no unread message sent from Loket")]
        return [StatusUpdate(mid, DeliveryStatus.READ, at=at) for mid in ids]

    # -- seen ---------------------------------------------------------------------------------
    def conversation_opened(self, conversation) -> None:
        """An agent has the conversation open: the customer sees their messages "Seen", once
        per message of theirs, while Meta allows it (24 hours) and before the team answered."""
        last = conversation.last_inbound_at
        if last is None or timezone.now() - last > SEEN_WINDOW:
            return
        if conversation.last_outbound_at and conversation.last_outbound_at >= last:
            return  # answered: the reply already shows it was read
        key = f"loket:{self.key}:seen:{conversation.pk}:{last.timestamp():.6f}"
        try:
            if cache.add(key, True, timeout=int(SEEN_WINDOW.total_seconds())):
                mark_seen.enqueue(conversation.pk)
        except Exception:  # never in the way of opening a conversation
            log.warning("could not queue mark_seen for conversation %s", conversation.pk)

    def mark_seen(self, conversation: Conversation) -> str:
        recipient = (
            ContactIdentity.objects.filter(
                contact_id=conversation.contact_id, channel_id=conversation.channel_id
            )
            .values_list("external_id", flat=True)
            .first()
        )
        if not recipient:
            return "no recipient"
        body = {"recipient": {"id": recipient}, "sender_action": "mark_seen"}
        try:
            self._graph(conversation.channel).post("me/messages", body)
        except graph.GraphError as exc:
            if exc.transient:
                raise RetryLater(exc.plain(), exc.retry_after) from exc
            log.info("mark_seen refused for conversation %s: %s", conversation.pk, exc.plain())
            return f"refused: {exc.plain()}"
        except httpx.HTTPError as exc:
            raise RetryLater(f"could not reach Meta: {exc}") from exc
        return "seen"

    # -- outbound -------------------------------------------------------------------------------
    @staticmethod
    def text_fits(text: str) -> bool:
        """Whether one message can carry this text (Messenger: 2,000 characters; a longer
        reply goes out as several messages)."""
        return len(text) <= 2000

    def _routing(self, message: Message) -> dict[str, str]:
        window = windows.reply_window(message.conversation)
        if not window.free_text:
            raise PermanentSendError(window.notice)
        if window.tag:
            return {"messaging_type": "MESSAGE_TAG", "tag": window.tag}
        return {"messaging_type": "RESPONSE"}

    def _files(self, message: Message) -> list:
        files = list(message.attachments.order_by("pk"))
        for attachment in files:
            if attachment.status != AttachmentStatus.STORED or not attachment.file:
                raise PermanentSendError(
                    gettext("The file %(name)s could not be stored, so it cannot be sent.")
                    % {"name": attachment.filename}
                )
        return files

    def send(self, channel: Channel, message: Message) -> SendResult:
        recipient = outbound.recipient_id(message)
        if not recipient:
            raise PermanentSendError(
                gettext("This customer has no %(channel)s id on this channel to reply to.")
                % {"channel": self.label}
            )
        routing = self._routing(message)
        files = self._files(message)
        client = self._graph(channel)
        done: dict[str, Any] = dict((message.data or {}).get(SENT_PARTS) or {})

        def record(part: str, mid: str, started: dt.datetime) -> None:
            done[part] = mid
            done.setdefault("at", started.isoformat())
            outbound.keep_on_message(message, SENT_PARTS, dict(done))

        quick_replies = self._quick_replies(message)

        def send_files() -> None:
            for attachment in files:
                part = f"file:{attachment.pk}"
                if part in done:
                    continue
                started = timezone.now()
                answer = graph.sending(
                    lambda a=attachment: self._send_file(client, recipient, routing, a)
                )
                record(part, self._message_id(answer), started)

        if quick_replies:
            send_files()  # quick replies show under the last message: the files go first
        chunks = split_text(message.text or "", self.text_fits)
        if quick_replies and not chunks:
            chunks = [choices.prompt_of(message)]
        for number, chunk in enumerate(chunks):
            part = "text" if number == 0 else f"text:{number + 1}"
            if part in done:
                continue
            started = timezone.now()
            content: dict[str, Any] = {"text": chunk}
            if quick_replies and number == len(chunks) - 1:
                content["quick_replies"] = quick_replies
            body = {"recipient": {"id": recipient}, **routing, "message": content}
            answer = graph.sending(lambda body=body: client.post("me/messages", body))
            record(part, self._message_id(answer), started)
        if not quick_replies:
            send_files()
        first = done.get("text") or next((v for k, v in done.items() if k.startswith("file:")), "")
        if not first:
            raise PermanentSendError(gettext("The message has no text or file to send."))
        return SendResult(external_id=first, sent_at=dt.datetime.fromisoformat(done["at"]))

    def _quick_replies(self, message: Message) -> list[dict[str, str]]:
        """The choices as quick replies (up to 13; title 20 characters, payload 1000)."""
        items = choices.native_choices(message)
        if len(items) > QUICK_REPLIES_MAX:
            raise PermanentSendError(
                gettext("%(channel)s shows at most %(count)d options; this message has %(given)d.")
                % {"channel": self.label, "count": QUICK_REPLIES_MAX, "given": len(items)}
            )
        if any(len(item["id"]) > QUICK_REPLY_PAYLOAD_MAX for item in items):
            raise PermanentSendError(
                gettext("An option's id is longer than %(channel)s allows (1000).")
                % {"channel": self.label}
            )
        return [
            {
                "content_type": "text",
                "title": choices.shorten(item["title"], QUICK_REPLY_TITLE_MAX),
                "payload": item["id"],
            }
            for item in items
        ]

    @staticmethod
    def _message_id(answer: dict[str, Any]) -> str:
        mid = _id(answer.get("message_id"))
        if not mid:
            raise PermanentSendError(gettext("Meta accepted the message without giving its id."))
        return mid

    def _send_file(self, client: graph.Graph, recipient: str, routing: dict, attachment) -> dict:
        """Upload and send in one multipart request (Send API, ``filedata``)."""
        content = attachment_bytes(attachment)
        kind = _outgoing_kind(attachment.content_type)
        form = {
            "recipient": json.dumps({"id": recipient}),
            **routing,
            "message": json.dumps(
                {"attachment": {"type": kind, "payload": {"is_reusable": False}}}
            ),
        }
        return client.request(
            "POST",
            "me/messages",
            data=form,
            files={"filedata": (attachment.filename, content, attachment.content_type)},
        )
