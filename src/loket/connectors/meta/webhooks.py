"""Meta's webhook checks, the same for WhatsApp, Messenger and Instagram.

- Subscribing: Meta calls ``GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..``; the
  answer is the challenge, as plain text, when the token is the channel's verify token.
- Every delivery: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``.
"""

from __future__ import annotations

import hashlib
import hmac

from loket.connectors.base import WebhookRejected, WebhookRequest, WebhookResponse
from loket.inbox.models import Channel

SIGNATURE_HEADER = "x-hub-signature-256"


def handshake(channel: Channel, request: WebhookRequest) -> WebhookResponse | None:
    """The subscription check, or None when the request is not one."""
    if request.method != "GET":
        return None
    query = request.query
    mode = (query.get("hub.mode") or [""])[0]
    token = (query.get("hub.verify_token") or [""])[0]
    challenge = (query.get("hub.challenge") or [""])[0]
    expected = str(channel.secrets.get("verify_token") or "")
    if mode != "subscribe" or not expected:
        raise WebhookRejected("not a subscription request (hub.mode=subscribe expected)", 403)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise WebhookRejected("the verify token does not match this channel's", 403)
    if not challenge or len(challenge) > 256:
        raise WebhookRejected("hub.challenge is missing", 403)
    return WebhookResponse(200, challenge.encode(), content_type="text/plain")


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(channel: Channel, request: WebhookRequest) -> None:
    app_secret = str(channel.secrets.get("app_secret") or "")
    if not app_secret:
        raise WebhookRejected("this channel has no app secret to check signatures with", 403)
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise WebhookRejected("the X-Hub-Signature-256 header is missing", 401)
    if not hmac.compare_digest(
        given.strip().lower().encode(), signature(app_secret, request.body).encode()
    ):
        raise WebhookRejected("the X-Hub-Signature-256 signature does not match the body", 401)
