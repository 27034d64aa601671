"""Attachments: safe names, content-addressed metadata, downloads through the guarded client."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import httpx
from django.conf import settings
from django.core.files.base import ContentFile

from loket import events, http
from loket.inbox import ports
from loket.inbox.models import Attachment, AttachmentStatus
from loket.jobs.policy import RetryLater

_FORBIDDEN = re.compile(r"[<>:\"|?*/\\]")
_RESERVED = re.compile(  # Windows device names: "CON.txt" cannot be saved there
    r"(?:con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]"
    r"|conin\$|conout\$|clock\$)",
    re.IGNORECASE,
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}$")


def safe_filename(name: str, default: str = "attachment", limit: int = 200) -> str:
    """A filename fit to show and to offer as a download name, never a path: the basename,
    without control, bidi and zero-width characters ("invoice\u202efdp.exe" must not look like
    a PDF), "..", leading dots, <>:"|?* and Windows device names; NFC; at most ``limit``
    characters with the extension kept; ``default`` when nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if unicodedata.category(c) in ("Zl", "Zp") else c
        for c in name
        if unicodedata.category(c) not in ("Cc", "Cf", "Cs")
    )
    name = unicodedata.normalize("NFC", name)
    name = _FORBIDDEN.sub("", name)
    while ".." in name:
        name = name.replace("..", ".")
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    stem, dot, ext = name.partition(".")
    if _RESERVED.fullmatch(stem.strip()):
        name = f"{dot}{ext}" if dot else ""
    if name.startswith("."):  # a device name was removed: keep what followed it
        return f"attachment{name}"
    if not name:
        return default
    if len(name) > limit:
        found = _EXTENSION.search(name)
        suffix = found.group(0) if found else ""
        name = name[: limit - len(suffix)].rstrip(". ") + suffix
    return name


def max_attachment_bytes(workspace_id: int | None = None) -> int:
    """The workspace's attachment limit, never above the operator's LOKET_ATTACHMENT_MAX_BYTES."""
    ceiling = settings.LOKET_ATTACHMENT_MAX_BYTES
    if workspace_id is None:
        return ceiling
    from loket.tenancy.models import Workspace

    megabytes = (
        Workspace.objects.filter(pk=workspace_id)
        .values_list("attachment_max_mb", flat=True)
        .first()
    )
    return min(ceiling, megabytes * 1024 * 1024) if megabytes else ceiling


def store_content(attachment: Attachment, content: bytes) -> Attachment:
    limit = max_attachment_bytes(attachment.workspace_id)
    if len(content) > limit:
        attachment.status = AttachmentStatus.FAILED
        attachment.error = f"larger than the {limit // (1024 * 1024)} MB limit"
        attachment.size = len(content)
        attachment.save()
        return attachment
    attachment.sha256 = hashlib.sha256(content).hexdigest()
    attachment.size = len(content)
    attachment.status = AttachmentStatus.STORED
    attachment.error = ""
    attachment.file.save(attachment.filename, ContentFile(content), save=False)
    attachment.save()
    return attachment


def _source(attachment: Attachment) -> ports.MediaSource | None:
    """Where to fetch the attachment: its URL, or what the channel's connector makes of the
    provider's media reference. None when it failed for good (recorded on the attachment)."""
    if not attachment.source_ref:
        return ports.MediaSource(attachment.source_url)
    channel = attachment.message.channel
    try:
        return ports.connector_for(channel.kind).resolve_media(channel, attachment.source_ref)
    except ports.ProviderUnavailable as exc:
        if exc.transient:
            raise RetryLater(exc.reason, exc.retry_after) from exc
        mark_download_failed(exc.reason, attachment.pk)
        return None


class TooLarge(ValueError):
    """A download past the attachment size limit (stopped as soon as it passed it)."""


def read_limited(response, limit: int) -> bytes:
    """A streamed response's body, refused with TooLarge once it passes ``limit`` bytes."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"larger than the {limit // (1024 * 1024)} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def download(attachment_id: int) -> None:
    """Fetch a pending attachment from its source (a background task)."""
    attachment = (
        Attachment.objects.select_related("message__channel").filter(pk=attachment_id).first()
    )
    if attachment is None or attachment.status != AttachmentStatus.PENDING:
        return
    source = _source(attachment)
    if source is None:
        return
    if source.filename and attachment.filename in ("", "attachment"):
        attachment.filename = safe_filename(source.filename)
    if source.content_type and attachment.content_type == "application/octet-stream":
        attachment.content_type = source.content_type[:127]
    limit = max_attachment_bytes(attachment.workspace_id)
    try:
        with (
            # Providers answer media URLs with a redirect to their storage; every hop passes the
            # SSRF guard, and httpx drops the Authorization header on a redirect to another host.
            http.client(follow_redirects=True) as client,
            client.stream("GET", source.url, headers=source.headers) as response,
        ):
            if http.is_transient_status(response.status_code):
                raise RetryLater(f"HTTP {response.status_code}", http.retry_after_seconds(response))
            if response.status_code != 200:
                # The provider's words are about its own answer, not its storage's after a
                # redirect (an expired storage link is not a wrong token).
                reason = None if response.history else source.reasons.get(response.status_code)
                mark_download_failed(
                    reason or f"the source answered HTTP {response.status_code}", attachment_id
                )
                return
            served_as = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if served_as and attachment.content_type == "application/octet-stream":
                attachment.content_type = served_as[:127]  # a CDN URL named no type
            try:
                content = read_limited(response, limit)
            except TooLarge as exc:
                mark_download_failed(str(exc), attachment_id)
                return
    except http.BlockedAddress as exc:
        mark_download_failed(str(exc), attachment_id)
        return
    except httpx.HTTPError as exc:
        raise RetryLater(f"download failed: {exc}") from exc
    store_content(attachment, content)
    message = attachment.message
    events.emit(
        events.MessageUpdated(
            message.workspace_id,
            events.Actor.system(),
            conversation_id=message.conversation_id,
            message_id=message.pk,
            changes={"attachment": attachment.pk},
        )
    )


def mark_download_failed(reason: object, attachment_id: int) -> None:
    Attachment.objects.filter(pk=attachment_id, status=AttachmentStatus.PENDING).update(
        status=AttachmentStatus.FAILED, error=str(reason)[:1000]
    )
