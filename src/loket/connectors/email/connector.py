"""The email connector: a mailbox read over IMAP (or mail forwarded to ``loket smtpd``), replies
sent over SMTP. See README.md beside this file for setup and behaviour.

Inbound mail reaches the core the same way as every other channel: the raw RFC 5322 source is
journaled (``loket.inbox.services.journal.record``) and ``parse`` turns it into one item:
an :class:`InboundMessage` with thread hints, or a failed-delivery :class:`StatusUpdate` for a
bounce of a mail Loket sent.
"""

from __future__ import annotations

import hashlib
import hmac
import html as html_lib
import logging
import re
import ssl
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from loket import crypto
from loket.connectors.base import (
    BadPayload,
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    PermanentSendError,
    SendResult,
    TransientSendError,
    WebhookRejected,
    WebhookRequest,
)
from loket.connectors.email import composing, esp, imap, smtp
from loket.connectors.email.parsing import ParsedEmail, UnparseableEmail, parse_email
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    StatusUpdate,
    ThreadHints,
)
from loket.inbox.models import Channel, DeliveryStatus, Direction, Message, MessageKind
from loket.inbox.sanitize import sanitize_html
from loket.inbox.services import media, threads

log = logging.getLogger(__name__)

SECURITY_CHOICES = ("tls", "starttls", "none")
SECRET_KEYS = (
    "imap_password",
    "imap_oauth2_token",
    "smtp_password",
    "smtp_oauth2_token",
    "esp_signing_key",
    "esp_webhook_password",
    "esp_sendgrid_public_key",
    "esp_sns_topic_arn",
)
_SUBJECT_NUMBER = re.compile(r"\[#(\d{1,12})\]")
_MAX_SUBJECT_REFERENCE = 10**12


def _defaults() -> dict[str, Any]:
    return {
        "address": "",
        "from_name": "",
        "inbound": "imap",  # imap | forward (mail forwarded to loket smtpd) | esp (a webhook)
        "esp": "",  # with inbound "esp": mailgun | postmark | sendgrid | ses
        "imap_host": "",
        "imap_port": 993,
        "imap_security": "tls",
        "imap_username": "",
        "imap_folder": "INBOX",
        "imap_processed_action": "seen",
        "imap_processed_folder": "",
        "imap_sent_folder": "",
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "",
        "plus_addressing": False,
        "reopen_resolved": True,
        "new_conversation_after_days": settings.LOKET_REOPEN_WITHIN_DAYS,
        "trusted_authserv_ids": [],
        "signature": "",
    }


def forwarding_address(channel: Channel) -> str:
    """The address mail can be forwarded to when ``loket smtpd`` receives it."""
    return f"{channel.uuid.hex}@{settings.LOKET_SMTPD_DOMAIN}"


def reply_address(channel: Channel, conversation_id: int) -> str:
    """``local+<token>@domain`` for a channel with plus-addressing, else its address."""
    address = channel.settings.get("address", "")
    if not channel.settings.get("plus_addressing") or "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local}+{threads.reply_token(conversation_id)}@{domain}"


def _addresses(entries) -> list[dict[str, str]]:
    return [{"name": e.name, "address": e.address} for e in entries if e.address]


