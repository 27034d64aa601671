"""Inbound mail through an email service provider's (ESP's) inbound webhook.

Mailgun, Postmark, SendGrid and Amazon SES can each receive a domain's mail and POST it to a URL.
Every one of them offers a mode that carries the **raw RFC 5322 message**, and that is the only
mode used here: Loket parses MIME itself (``parsing.py``: charsets, threading headers, quoted
text, bounces), so each ESP is reduced to "authenticate the request, then take the raw mail out
of the body", and everything after that is the same as for IMAP and ``loket smtpd``.

=========  ======================================  ===========================================
ESP        raw mode                                 authentication
=========  ======================================  ===========================================
mailgun    route ``forward()`` to a URL ending in   ``signature`` = hex HMAC-SHA256(webhook
           ``mime``: form field ``body-mime``       signing key, ``timestamp`` + ``token``)
postmark   "Include raw email content in JSON       HTTP Basic auth in the webhook URL (Postmark
           payload": JSON field ``RawEmail``        does not sign inbound webhooks)
sendgrid   Inbound Parse "POST the raw, full MIME   Basic auth in the URL, and/or the ECDSA
           message": form field ``email``           signature of a Parse security policy
ses        receipt rule SNS action, encoding        Basic auth in the URL + the topic ARN, then
           BASE64: SNS ``Message`` → ``content``    the SNS message signature (RSA, see below)
=========  ======================================  ===========================================

Two steps, because of where Loket's webhook path runs them (``loket.connectors.webhooks``):

* :func:`verify` runs on the web server's event loop before anything is stored: it must not touch
  the database or the network. It checks what can be checked locally (HMACs, ECDSA with a
  configured public key, passwords, the SNS topic and certificate host) and raises
  :class:`WebhookRejected` with a reason an admin can act on.
* :func:`raw_mime` runs later, inside the storing transaction (or a worker's replay), on the raw
  body as journaled plus :func:`journal_meta`. There the network is allowed, so the SNS signature,
  whose RSA certificate has to be fetched from ``SigningCertURL``, is verified here: only from an
  ``https://sns.<region>.amazonaws.com/…pem`` URL (``LOKET_SNS_CERT_URL_PATTERN`` overrides the
  pattern, for tests), through :func:`loket.http.client`, cached by URL. A certificate that cannot
  be fetched raises :class:`SnsCertificateUnavailable` (not BadPayload), so the journal row is
  retried instead of being failed for good.

A body that is not what the ESP sends raises :class:`BadPayload` saying what to change on the
ESP's side (e.g. the switch for the raw mode). Bodies can be tens of MB: form posts are split with
``bytes.find`` over the buffer, and only the requested fields are copied out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import quopri
import re
import threading
import time
from collections.abc import Collection, Iterator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.conf import settings

from loket import http
from loket.connectors.base import BadPayload, InvalidConfig, WebhookRejected, WebhookRequest

__all__ = [
    "BASIC_AUTH_CHALLENGE",
    "DEFAULT_SNS_CERT_URL_PATTERN",
    "DEFAULT_SNS_SUBSCRIBE_URL_PATTERN",
    "ESPS",
    "SECRET_KEYS",
    "SnsCertificateUnavailable",
    "check_secrets",
    "clear_certificate_cache",
    "journal_meta",
    "raw_mime",
    "subscribe_url",
    "verify",
]

ESPS = ("mailgun", "postmark", "sendgrid", "ses")

# The channel secrets each ESP uses (for the setup form). SendGrid needs at least one of its two;
# the others need all of theirs (see check_secrets).
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "mailgun": ("esp_signing_key",),
    "postmark": ("esp_webhook_password",),
    "sendgrid": ("esp_webhook_password", "esp_sendgrid_public_key"),
    "ses": ("esp_webhook_password", "esp_sns_topic_arn"),
}

_LABELS = {
    "mailgun": "Mailgun",
    "postmark": "Postmark",
    "sendgrid": "SendGrid",
    "ses": "Amazon SNS",
}

# Amazon SNS sends the credentials of its subscription URL only after an answer of 401 carrying
# this challenge (with a realm); Postmark and SendGrid send them up front. The webhook route
# should add it to 401 answers.
BASIC_AUTH_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Loket"'}

# SendGrid's signed webhooks (Event Webhook and Inbound Parse security policies): base64 DER
# ECDSA P-256/SHA-256 signature over the timestamp header followed by the raw body.
SENDGRID_SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

# SNS certificates live on the regional SNS endpoint (China: amazonaws.com.cn), e.g.
# https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-<hex>.pem
DEFAULT_SNS_CERT_URL_PATTERN = (
    r"https://sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/[A-Za-z0-9._-]+\.pem"
)
DEFAULT_SNS_SUBSCRIBE_URL_PATTERN = (
    r"https://sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/\?[A-Za-z0-9._~%&=:+/-]+"
)
_SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields signed, in this order, as "<key>\n<value>\n" each (Subject only when present).
_SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SNS_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SNS_SIGNED_FIELDS["SubscriptionConfirmation"]
_SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}  # SHA1withRSA / SHA256withRSA
_SNS_TOPIC_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}")
_MAX_CERTIFICATE_BYTES = 64 * 1024
_MAX_CACHED_CERTIFICATES = 64
_MAX_FORM_PARTS = 10_000


class SnsCertificateUnavailable(Exception):
    """The SNS signing certificate could not be fetched now: the delivery should be retried."""


# -- the API the email connector calls ---------------------------------------------------------


def verify(
    esp: str, request: WebhookRequest, secrets: dict[str, str], *, now: float | None = None
) -> None:
    """Raise WebhookRejected unless the request provably comes from that ESP for this channel.
    No database, no network: this runs on the event loop."""
    now = time.time() if now is None else now
    if esp == "mailgun":
        _verify_mailgun(request, secrets, now)
    elif esp == "postmark":
        _check_password(esp, request, secrets)
    elif esp == "sendgrid":
        _verify_sendgrid(request, secrets, now)
    elif esp == "ses":
        _verify_sns(request, secrets)
    else:
        raise WebhookRejected(f"this channel's ESP {esp!r} is not one Loket knows", 403)


def journal_meta(esp: str, request: WebhookRequest) -> dict[str, Any]:
    """What raw_mime needs besides the body: the content type (it carries a form's boundary)."""
    return {"content_type": request.content_type[:1000]}


def raw_mime(esp: str, body: bytes, meta: dict[str, Any]) -> bytes | None:
    """The raw RFC 5322 message carried by an ESP's inbound webhook body; None for a notification
    that carries no mail (an SNS subscription (un)confirmation, an SES sending-event
    notification); BadPayload when the body is not what that ESP sends.

    For ``ses`` the SNS signature is verified first, which may fetch the signing certificate
    (network): SnsCertificateUnavailable when that fails, so the delivery is retried."""
    content_type = str((meta or {}).get("content_type", ""))
    if esp == "mailgun":
        return _mailgun_mime(body, content_type)
    if esp == "postmark":
        return _postmark_mime(body)
    if esp == "sendgrid":
        return _sendgrid_mime(body, content_type)
    if esp == "ses":
        return _ses_mime(body)
    raise BadPayload(f"this channel's ESP {esp!r} is not one Loket knows")


def subscribe_url(body: bytes) -> str | None:
    """The SubscribeURL of an SNS SubscriptionConfirmation, for the connector to visit in a
    background task; None for anything else, or when the URL is not an SNS ConfirmSubscription
    URL for the message's own topic. Does not check the signature (no network here): call
    raw_mime first, which does and returns None for a confirmation."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("Type") != "SubscriptionConfirmation":
        return None
    url = doc.get("SubscribeURL")
    pattern = (
        getattr(settings, "LOKET_SNS_SUBSCRIBE_URL_PATTERN", "")
        or DEFAULT_SNS_SUBSCRIBE_URL_PATTERN
    )
    if not isinstance(url, str) or not re.fullmatch(pattern, url):
        return None
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or not query.get("Token"):
        return None
    if query.get("TopicArn") != [doc.get("TopicArn")]:
        return None
    return url


def check_secrets(esp: str, secrets: dict[str, Any]) -> None:
    """Raise InvalidConfig naming what is missing or malformed (for the channel setup form)."""
    label = _LABELS.get(esp)
    if label is None:
        raise InvalidConfig(f"unknown ESP {esp!r}: choose one of {', '.join(ESPS)}")
    if esp == "mailgun" and not secrets.get("esp_signing_key"):
        raise InvalidConfig(
            "Mailgun needs its HTTP webhook signing key (Mailgun: Sending → Webhooks)"
        )
    if esp in ("postmark", "ses") and not secrets.get("esp_webhook_password"):
        raise InvalidConfig(
            f"{label} needs a webhook password: Loket checks it as the Basic auth password of "
            "the webhook URL (https://loket:<password>@…)"
        )
    if esp == "sendgrid":
        key = secrets.get("esp_sendgrid_public_key")
        if not key and not secrets.get("esp_webhook_password"):
            raise InvalidConfig(
                "SendGrid needs a webhook password (Basic auth in the Parse URL), the public key "
                "of a signed Parse security policy, or both"
            )
        if key and _ec_public_key(str(key)) is None:
            raise InvalidConfig(
                "the SendGrid public key is not a base64 (or PEM) ECDSA public key as SendGrid "
                "shows it for a signed security policy"
            )
    if esp == "ses":
        arn = str(secrets.get("esp_sns_topic_arn") or "")
        if not _SNS_TOPIC_ARN.fullmatch(arn):
            raise InvalidConfig(
                "Amazon SES needs the ARN of the SNS topic its receipt rule publishes to, "
                "like arn:aws:sns:eu-west-1:123456789012:loket-inbound"
            )


def clear_certificate_cache() -> None:
    with _certificates_lock:
        _certificates.clear()


# -- shared checks -------------------------------------------------------------------------------


def _tolerance() -> float:
    return float(getattr(settings, "LOKET_SIGNATURE_TOLERANCE_SECONDS", 300))


def _check_password(esp: str, request: WebhookRequest, secrets: dict[str, str]) -> None:
    label = _LABELS[esp]
    expected = secrets.get("esp_webhook_password") or ""
    if not expected:
        raise WebhookRejected(
            f"this channel has no webhook password configured for {label}; set one in the "
            "channel's settings and put it in the webhook URL as https://loket:<password>@…",
            403,
        )
    header = request.headers.get("authorization", "").strip()
    if not header:
        raise WebhookRejected(
            f"no HTTP Basic credentials: give {label} the webhook URL with the channel's "
            "password in it (https://loket:<password>@host/hooks/email/<channel>/)",
            401,
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise WebhookRejected(
            f"the Authorization header is not HTTP Basic auth; give {label} the webhook URL "
            "as https://loket:<password>@host/hooks/email/<channel>/",
            401,
        )
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("the Basic auth credentials are not valid base64", 401) from None
    _, colon, password = decoded.partition(b":")
    if not colon or not hmac.compare_digest(password, str(expected).encode()):
        raise WebhookRejected(
            f"wrong webhook password from {label}: the password in the webhook URL differs "
            "from the one configured on this channel",
            401,
        )


# -- Mailgun -------------------------------------------------------------------------------------


def _verify_mailgun(request: WebhookRequest, secrets: dict[str, str], now: float) -> None:
    key = secrets.get("esp_signing_key") or ""
    if not key:
        raise WebhookRejected(
            "this channel has no Mailgun webhook signing key configured "
            "(Mailgun: Sending → Webhooks → HTTP webhook signing key)",
            403,
        )
    names = {"timestamp", "token", "signature", "parent-signature"}
    try:
        fields = _form_fields(request.body, request.content_type, names)
    except _FormError as exc:
        raise WebhookRejected(f"not a Mailgun form post: {exc}", 401) from None
    stamp, token = fields.get("timestamp", b"").strip(), fields.get("token", b"").strip()
    given = [fields[n].strip().lower() for n in ("signature", "parent-signature") if n in fields]
    if not (stamp and token and given):
        raise WebhookRejected("the post has no Mailgun timestamp, token and signature fields", 401)
    if not (stamp.isdigit() and len(stamp) <= 12):
        raise WebhookRejected("the Mailgun timestamp is not a number of seconds", 401)
    if abs(now - int(stamp)) > _tolerance():
        raise WebhookRejected(
            "the Mailgun signature timestamp is more than 5 minutes off: a replayed request, "
            "or this server's clock is wrong",
            401,
        )
    expected = hmac.new(str(key).encode(), stamp + token, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, value) for value in given):
        raise WebhookRejected(
            "the Mailgun signature does not match: check that this channel has the domain's "
            "HTTP webhook signing key (not the API key)",
            401,
        )


def _mailgun_mime(body: bytes, content_type: str) -> bytes:
    try:
        fields = _form_fields(body, content_type, {"body-mime", "body-plain", "stripped-text"})
    except _FormError as exc:
        raise BadPayload(f"not a Mailgun route post: {exc}") from None
    if "body-mime" in fields:
        return _non_empty(fields["body-mime"], "Mailgun's body-mime field")
    if "body-plain" in fields or "stripped-text" in fields:
        raise BadPayload(
            "Mailgun posted the parsed message, not the raw MIME: the route's forward() URL "
            "must end in 'mime', e.g. https://…/hooks/email/<channel>/?format=mime"
        )
    raise BadPayload("not a Mailgun route post: it has no body-mime field")


# -- Postmark ------------------------------------------------------------------------------------


def _postmark_mime(body: bytes) -> bytes:
    doc = _json_object(body, "a Postmark inbound webhook")
    record_type = doc.get("RecordType")
    if isinstance(record_type, str) and record_type.lower() != "inbound":
        raise BadPayload(
            f"a Postmark {record_type} webhook, not an inbound message: only the inbound "
            "stream's webhook should point at this URL"
        )
    raw = doc.get("RawEmail")
    if isinstance(raw, str) and raw.strip():
        return raw.encode("utf-8", "replace")
    if raw is None and any(k in doc for k in ("MessageID", "FromFull", "TextBody", "HtmlBody")):
        raise BadPayload(
            "Postmark sent the parsed message without its raw source: switch on "
            "'Include raw email content in JSON payload' in the inbound stream's webhook settings"
        )
    raise BadPayload("not a Postmark inbound webhook: it has no RawEmail")


# -- SendGrid ------------------------------------------------------------------------------------


def _verify_sendgrid(request: WebhookRequest, secrets: dict[str, str], now: float) -> None:
    key_text = secrets.get("esp_sendgrid_public_key") or ""
    password = secrets.get("esp_webhook_password") or ""
    if not key_text and not password:
        raise WebhookRejected(
            "this channel has neither a webhook password nor a SendGrid public key configured",
            403,
        )
    if password:
        _check_password("sendgrid", request, secrets)
    if not key_text:
        return
    key = _ec_public_key(str(key_text))
    if key is None:
        raise WebhookRejected(
            "the SendGrid public key configured on this channel is not an ECDSA public key", 403
        )
    signature = request.headers.get(SENDGRID_SIGNATURE_HEADER, "").strip()
    stamp = request.headers.get(SENDGRID_TIMESTAMP_HEADER, "").strip()
    if not signature or not stamp:
        raise WebhookRejected(
            "no SendGrid signature headers: attach the signed security policy to this Inbound "
            "Parse setting, or remove the public key from the channel",
            401,
        )
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise WebhookRejected("the SendGrid signature timestamp is not a number of seconds", 401)
    if abs(now - int(stamp)) > _tolerance():
        raise WebhookRejected(
            "the SendGrid signature timestamp is more than 5 minutes off: a replayed request, "
            "or this server's clock is wrong",
            401,
        )
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, stamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRejected(
            "the SendGrid signature does not match: check that this channel has the public key "
            "of the security policy attached to this Parse setting",
            401,
        ) from None


@functools.lru_cache(maxsize=32)
def _ec_public_key(text: str) -> ec.EllipticCurvePublicKey | None:
    """SendGrid shows the key as base64 DER (SubjectPublicKeyInfo); PEM is taken too."""
    text = text.strip()
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split())))
    except (binascii.Error, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def _sendgrid_mime(body: bytes, content_type: str) -> bytes:
    try:
        fields = _form_fields(body, content_type, {"email", "text", "html", "headers"})
    except _FormError as exc:
        raise BadPayload(f"not a SendGrid Inbound Parse post: {exc}") from None
    if "email" in fields:
        return _non_empty(fields["email"], "SendGrid's email field")
    if fields:
        raise BadPayload(
            "SendGrid posted the parsed message, not the raw MIME: tick 'POST the raw, full "
            "MIME message' in this Inbound Parse setting (Settings → Inbound Parse)"
        )
    raise BadPayload("not a SendGrid Inbound Parse post: it has no email field")


# -- Amazon SES through SNS ----------------------------------------------------------------------


def _verify_sns(request: WebhookRequest, secrets: dict[str, str]) -> None:
    _check_password("ses", request, secrets)
    topic = secrets.get("esp_sns_topic_arn") or ""
    if not topic:
        raise WebhookRejected(
            "this channel has no SNS topic ARN configured (the topic of the SES receipt rule's "
            "SNS action)",
            403,
        )
    if request.headers.get("x-amz-sns-rawdelivery", "").strip().lower() == "true":
        raise WebhookRejected(
            "raw message delivery is on for this SNS subscription: switch it off, Loket needs "
            "the signed SNS message around the SES notification",
            403,
        )
    try:
        doc = _sns_document(request.body)
    except BadPayload as exc:
        raise WebhookRejected(str(exc), 403) from None
    if doc["TopicArn"] != topic:
        raise WebhookRejected(
            f"the SNS message comes from topic {doc['TopicArn']}, not from the topic configured "
            f"on this channel ({topic})",
            403,
        )
    header_topic = request.headers.get("x-amz-sns-topic-arn")
    if header_topic is not None and header_topic.strip() != topic:
        raise WebhookRejected("the x-amz-sns-topic-arn header names another topic", 403)
    if not _certificate_url_allowed(doc["SigningCertURL"]):
        raise WebhookRejected(
            "the SNS message names a signing certificate that is not on an Amazon SNS host",
            403,
        )


def _sns_document(body: bytes) -> dict[str, Any]:
    """The SNS message, with the fields every check relies on present and of the right type."""
    doc = _json_object(body, "an Amazon SNS message")
    kind = doc.get("Type")
    if kind not in _SNS_TYPES:
        raise BadPayload(f"not an Amazon SNS message: Type is {kind!r}")
    required = [*_SNS_SIGNED_FIELDS[kind], "Signature", "SignatureVersion", "SigningCertURL"]
    for name in required:
        value = doc.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise BadPayload(f"the SNS {kind} has no {name}")
    if doc["SignatureVersion"] not in _SNS_HASHES:
        raise BadPayload(f"unknown SNS SignatureVersion {doc['SignatureVersion']!r}")
    return doc


def _sns_string_to_sign(doc: dict[str, Any]) -> bytes:
    parts = []
    for name in _SNS_SIGNED_FIELDS[doc["Type"]]:
        value = doc.get(name)
        if value is not None:  # only Subject may be absent (checked by _sns_document)
            parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8", "surrogatepass")


def _verify_sns_signature(doc: dict[str, Any]) -> None:
    url = doc["SigningCertURL"]
    if not _certificate_url_allowed(url):
        raise BadPayload(
            f"the SNS signing certificate URL {url[:200]!r} is not on an Amazon SNS host; "
            "it was not fetched"
        )
    try:
        signature = base64.b64decode(doc["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise BadPayload("the SNS Signature is not base64") from None
    key = _sns_public_key(url)
    algorithm = _SNS_HASHES[doc["SignatureVersion"]]()
    try:
        key.verify(signature, _sns_string_to_sign(doc), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise BadPayload(
            "the SNS signature does not match the message: it was altered on the way or does "
            "not come from Amazon SNS"
        ) from None


def _certificate_url_allowed(url: object) -> bool:
    pattern = getattr(settings, "LOKET_SNS_CERT_URL_PATTERN", "") or DEFAULT_SNS_CERT_URL_PATTERN
    return isinstance(url, str) and re.fullmatch(pattern, url) is not None


_certificates: dict[str, rsa.RSAPublicKey] = {}
_certificates_lock = threading.Lock()


def _sns_public_key(url: str) -> rsa.RSAPublicKey:
    with _certificates_lock:
        key = _certificates.get(url)
    if key is not None:
        return key
    pem = _fetch_certificate(url)
    try:
        public_key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError as exc:
        raise SnsCertificateUnavailable(
            f"the SNS signing certificate at {url} could not be read: {exc}"
        ) from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise BadPayload("the SNS signing certificate does not hold an RSA key")
    with _certificates_lock:
        if len(_certificates) >= _MAX_CACHED_CERTIFICATES:
            _certificates.clear()
        _certificates[url] = public_key
    return public_key


def _fetch_certificate(url: str) -> bytes:
    timeout = min(float(getattr(settings, "LOKET_HTTP_TIMEOUT", 10.0)), 10.0)
    try:
        with http.client(timeout=timeout) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise SnsCertificateUnavailable(
                    f"fetching the SNS signing certificate {url} answered HTTP "
                    f"{response.status_code}"
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > _MAX_CERTIFICATE_BYTES:
                    raise SnsCertificateUnavailable(
                        f"the SNS signing certificate {url} is larger than 64 KB"
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise SnsCertificateUnavailable(
            f"could not fetch the SNS signing certificate {url}: {exc}"
        ) from exc
    return b"".join(chunks)


def _ses_mime(body: bytes) -> bytes | None:
    doc = _sns_document(body)
    _verify_sns_signature(doc)
    if doc["Type"] != "Notification":
        return None  # a subscription (un)confirmation: see subscribe_url()
    try:
        note = json.loads(doc["Message"])
    except ValueError:
        raise BadPayload("the SNS Message is not an Amazon SES notification (not JSON)") from None
    if not isinstance(note, dict):
        raise BadPayload("the SNS Message is not an Amazon SES notification")
    kind = note.get("notificationType") or note.get("eventType")
    if kind != "Received":
        if isinstance(kind, str) and kind:
            return None  # e.g. a Bounce or Delivery notification of SES sending: no mail
        raise BadPayload("the SNS Message is not an Amazon SES notification")
    receipt = note.get("receipt") if isinstance(note.get("receipt"), dict) else {}
    action = receipt.get("action") if isinstance(receipt.get("action"), dict) else {}
    content = note.get("content")
    if not isinstance(content, str) or not content.strip():
        if action.get("type") and action.get("type") != "SNS":
            raise BadPayload(
                f"an SES {action.get('type')} action notification carries no mail: publish the "
                "mail with the receipt rule's SNS action (encoding Base64) instead"
            )
        raise BadPayload("the SES notification carries no mail content")
    encoding = str(action.get("encoding", "")).upper().replace("-", "")
    if encoding == "BASE64" or (not encoding and _looks_base64(content)):
        try:
            raw = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadPayload("the SES notification's content is not valid base64") from None
        return _non_empty(raw, "the SES notification's content")
    # UTF-8 encoding: the mail as text. Exact for 7-bit mail; 8-bit bytes that were not UTF-8
    # are already lost on SES's side (hence the advice to use Base64).
    return content.encode("utf-8", "replace")


def _looks_base64(text: str) -> bool:
    # A MIME message always has "Name: value" headers; base64 has no colon and no space.
    return re.fullmatch(r"[A-Za-z0-9+/=\r\n]+", text[:4096]) is not None


# -- form posts ----------------------------------------------------------------------------------


class _FormError(ValueError):
    pass


def _form_fields(body: bytes, content_type: str, names: Collection[str]) -> dict[str, bytes]:
    """The first value of each wanted field of a multipart/form-data or urlencoded body, as bytes.
    Only the wanted fields are copied out of the (possibly large) body."""
    header = Message()
    header["content-type"] = content_type or "application/octet-stream"
    kind = header.get_content_type()
    if kind == "application/x-www-form-urlencoded":
        # latin-1 both ways: percent-escapes become exactly the bytes they stand for.
        parsed = parse_qs(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        return {k: v[0].encode("latin-1") for k, v in parsed.items() if k in names and v}
    if kind != "multipart/form-data":
        raise _FormError(f"expected multipart/form-data, got {kind}")
    boundary = header.get_param("boundary")
    if isinstance(boundary, tuple):
        boundary = collapse_rfc2231_value(boundary)
    if not boundary or not isinstance(boundary, str) or len(boundary) > 200:
        raise _FormError("the multipart content type has no usable boundary")
    fields: dict[str, bytes] = {}
    for part_headers, start, end in _multipart(body, boundary.encode("latin-1")):
        disposition = part_headers.get_param("name", header="content-disposition")
        if isinstance(disposition, tuple):
            disposition = collapse_rfc2231_value(disposition)
        if not isinstance(disposition, str) or disposition not in names or disposition in fields:
            continue
        value = body[start:end]
        encoding = (part_headers.get("content-transfer-encoding") or "").strip().lower()
        if encoding == "base64":
            try:
                value = base64.b64decode(b"".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                raise _FormError(f"the {disposition} field is not valid base64") from None
        elif encoding == "quoted-printable":
            value = quopri.decodestring(value)
        fields[disposition] = value
    return fields


def _multipart(body: bytes, boundary: bytes) -> Iterator[tuple[Message, int, int]]:
    """(headers, content start, content end) of each part, found with bytes.find (RFC 2046:
    a delimiter is "--boundary" at the start of a line; the line break before it belongs to it).
    """
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = 0
    else:
        pos = _next_delimiter(body, delimiter, 0)
        if pos < 0:
            raise _FormError("the body has no part with the boundary its content type names")
    for _ in range(_MAX_FORM_PARTS):
        after = pos + len(delimiter)
        if body.startswith(b"--", after):
            return  # the close delimiter
        eol = body.find(b"\n", after)
        if eol < 0:
            raise _FormError("the body ends inside a multipart delimiter line")
        start = eol + 1
        following = _next_delimiter(body, delimiter, eol)
        if following < 0:
            raise _FormError("the multipart body is cut off (no closing boundary)")
        end = following - 1  # the "\n" before the delimiter
        if end > start and body[end - 1 : end] == b"\r":
            end -= 1
        end = max(end, start)
        head_stop, content_start = _split_part(body, start, following)
        headers = BytesHeaderParser(policy=compat32).parsebytes(body[start:head_stop])
        yield headers, min(content_start, end), end
        pos = following
    raise _FormError(f"more than {_MAX_FORM_PARTS} parts")


def _next_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """The offset of the next delimiter that starts a line at or after ``start`` (the
    character before it is a "\\n"), followed by "--", white space or a line break."""
    search = start
    while True:
        found = body.find(b"\n" + delimiter, search)
        if found < 0:
            return -1
        at = found + 1
        tail = body[at + len(delimiter) : at + len(delimiter) + 2]
        if tail[:2] == b"--" or tail[:1] in (b"\r", b"\n", b" ", b"\t", b""):
            return at
        search = found + 1


def _split_part(body: bytes, start: int, stop: int) -> tuple[int, int]:
    """(end of the header block, start of the content) of the part at ``start``; the search for
    the blank line may reach into the next delimiter's line break (``stop``), so a part whose
    content is empty and has lost its blank line is still read."""
    if stop <= start:
        return start, start  # an empty part
    if body.startswith(b"\r\n", start):
        return start, start + 2  # no headers
    if body.startswith(b"\n", start):
        return start, start + 1
    crlf = body.find(b"\r\n\r\n", start, stop)
    lf = body.find(b"\n\n", start, stop)
    if crlf < 0 and lf < 0:
        raise _FormError("a multipart part has no blank line after its headers")
    if lf < 0 or 0 <= crlf < lf:
        return crlf + 2, crlf + 4
    return lf + 1, lf + 2


# -- small helpers -------------------------------------------------------------------------------


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload(f"not {what}: the body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadPayload(f"not {what}: the body is not a JSON object")
    return doc


def _non_empty(raw: bytes, where: str) -> bytes:
    if not raw.strip():
        raise BadPayload(f"{where} is empty")
    return raw
