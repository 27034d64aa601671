"""Team photos of a live-chat channel: up to three small images an admin uploads, shown in
the widget's header and served from Loket's own origin (the widget's frame loads images from
nowhere else). Storage and checks are loket.tenancy.photos'."""

from __future__ import annotations

from loket.connectors.base import InvalidConfig
from loket.inbox.models import Channel
from loket.tenancy import photos

MAX_PHOTOS = 3
kind, read = photos.kind, photos.read


def replace(channel: Channel, uploads: list[bytes], *, clear: bool = False) -> list[str]:
    """The channel's photo names after adding ``uploads`` (newest first, at most three) or
    removing them all; removed files are deleted."""
    folder = f"livechat/{channel.uuid.hex}"
    current = list(channel.settings.get("team_photos") or [])
    if clear:
        kept, dropped = [], current
    else:
        try:
            added = [photos.store(folder, data) for data in uploads]
        except photos.InvalidPhoto as exc:
            raise InvalidConfig(f"team photo: {exc}") from None
        kept = (added + current)[:MAX_PHOTOS]
        dropped = [name for name in current if name not in kept]
    for name in dropped:
        if name.startswith(folder + "/"):
            photos.delete(name)
    return kept


def urls(channel: Channel) -> list[str]:
    return [
        f"/widget/{channel.uuid}/photos/{index}"
        for index in range(len(channel.settings.get("team_photos") or []))
    ]
