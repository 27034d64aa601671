"""Small images (members' own photos, a live chat's team photos, knowledge-base article images):
checked by their first bytes (PNG, JPEG, WebP or GIF; never SVG or anything a browser could run),
at most 1 MB unless the caller allows more, stored through Django's default storage under random
names, and read back with their content type. A member's photo is shown to live-chat visitors
next to their replies."""

from __future__ import annotations

import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

MAX_PHOTO_BYTES = 1024 * 1024
_TYPES = {  # magic bytes → (content type, extension)
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"GIF87a": ("image/gif", "gif"),
    b"GIF89a": ("image/gif", "gif"),
}


class InvalidPhoto(ValueError):
    """Not a small PNG, JPEG, WebP or GIF image; the message says so."""


def kind(data: bytes) -> tuple[str, str] | None:
    for magic, found in _TYPES.items():
        if data.startswith(magic):
            return found
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def store(folder: str, data: bytes, *, max_bytes: int = MAX_PHOTO_BYTES) -> str:
    """Store one image under ``folder`` and return its stored name (``folder/<random>.<ext>``)."""
    if len(data) > max_bytes:
        raise InvalidPhoto(f"an image can be at most {max_bytes // (1024 * 1024)} MB")
    if not data:
        raise InvalidPhoto("the image is empty")
    found = kind(data)
    if found is None:
        raise InvalidPhoto("an image must be a PNG, JPEG, WebP or GIF file")
    return default_storage.save(f"{folder}/{secrets.token_hex(12)}.{found[1]}", ContentFile(data))


def read(name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a stored photo, or None."""
    if not name or not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    found = kind(data)
    return (data, found[0]) if found else None


def response(found: tuple[bytes, str] | None, cache_control: str):
    """``found`` (from ``read``) as an HTTP response in its own type, never sniffed; 404 when
    there is none."""
    from django.http import Http404, HttpResponse

    if found is None:
        raise Http404("no such image")
    answer = HttpResponse(found[0], content_type=found[1])
    answer["Cache-Control"] = cache_control
    answer["X-Content-Type-Options"] = "nosniff"
    return answer


def delete(name: str) -> None:
    default_storage.delete(name)


def set_member_photo(user, data: bytes | None) -> None:
    """A user's own photo (None removes it), kept in their preferences under avatars/<id>/."""
    old = (user.preferences or {}).get("photo", "")
    new = store(f"avatars/{user.pk}", data) if data else ""
    user.preferences = {**(user.preferences or {}), "photo": new}
    user.save(update_fields=["preferences"])
    if old and old.startswith(f"avatars/{user.pk}/"):
        delete(old)