class EmailConnector(Connector):
    key = "email"
    label = _("Email")
    capabilities = Capabilities(
        text=True, html=True, media=True, delivery_statuses=True, copies=True
    )

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        current = {**_defaults(), **(existing.settings if existing else {})}
        unknown = set(config) - set(current) - set(SECRET_KEYS)
        if unknown:
            raise InvalidConfig(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {**current, **{k: v for k, v in config.items() if k not in SECRET_KEYS}}
        out: dict[str, Any] = {}
        out["address"] = _email(values["address"], "address", required=True)
        out["from_name"] = _string(values["from_name"], "from_name", 200)
        out["inbound"] = _choice(values["inbound"], "inbound", ("imap", "forward", "esp"))
        out["esp"] = ""
        if out["inbound"] == "esp":
            out["esp"] = _choice(values["esp"], "esp", esp.ESPS)
        for side, port in (("imap", 993), ("smtp", 587)):
            out[f"{side}_host"] = _host(values[f"{side}_host"], f"{side}_host")
            given = values[f"{side}_port"]
            out[f"{side}_port"] = _port(port if given in (None, "") else given, f"{side}_port")
            out[f"{side}_security"] = _choice(
                values[f"{side}_security"], f"{side}_security", SECURITY_CHOICES
            )
            out[f"{side}_username"] = _string(values[f"{side}_username"], f"{side}_username", 254)
        for key in ("imap_folder", "imap_processed_folder", "imap_sent_folder"):
            out[key] = _string(values[key], key, 200)
        out["imap_folder"] = out["imap_folder"] or "INBOX"
        out["imap_processed_action"] = _choice(
            values["imap_processed_action"], "imap_processed_action", ("seen", "move")
        )
        if out["imap_processed_action"] == "move" and not out["imap_processed_folder"]:
            raise InvalidConfig("imap_processed_folder is required to move processed mail")
        if out["inbound"] == "imap" and not out["imap_host"]:
            raise InvalidConfig("imap_host is required to read mail over IMAP")
        if not out["smtp_host"]:
            raise InvalidConfig("smtp_host is required to send replies")
        for key in ("plus_addressing", "reopen_resolved"):
            out[key] = _boolean(values[key], key)
        out["new_conversation_after_days"] = _integer(
            values["new_conversation_after_days"], "new_conversation_after_days", 0, 3650
        )
        trusted = values["trusted_authserv_ids"]
        if isinstance(trusted, str):
            trusted = [part for part in re.split(r"[\s,]+", trusted) if part]
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise InvalidConfig("trusted_authserv_ids must be a list of host names")
        out["trusted_authserv_ids"] = [t.strip().lower()[:255] for t in trusted][:20]
        out["signature"] = _string(values["signature"], "signature", 5000, multiline=True)

        secrets = dict(existing.secrets) if existing else {}
        for key in SECRET_KEYS:
            if key in config and config[key] not in (None, ""):  # blank keeps the stored one
                secrets[key] = _string(config[key], key, 4096)
            elif key in config and existing is None:
                secrets.pop(key, None)
        if out["inbound"] == "esp":
            esp.check_secrets(out["esp"], secrets)
        return ChannelSetup(settings=out, secrets=secrets)

    def public_settings(self, channel: Channel) -> dict[str, Any]:
        public = dict(channel.settings)
        public["forwarding_address"] = forwarding_address(channel)
        public["has_secret"] = {key: bool(channel.secrets.get(key)) for key in SECRET_KEYS}
        return public

    def imap_settings(self, channel: Channel, **overrides) -> imap.ImapSettings:
        s = channel.settings
        return imap.ImapSettings(
            host=s.get("imap_host", ""),
            port=int(s.get("imap_port") or 993),
            security=s.get("imap_security", "tls"),
            username=s.get("imap_username", ""),
            password=channel.secrets.get("imap_password", ""),
            oauth2_token=channel.secrets.get("imap_oauth2_token", ""),
            folder=s.get("imap_folder") or "INBOX",
            processed_action=s.get("imap_processed_action", "seen"),
            processed_folder=s.get("imap_processed_folder", ""),
            sent_folder=s.get("imap_sent_folder", ""),
            timeout=settings.LOKET_EMAIL_TIMEOUT_SECONDS,
            ssl_context=_ssl_context(),
            **overrides,
        )

    def smtp_settings(self, channel: Channel, **overrides) -> smtp.SmtpSettings:
        s = channel.settings
        return smtp.SmtpSettings(
            host=s.get("smtp_host", ""),
            port=int(s.get("smtp_port") or 587),
            security=s.get("smtp_security", "starttls"),
            username=s.get("smtp_username", ""),
            password=channel.secrets.get("smtp_password", ""),
            oauth2_token=channel.secrets.get("smtp_oauth2_token", ""),
            timeout=settings.LOKET_EMAIL_TIMEOUT_SECONDS,
            ssl_context=_ssl_context(),
            **overrides,
        )

    def check_connection(self, channel: Channel) -> None:
        problems = []
        if channel.settings.get("inbound") == "imap":
            try:
                with imap.ImapMailbox(self.imap_settings(channel)) as mailbox:
                    mailbox.check()
            except imap.ImapError as exc:
                problems.append(f"IMAP: {exc}")
        try:
            smtp.check(self.smtp_settings(channel))
        except smtp.SmtpError as exc:
            problems.append(f"SMTP: {exc.reason}")
        if problems:
            raise InvalidConfig("; ".join(problems))

    # -- inbound --------------------------------------------------------------------------------
    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        """Only a channel that takes mail from an ESP's inbound webhook has a webhook."""
        provider = channel.settings.get("esp") if channel.settings.get("inbound") == "esp" else ""
        if not provider:
            raise WebhookRejected("this email channel does not take webhooks", 404)
        try:
            esp.verify(provider, request, channel.secrets)
        except WebhookRejected as exc:
            if exc.status == 401:  # Amazon SNS sends its credentials only when challenged
                raise WebhookRejected(exc.reason, 401, esp.BASIC_AUTH_CHALLENGE) from None
            raise

    def journal_meta(self, request: WebhookRequest) -> dict[str, Any]:
        return {"content_type": request.content_type, "source": "esp"}

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        if meta.get("source") == "esp":
            provider = channel.settings.get("esp", "")
            raw = esp.raw_mime(provider, body, meta)
            if raw is None:
                confirm = esp.subscribe_url(body) if provider == "ses" else None
                if confirm:
                    from loket.connectors.email import tasks

                    tasks.confirm_sns_subscription.enqueue(channel.pk, confirm)
                    return [Ignored("an Amazon SNS subscription confirmation (confirming it)")]
                return [Ignored(f"a {provider} notification that carries no mail")]
            body = raw
        try:
            mail = parse_email(
                body,
                max_attachment_bytes=media.max_attachment_bytes(channel.workspace_id),
                trusted_authserv_ids=channel.settings.get("trusted_authserv_ids", ()),
            )
        except UnparseableEmail as exc:
            raise BadPayload(f"not an email: {exc}") from None
        if mail.bounce is not None:
            return [self._bounce(channel, mail)]
        if mail.sender is None or not mail.sender.address:
            raise BadPayload("the mail has no usable From address")
        own = channel.settings.get("address", "").lower()
        if mail.sender.address.lower() == own and mail.message_id:
            # Our own reply coming back (a Sent folder or a copy to ourselves): already stored.
            return [Ignored("a copy of a mail this channel sent")]
        return [self._message(channel, mail, meta)]

    def _bounce(self, channel: Channel, mail: ParsedEmail) -> InboundItem:
        bounce = mail.bounce
        if not self.sent_by_loket(bounce.original_message_id):
            # Mail a person sent from the mailbox itself, or a forged report: not ours to mark.
            return Ignored(f"a bounce for a mail Loket did not send: {bounce.reason[:200]}")
        if not bounce.permanent:
            return Ignored(f"delivery delayed (the mail server retries): {bounce.reason}")
        reason = bounce.reason or "the mail could not be delivered"
        if bounce.recipient:
            reason = f"not delivered to {bounce.recipient}: {reason}"
        return StatusUpdate(
            external_id=bounce.original_message_id,
            status=DeliveryStatus.FAILED,
            error=reason[:2000],
            at=mail.date,
        )

    def _message(self, channel: Channel, mail: ParsedEmail, meta: dict[str, Any]) -> InboundMessage:
        sender = mail.sender
        reply_to = mail.reply_to[0] if mail.reply_to else None
        number = None
        found = _SUBJECT_NUMBER.search(mail.subject)
        if found and int(found.group(1)) < _MAX_SUBJECT_REFERENCE:
            number = int(found.group(1))
        data = {
            "email": {
                "message_id": mail.message_id,
                "from": _addresses([sender]),
                "reply_to": _addresses(mail.reply_to),
                "to": _addresses(mail.to),
                "cc": _addresses(mail.cc),
                "in_reply_to": list(mail.in_reply_to),
                "references": list(mail.references[-20:]),
                "quoted_text": mail.quoted_text,
                "quoted_html": sanitize_html(mail.quoted_html) if mail.quoted_html else "",
                "source": meta.get("source", ""),
            }
        }
        email_data = data["email"]
        if mail.auto_submitted:
            data["auto_submitted"] = True
            email_data["auto_reason"] = mail.auto_reason
        if mail.authentication is not None:
            email_data["authentication"] = {
                "by": mail.authentication.authserv_id,
                "spf": mail.authentication.spf,
                "dkim": mail.authentication.dkim,
                "dmarc": mail.authentication.dmarc,
            }
        if mail.defects:
            email_data["defects"] = list(mail.defects[:20])
        if mail.skipped_attachments:
            email_data["skipped_attachments"] = [
                {"filename": s.filename, "content_type": s.content_type, "size": s.size,
                 "reason": s.reason}
                for s in mail.skipped_attachments
            ]  # fmt: skip
        recipients = [*meta.get("recipients", ()), *mail.delivered_to]
        recipients += [a.address for a in (*mail.to, *mail.cc)]
        return InboundMessage(
            # Without a Message-ID, the content hash keeps a re-delivered copy from duplicating.
            external_id=mail.message_id or f"sha256:{mail.content_hash}",
            contact=InboundContact(
                external_id=sender.address.lower(),
                name=sender.name[:200],
                email=sender.address[:254],
            ),
            text=mail.visible_text or mail.text,
            html=mail.visible_html or mail.html,
            subject=mail.subject[:255],
            sent_at=mail.date,
            attachments=tuple(
                InboundAttachment(
                    filename=a.filename,
                    content_type=a.content_type,
                    content=a.content,
                    content_id=a.content_id,
                    inline=a.inline,
                )
                for a in mail.attachments
            ),
            data=data,
            thread=ThreadHints(
                references=tuple(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)])),
                reply_token=_reply_token(channel, recipients),
                conversation_number=number,
                sender_address=(reply_to.address if reply_to else "") or sender.address,
            ),
        )

    # -- outbound -------------------------------------------------------------------------------
    def outbound_message_id(self, channel: Channel, message: Message) -> str:
        """Stable across retries (a receiver drops a repeat by it), unguessable from outside."""
        return f"loket.{message.pk}.{_message_id_signature(message.pk)}@{_domain(channel)}"

    @staticmethod
    def sent_by_loket(message_id: str) -> bool:
        found = _OWN_MESSAGE_ID.match(message_id or "")
        return bool(found) and hmac.compare_digest(
            found.group(2), _message_id_signature(int(found.group(1)))
        )

    def compose(self, channel: Channel, message: Message) -> tuple[Any, list[str], str]:
        """(the email, envelope recipients, its Message-ID) for an outbound message."""
        conversation = message.conversation
        contact = conversation.contact
        parent = (
            Message.objects.filter(
                conversation_id=conversation.pk,
                kind=MessageKind.MESSAGE,
                direction=Direction.INBOUND,
                created_at__lte=message.created_at,
            )
            .exclude(external_id=None)
            .order_by("-created_at", "-id")
            .values("external_id", "data")
            .first()
        )
        parent_data = (parent or {}).get("data", {}).get("email", {}) if parent else {}
        to_entries = parent_data.get("reply_to") or parent_data.get("from") or []
        to = [composing.Address(e.get("name", ""), e["address"]) for e in to_entries]
        if not to and contact.email:
            to = [composing.Address(contact.name, contact.email)]
        if not to:
            raise PermanentSendError("the contact has no email address to reply to")
        wanted = message.data.get("email", {}) if message.data else {}
        cc = [composing.Address(e.get("name", ""), e["address"]) for e in wanted.get("cc", [])]
        bcc = [composing.Address(e.get("name", ""), e["address"]) for e in wanted.get("bcc", [])]
        references: tuple[str, ...] = ()
        in_reply_to = ""
        if parent and parent["external_id"] and not parent["external_id"].startswith("sha256:"):
            in_reply_to = parent["external_id"]
            references = composing.references_for(
                parent_data.get("references") or parent_data.get("in_reply_to") or [],
                in_reply_to,
            )
        text = message.text
        signatures = [
            message.author_member.email_signature.strip() if message.author_member_id else "",
            channel.settings.get("signature", "").strip(),
        ]
        signature = "\n".join(part for part in signatures if part)
        if signature:
            text = f"{text}\n\n-- \n{signature}"
        html = message.html or _text_to_html(text)
        message_id = self.outbound_message_id(channel, message)
        mail = composing.OutgoingEmail(
            sender=composing.Address(
                channel.settings.get("from_name") or channel.name, channel.settings["address"]
            ),
            to=tuple(to),
            cc=tuple(cc),
            bcc=tuple(bcc),
            subject=composing.reply_subject(conversation.subject, conversation.number),
            text=text,
            html=html,
            reply_to=(
                composing.Address("", reply_address(channel, conversation.pk))
                if channel.settings.get("plus_addressing")
                else None
            ),
            in_reply_to=in_reply_to,
            references=references,
            message_id=message_id,
            auto_submitted="auto-replied" if message.author_type in ("bot", "system") else "",
            attachments=tuple(
                composing.OutgoingAttachment(a.filename, a.content_type, a.file.read())
                for a in message.attachments.all()
                if a.file
            ),
            headers=(("X-Loket-Conversation", str(conversation.number)),),
        )
        composed = composing.compose(mail, domain=_domain(channel))
        return composed, composing.envelope_recipients(mail), message_id

    def send(self, channel: Channel, message: Message) -> SendResult:
        composed, recipients, message_id = self.compose(channel, message)
        try:
            reply = smtp.send(
                self.smtp_settings(channel),
                composed,
                envelope_from=channel.settings["address"],
                recipients=recipients,
            )
        except smtp.SmtpError as exc:
            if exc.transient:
                raise TransientSendError(exc.reason) from exc
            raise PermanentSendError(exc.reason) from exc
        if channel.settings.get("inbound") == "imap" and channel.settings.get("imap_sent_folder"):
            try:
                with imap.ImapMailbox(self.imap_settings(channel)) as mailbox:
                    mailbox.append_sent(composed.as_bytes())
            except imap.ImapError as exc:  # the reply is sent; the copy is a convenience
                log.warning("channel %s: appending to the Sent folder failed: %s", channel.pk, exc)
        # Refused recipients are reported, not retried: the others already have the mail.
        warning = "; ".join(refused.reason for refused in getattr(reply, "refused", ()))
        return SendResult(external_id=message_id, warning=warning)


