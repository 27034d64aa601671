"""Twilio Programmable Messaging: SMS and MMS (and WhatsApp through Twilio) as a channel.

Inbound: Twilio POSTs form-encoded messages and status callbacks to
``/hooks/twilio/<channel uuid>/``, signed in ``X-Twilio-Signature`` with the account's auth
token. Outbound: ``POST {api}/2010-04-01/Accounts/{sid}/Messages.json`` with the channel's
webhook as the status callback. See README.md beside this file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import re
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.connectors import public_media
from loket.connectors.base import (
    BadPayload,
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    MediaSource,
    MediaUnavailable,
    PermanentSendError,
    SendResult,
    SetupField,
    TransientSendError,
    WebhookRejected,
    WebhookRequest,
    WebhookResponse,
)
from loket.connectors.twilio.client import ApiError, TwilioClient, Unreachable, on_api_host
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    StatusUpdate,
)
from loket.inbox.models import AttachmentStatus, Channel, DeliveryStatus, Message
from loket.inbox.services import outbound

SIGNATURE_HEADER = "x-twilio-signature"
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
AUTH_TOKEN = re.compile(r"[0-9a-f]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
MAX_MEDIA = 10  # Twilio takes at most 10 MediaUrl per message and sends at most 10 inbound
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio's message statuses (MessageStatus in status callbacks) and what Loket makes of them.
# queued/accepted/scheduled/sending come before "sent" and are not worth a journal retry when
# they arrive before the send call has returned.
_STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,  # WhatsApp through Twilio
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
_INTERIM_STATUSES = {"queued", "accepted", "scheduled", "sending", "receiving"}

# Error codes, in words an agent can act on (https://www.twilio.com/docs/api/errors).
_ERRORS = {
    20003: _("Twilio refused the credentials: the account SID or auth token is wrong."),
    20404: _("Twilio does not know the account or messaging service this channel uses."),
    20429: _("Twilio is limiting how fast this account sends; it will be tried again."),
    21211: _("The recipient's phone number is not valid."),
    21212: _("The channel's phone number is not a valid sender number."),
    21408: _(
        "Sending to this country is not enabled for the Twilio account "
        "(Messaging geographic permissions in the Twilio console)."
    ),
    21608: _("A Twilio trial account can only send to phone numbers verified in the console."),
    21606: _("The channel's phone number cannot send messages to this recipient."),
    21610: _(
        "The recipient has unsubscribed (they replied STOP); they must text START before "
        "they can be sent messages again."
    ),
    21612: _("Twilio cannot route a message from this number to the recipient's number."),
    21614: _("The recipient's number is not a mobile number, so it cannot receive texts."),
    21617: _("The message is longer than Twilio allows (1600 characters)."),
    21620: _("Twilio could not use the attached file's address."),
    21623: _("Too many files for one message (Twilio takes at most 10)."),
    30001: _("Twilio's queue for this sender was full; the message was not sent."),
    30002: _("The Twilio account is suspended."),
    30003: _("The recipient's phone could not be reached (switched off or out of coverage)."),
    30004: _("The message was blocked by the recipient or their carrier."),
    30005: _("The recipient's number is unknown or no longer in service."),
    30006: _("The recipient's number is a landline or cannot receive text messages."),
    30007: _("The carrier filtered the message (seen as spam or not allowed)."),
    30008: _("Delivery failed for a reason the carrier did not give."),
    30034: _("The sender number is not registered for US A2P 10DLC messaging."),
    63016: _(
        "WhatsApp allows free text only within 24 hours of the customer's last message; "
        "send an approved template instead."
    ),
}


def error_words(code: int | str | None, message: str = "") -> str:
    """A Twilio error code in plain words, the code kept for looking it up."""
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    words = _ERRORS.get(number) if number is not None else None
    if words is not None:
        return gettext("%(words)s (Twilio error %(code)s)") % {"words": words, "code": number}
    message = (message or "").strip()
    if number is not None:
        if message:
            return gettext("Twilio: %(message)s (error %(code)s)") % {
                "message": message,
                "code": number,
            }
        return gettext("Twilio error %(code)s") % {"code": number}
    return message


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, URL + each parameter's name and
    value, sorted by name (values of a repeated name sorted too)))."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's standard port: Twilio's own
    validators accept each, since the signing side is not consistent about the port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    userinfo = f"{userinfo}@" if userinfo else ""
    standard = {"https": 443, "http": 80}.get(parts.scheme)
    without = urlunsplit(parts._replace(netloc=f"{userinfo}{host}"))
    variants = [url, without]
    if port is None and standard:
        variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{standard}")))
    return list(dict.fromkeys(variants))


def _normalise_phone(value: str) -> str:
    return _PHONE_SEPARATORS.sub("", value or "")


def _address_phone(address: str) -> str:
    """The E.164 phone number in a Twilio address ("+3161...", "whatsapp:+3161..."), or ""."""
    number = address.split(":", 1)[1] if ":" in address else address
    return number if E164.fullmatch(number) else ""


def _media_filename(index: int, content_type: str) -> str:
    main = content_type.split("/", 1)[0] if "/" in content_type else ""
    stem = main if main in ("image", "video", "audio") else "file"
    kind = content_type.split(";", 1)[0].strip().lower()
    extension = {"image/jpeg": ".jpg", "audio/mpeg": ".mp3", "text/vcard": ".vcf"}.get(kind)
    extension = extension or mimetypes.guess_extension(kind) or ""
    return f"{stem}-{index + 1}{extension}"


def _fields(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8 form data") from None
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


class TwilioConnector(Connector):
    key = "twilio"
    label = _("SMS (Twilio)")
    capabilities = Capabilities(text=True, media=True, delivery_statuses=True, read_receipts=False)
    setup_fields = (
        SetupField(
            "account_sid",
            _("Account SID"),
            help=_("Starts with AC; shown on the Twilio console's account dashboard."),
        ),
        SetupField(
            "auth_token",
            _("Auth token"),
            help=_("The account's auth token, next to the account SID in the Twilio console."),
            secret=True,
        ),
        SetupField(
            "phone_number",
            _("Phone number"),
            help=_(
                "The Twilio number customers text, in international format (+31970...). "
                "Leave empty to send through a messaging service."
            ),
            required=False,
        ),
        SetupField(
            "messaging_service_sid",
            _("Messaging service SID"),
            help=_(
                "Starts with MG: send through a messaging service's numbers instead of one "
                "number. Leave empty to send from the phone number."
            ),
            required=False,
        ),
    )
    shows_webhook_url = True

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        unknown = set(config) - {field.name for field in self.setup_fields}
        if unknown:
            raise InvalidConfig(
                gettext("unknown setting(s): %(names)s") % {"names": ", ".join(sorted(unknown))}
            )
        sid = str(config.get("account_sid") or "").strip()
        if not ACCOUNT_SID.fullmatch(sid):
            raise InvalidConfig(
                gettext(
                    "The account SID is AC followed by 32 characters 0-9 and a-f; copy it from "
                    "the Twilio console's account dashboard."
                )
            )
        sid = "AC" + sid[2:].lower()
        token = str(config.get("auth_token") or "").strip()
        if not token and existing is not None:
            if existing.settings.get("account_sid") != sid:
                raise InvalidConfig(gettext("Enter the auth token of the new account SID."))
            token = existing.secrets.get("auth_token", "")
        if not AUTH_TOKEN.fullmatch(token):
            raise InvalidConfig(
                gettext(
                    "The auth token is 32 characters 0-9 and a-f; copy it from the Twilio "
                    "console, next to the account SID."
                )
            )
        phone = _normalise_phone(str(config.get("phone_number") or "").strip())
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        if phone and not E164.fullmatch(phone):
            raise InvalidConfig(
                gettext(
                    "The phone number must be in international (E.164) format: a + and the "
                    "country code, e.g. +31970102030."
                )
            )
        service = str(config.get("messaging_service_sid") or "").strip()
        if service:
            if not SERVICE_SID.fullmatch(service):
                raise InvalidConfig(
                    gettext(
                        "The messaging service SID is MG followed by 32 characters 0-9 and "
                        "a-f (Messaging > Services in the Twilio console)."
                    )
                )
            service = "MG" + service[2:].lower()
        if not phone and not service:
            raise InvalidConfig(
                gettext("Enter the Twilio phone number to send from, or a messaging service SID.")
            )
        return ChannelSetup(
            settings={"account_sid": sid, "phone_number": phone, "messaging_service_sid": service},
            secrets={"auth_token": token},
        )

    def _client(self, channel: Channel) -> TwilioClient:
        return TwilioClient(channel.settings["account_sid"], channel.secrets.get("auth_token", ""))

    def check_connection(self, channel: Channel) -> None:
        try:
            account = self._client(channel).account()
        except ApiError as exc:
            if exc.status == 401 or exc.code == 20003:
                raise InvalidConfig(error_words(20003)) from exc
            if exc.status == 404:
                raise InvalidConfig(
                    gettext("Twilio knows no account %(sid)s.")
                    % {"sid": channel.settings["account_sid"]}
                ) from exc
            raise InvalidConfig(gettext("Twilio answered: %(error)s") % {"error": exc}) from exc
        except Unreachable as exc:
            raise InvalidConfig(
                gettext("Could not reach Twilio: %(reason)s") % {"reason": exc.reason}
            ) from exc
        status = str(account.get("status") or "active")
        if status != "active":
            raise InvalidConfig(
                gettext("The Twilio account is %(status)s, so it cannot send messages.")
                % {"status": status}
            )

    # -- inbound --------------------------------------------------------------------------------
    def _signed_urls(self, channel: Channel, request: WebhookRequest) -> list[str]:
        """The URLs Twilio may have signed: the request's (scheme and host as the proxy saw
        them) and the channel's webhook URL under LOKET_PUBLIC_URL (what the admin pasted into
        the console, and the status callback Loket gives), each with and without its port.
        All of them name this very endpoint."""
        from loket.connectors.registry import webhook_url  # the registry imports this module

        query = f"?{request.query_string}" if request.query_string else ""
        urls: list[str] = []
        for url in (request.url, webhook_url(channel) + query):
            urls.extend(_port_variants(url))
        return list(dict.fromkeys(urls))

    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not given:
            raise WebhookRejected("missing X-Twilio-Signature header", 403)
        token = channel.secrets.get("auth_token", "")
        if not token:
            raise WebhookRejected("the channel has no auth token to check signatures with", 403)
        body_hash = request.query.get("bodySHA256", [""])[0]
        if body_hash:
            # JSON webhooks: the URL (with the body's hash) is signed without parameters.
            expected_hash = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(expected_hash.encode(), body_hash.lower().encode()):
                raise WebhookRejected("the body does not match its bodySHA256", 403)
            params: list[tuple[str, str]] = []
        else:
            try:
                params = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                raise WebhookRejected("the body is not UTF-8 form data", 403) from None
        for url in self._signed_urls(channel, request):
            if hmac.compare_digest(signature(token, url, params).encode(), given.encode()):
                return
        raise WebhookRejected("X-Twilio-Signature does not match", 403)

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        fields = _fields(body)
        if not fields:
            raise BadPayload("the body is not a form-encoded Twilio request")
        sid = fields.get("MessageSid") or fields.get("SmsSid") or fields.get("SmsMessageSid", "")
        kind = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
        if kind == "received" or (not kind and ("Body" in fields or "NumMedia" in fields)):
            return [self._message(sid, fields)]
        if kind in _STATUSES:
            return [self._status(sid, kind, fields)]
        if kind in _INTERIM_STATUSES:
            return [Ignored(f"interim message status {kind!r}")]
        return [Ignored(f"unknown Twilio request (status {kind[:40]!r})")]

    def _message(self, sid: str, fields: dict[str, str]) -> InboundMessage:
        sender = fields.get("From", "").strip()
        if not sid:
            raise BadPayload("an inbound message needs a MessageSid")
        if not sender:
            raise BadPayload("an inbound message needs a From")
        try:
            count = max(0, min(int(fields.get("NumMedia") or 0), MAX_MEDIA))
        except ValueError:
            raise BadPayload("NumMedia must be a number") from None
        files = []
        for index in range(count):
            url = fields.get(f"MediaUrl{index}", "").strip()
            if not url:
                continue
            if urlsplit(url).scheme not in ("http", "https"):
                raise BadPayload(f"MediaUrl{index} must be an http(s) URL")
            content_type = (
                fields.get(f"MediaContentType{index}", "").strip()[:127]
                or "application/octet-stream"
            )
            files.append(
                InboundAttachment(
                    filename=_media_filename(index, content_type),
                    content_type=content_type,
                    media_ref=url[:255],
                )
            )
        text = fields.get("Body", "")
        data: dict[str, Any] = {}
        if fields.get("Latitude") and fields.get("Longitude"):  # WhatsApp through Twilio
            try:
                latitude, longitude = float(fields["Latitude"]), float(fields["Longitude"])
            except ValueError:
                raise BadPayload("Latitude and Longitude must be numbers") from None
            name, address = fields.get("Label", ""), fields.get("Address", "")
            data["location"] = {
                "latitude": latitude,
                "longitude": longitude,
                "name": name,
                "address": address,
                "url": f"https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}",
            }
            if not text:
                text = ", ".join(part for part in (name, address) if part) or (
                    f"{latitude}, {longitude}"
                )
        if fields.get("ButtonPayload") or fields.get("ButtonText"):
            data["choice"] = {
                "id": fields.get("ButtonPayload", ""),
                "title": fields.get("ButtonText", ""),
            }
            text = text or fields.get("ButtonText", "")
        if fields.get("To"):
            data["provider"] = {"to": fields["To"][:64]}
        return InboundMessage(
            external_id=sid[:64],
            contact=InboundContact(
                external_id=sender[:255],
                name=fields.get("ProfileName", "").strip()[:200],
                phone=_address_phone(sender),
            ),
            text=text,
            attachments=tuple(files),
            data=data,
            reply_to=fields.get("OriginalRepliedMessageSid", "")[:64],
        )

    def _status(self, sid: str, kind: str, fields: dict[str, str]) -> StatusUpdate:
        if not sid:
            raise BadPayload("a status callback needs a MessageSid")
        status = _STATUSES[kind]
        error = ""
        if status == DeliveryStatus.FAILED:
            error = error_words(fields.get("ErrorCode"), fields.get("ErrorMessage", ""))
            if kind == "canceled" and not error:
                error = gettext("The message was canceled before Twilio sent it.")
        return StatusUpdate(external_id=sid[:64], status=status, error=error[:2000])

    def acknowledge(self, channel: Channel, request: WebhookRequest) -> WebhookResponse:
        # Empty TwiML: Twilio stores the delivery and sends no automatic reply.
        return WebhookResponse(200, EMPTY_TWIML, content_type="text/xml")

    def resolve_media(self, channel: Channel, ref: str) -> MediaSource:
        if urlsplit(ref).scheme not in ("http", "https"):
            raise MediaUnavailable(gettext("not a media URL"))
        if not on_api_host(ref):
            return MediaSource(ref)  # the account's credentials go to Twilio's API host only
        # Twilio answers with the file or a redirect to short-lived storage; the download
        # follows it, and httpx drops the credentials on the way to another host.
        refused = gettext("Twilio refused access to the file: check the channel's auth token.")
        return MediaSource(
            ref,
            headers=self._client(channel).headers,
            reasons={
                401: refused,
                403: refused,
                404: gettext("Twilio no longer has this file (it was deleted)."),
            },
        )

    # -- outbound -------------------------------------------------------------------------------
    def outbound_form(self, channel: Channel, message: Message) -> list[tuple[str, str]]:
        from loket.connectors.registry import webhook_url  # the registry imports this module

        recipient = outbound.recipient_id(message)
        if not recipient:
            raise PermanentSendError(
                gettext("This contact has no phone number on this channel to send to.")
            )
        form = [("To", recipient)]
        phone = channel.settings.get("phone_number", "")
        service = channel.settings.get("messaging_service_sid", "")
        if phone:
            channel_prefix = recipient.split(":", 1)[0] + ":" if ":" in recipient else ""
            form.append(("From", f"{channel_prefix}{phone}"))  # whatsapp:+... to whatsapp:+...
        if service:
            form.append(("MessagingServiceSid", service))
        if message.text:
            form.append(("Body", message.text))
        files = [
            attachment
            for attachment in message.attachments.all().order_by("pk")
            if attachment.status == AttachmentStatus.STORED and attachment.file
        ]
        if len(files) > MAX_MEDIA:
            raise PermanentSendError(
                gettext("Twilio sends at most %(count)d files in one message.")
                % {"count": MAX_MEDIA}
            )
        form.extend(("MediaUrl", public_media.public_url(attachment)) for attachment in files)
        if not message.text and not files:
            raise PermanentSendError(gettext("The message has neither text nor files to send."))
        form.append(("StatusCallback", webhook_url(channel)))
        return form

    def send(self, channel: Channel, message: Message) -> SendResult:
        form = self.outbound_form(channel, message)
        try:
            created = self._client(channel).send_message(form)
        except Unreachable as exc:
            if exc.blocked:
                raise PermanentSendError(exc.reason) from exc
            raise TransientSendError(exc.reason) from exc
        except ApiError as exc:
            if exc.status == 401:
                words = error_words(20003)
            else:
                words = error_words(exc.code, exc.message) or str(exc)
            if exc.transient:
                raise TransientSendError(words, exc.retry_after) from exc
            raise PermanentSendError(words) from exc
        if created.get("status") in ("failed", "undelivered"):
            raise PermanentSendError(
                error_words(created.get("error_code"), created.get("error_message") or "")
                or gettext("Twilio reported the message as failed.")
            )
        sid = str(created.get("sid") or "")
        if not sid:
            raise PermanentSendError(gettext("Twilio accepted the message but gave no id for it."))
        return SendResult(external_id=sid)
