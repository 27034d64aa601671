"""Team photos of a live-chat channel: small images an admin uploads, shown in the widget's
header. Stored through Django's default storage (the media directory) under random names and
served from Loket's own origin, since the widget's frame loads images from nowhere else."""

from __future__ import annotations

import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from loket.connectors.base import InvalidConfig
from loket.inbox.models import Channel

MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 1024 * 1024
_TYPES = {  # magic bytes → (content type, extension)
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
}


def kind(data: bytes) -> tuple[str, str] | None:
    for magic, found in _TYPES.items():
        if data.startswith(magic):
            return found
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def store(folder: str, data: bytes) -> str:
    """Store one photo under ``folder`` and return its stored name; InvalidConfig (with a
    reason to show) for anything but a small PNG, JPEG or WebP image."""
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidConfig("a photo can be at most 1 MB")
    found = kind(data)
    if found is None:
        raise InvalidConfig("a photo must be a PNG, JPEG or WebP image")
    return default_storage.save(f"{folder}/{secrets.token_hex(12)}.{found[1]}", ContentFile(data))


def add(channel: Channel, data: bytes) -> str:
    return store(f"livechat/{channel.uuid.hex}", data)


def read(name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a stored photo, or None."""
    if not name or not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    found = kind(data)
    return (data, found[0]) if found else None


def set_agent_photo(user, data: bytes | None) -> None:
    """A member's own photo (shown to live-chat visitors next to their replies); None removes
    it. Kept in the user's preferences, the file under avatars/<user id>/."""
    old = (user.preferences or {}).get("photo", "")
    new = store(f"avatars/{user.pk}", data) if data else ""
    user.preferences = {**(user.preferences or {}), "photo": new}
    user.save(update_fields=["preferences"])
    if old and old.startswith(f"avatars/{user.pk}/"):
        default_storage.delete(old)


def replace(channel: Channel, uploads: list[bytes], *, clear: bool = False) -> list[str]:
    """The channel's photo names after adding ``uploads`` (newest first, at most three) or
    removing them all; removed files are deleted."""
    current = list(channel.settings.get("team_photos") or [])
    if clear:
        kept, dropped = [], current
    else:
        added = [add(channel, data) for data in uploads]
        kept = (added + current)[:MAX_PHOTOS]
        dropped = [name for name in current if name not in kept]
    for name in dropped:
        if name.startswith(f"livechat/{channel.uuid.hex}/"):
            default_storage.delete(name)
    return kept


def urls(channel: Channel) -> list[str]:
    return [
        f"/widget/{channel.uuid}/photos/{index}"
        for index in range(len(channel.settings.get("team_photos") or []))
    ]