def _ssl_context() -> ssl.SSLContext | None:
    """The system's CAs, plus LOKET_EMAIL_CA_FILE when set; None: the clients' default."""
    if not settings.LOKET_EMAIL_CA_FILE:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=settings.LOKET_EMAIL_CA_FILE)
    return context


_OWN_MESSAGE_ID = re.compile(r"^loket\.(\d{1,19})\.([0-9a-f]{20})@")


def _message_id_signature(message_pk: int) -> str:
    return hmac.new(
        crypto.derived_key("email-message-id"), str(message_pk).encode(), hashlib.sha256
    ).hexdigest()[:20]


def _reply_token(channel: Channel, recipients) -> str:
    """The +token of a reply address among the recipients, for this channel's address."""
    address = channel.settings.get("address", "").lower()
    if "@" not in address:
        return ""
    local, domain = address.rsplit("@", 1)
    prefix = f"{local}+"
    for recipient in recipients:
        recipient = (recipient or "").lower()
        if recipient.startswith(prefix) and recipient.endswith(f"@{domain}"):
            return recipient[len(prefix) : -len(domain) - 1]
    return ""


def _domain(channel: Channel) -> str:
    return channel.settings.get("address", "loket@localhost").rsplit("@", 1)[-1] or "localhost"


def _text_to_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p]
    return "".join(
        "<p>" + html_lib.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs
    )


