"""Public, expiring links to a stored attachment, for providers that fetch outbound media
themselves (Twilio's MediaUrl) and so need a URL reachable without a session.

``public_url(attachment)`` signs the attachment's id and workspace with Django's signing (a salt
of its own, so no other signed value can be passed off as one) and an expiry; the view serves the
file only while the token is valid and unexpired, and 404 otherwise. A link names one file and
grants nothing else. Files are served so they cannot script anything: ``nosniff``, a sandboxing
Content-Security-Policy, and a neutral type for kinds a browser would run.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404
from django.urls import reverse
from django.views.decorators.http import require_safe

from loket.inbox.models import Attachment, AttachmentStatus

SALT = "loket.connectors.public_media"
# Longer than a message can wait in a provider's outbound queue, short enough not to linger.
DEFAULT_MAX_AGE_SECONDS = 24 * 3600
# Types a browser would render as a document or run: served as plain bytes instead.
_ACTIVE_TYPES = {
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/ecmascript",
}


def token_for(attachment: Attachment, *, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS) -> str:
    expires = int(time.time()) + max(1, int(max_age_seconds))
    payload = {"a": attachment.pk, "w": attachment.workspace_id, "e": expires}
    return signing.dumps(payload, salt=SALT)


def public_url(attachment: Attachment, *, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS) -> str:
    """An absolute URL (under LOKET_PUBLIC_URL) serving ``attachment`` until it expires."""
    token = token_for(attachment, max_age_seconds=max_age_seconds)
    # A name for the link only (reverse() quotes it); the token alone says which file.
    filename = (attachment.filename or "").replace("/", "_").strip() or "file"
    path = reverse("public_media", kwargs={"token": token, "filename": filename})
    return settings.LOKET_PUBLIC_URL.rstrip("/") + path


def attachment_for(token: str) -> Attachment | None:
    """The stored attachment a valid, unexpired token names, else None."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    attachment_id, workspace_id, expires = payload.get("a"), payload.get("w"), payload.get("e")
    if not all(isinstance(value, int) for value in (attachment_id, workspace_id, expires)):
        return None
    if expires < time.time():
        return None
    return Attachment.objects.filter(
        pk=attachment_id, workspace_id=workspace_id, status=AttachmentStatus.STORED
    ).first()


@require_safe
def serve(request, token: str, filename: str):
    attachment = attachment_for(token)
    if attachment is None or not attachment.file:
        raise Http404("no such file")
    content_type = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    active = content_type in _ACTIVE_TYPES or not content_type
    try:
        handle = attachment.file.open("rb")
    except OSError:
        raise Http404("no such file") from None
    response = FileResponse(
        handle,
        as_attachment=active,
        filename=attachment.filename or "file",
        content_type="application/octet-stream" if active else attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response