# -- validation helpers (admin-facing messages) -------------------------------------------------
def _string(value: Any, field: str, limit: int, *, multiline: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidConfig(f"{field} must be text")
    value = value.strip()
    if not multiline and ("\n" in value or "\r" in value):
        raise InvalidConfig(f"{field} must be one line")
    if len(value) > limit:
        raise InvalidConfig(f"{field} is longer than {limit} characters")
    return value


def _email(value: Any, field: str, *, required: bool = False) -> str:
    value = _string(value, field, 254)
    if not value:
        if required:
            raise InvalidConfig(f"{field} is required")
        return ""
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidConfig(f"{field} is not a valid email address") from None
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _host(value: Any, field: str) -> str:
    value = _string(value, field, 253)
    if value and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", value):
        raise InvalidConfig(f"{field} is not a host name")
    return value


def _port(value: Any, field: str) -> int:
    return _integer(value, field, 1, 65535)


def _integer(value: Any, field: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidConfig(f"{field} must be a whole number") from None
    if not low <= number <= high:
        raise InvalidConfig(f"{field} must be between {low} and {high}")
    return number


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidConfig(f"{field} must be one of {', '.join(choices)}")
    return value


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "on", "1", 1):
        return True
    if value in ("false", "off", "0", 0, "", None):
        return False
    raise InvalidConfig(f"{field} must be true or false")
