"""Live-chat messages as the widget shows them, and pushing them to a visitor's open widgets."""

from __future__ import annotations

from loket.inbox.models import (
    Channel,
    ContactIdentity,
    Conversation,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services import choices
from loket.realtime.publish import publish_to_groups

HISTORY = 50


def as_widget_message(message: Message) -> dict:
    """What the widget shows: never internal notes, never agents' email addresses."""
    author = {"name": ""}
    if message.direction == Direction.OUTBOUND and message.author_member_id:
        author["name"] = message.author_member.display_name.split("@")[0]
        if (message.author_member.user.preferences or {}).get("photo"):
            author["avatar_url"] = (
                f"/widget/{message.channel.uuid}/agents/{message.author_member_id}/photo"
            )
    client_id = ""
    if message.direction == Direction.INBOUND and message.external_id:
        client_id = message.external_id.rsplit(":", 1)[-1]
    return {
        "id": message.pk,
        "client_id": client_id,
        "direction": "in" if message.direction == Direction.INBOUND else "out",
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "author": author,
        "status": message.status or "",
        "attachments": [
            {
                "id": item.pk,
                "name": item.filename,
                "content_type": item.content_type,
                "size": item.size,
                "url": f"/widget/{message.channel.uuid}/api/files/{item.pk}",
            }
            for item in message.attachments.all()
            if item.status == "stored" and not item.inline
        ],
        # Buttons under a question (the widget shows them while it is the latest message).
        "choices": [
            {"id": item["id"], "title": item["title"]} for item in choices.native_choices(message)
        ]
        if message.direction == Direction.OUTBOUND
        else [],
    }


def visitor_keys(channel: Channel, contact_id: int) -> list[str]:
    return list(
        ContactIdentity.objects.filter(channel=channel, contact_id=contact_id).values_list(
            "external_id", flat=True
        )
    )


def history(channel: Channel, visitor_key: str, *, after: int | None = None) -> list[dict]:
    """The visitor's customer-visible messages on this channel, oldest first (the last
    ``HISTORY``, or those after ``after``)."""
    contact_id = (
        ContactIdentity.objects.filter(channel=channel, external_id=visitor_key)
        .values_list("contact_id", flat=True)
        .first()
    )
    if contact_id is None:
        return []
    conversations = Conversation.objects.filter(
        workspace_id=channel.workspace_id, channel=channel, contact_id=contact_id
    ).values("pk")
    messages = (
        Message.objects.filter(conversation_id__in=conversations, kind=MessageKind.MESSAGE)
        .select_related("author_member__user", "channel")
        .prefetch_related("attachments")
    )
    if after is not None:
        return [as_widget_message(m) for m in messages.filter(pk__gt=after).order_by("pk")]
    newest = list(messages.order_by("-pk")[:HISTORY])
    return [as_widget_message(m) for m in reversed(newest)]


def push(channel: Channel, visitor_keys_: list[str], payload: dict) -> None:
    from loket.connectors.livechat.connector import visitor_group

    publish_to_groups([visitor_group(channel.pk, key) for key in visitor_keys_], payload)


def push_reply(channel: Channel, message: Message) -> None:
    """An agent's reply to every open widget of the conversation's contact."""
    contact_id = message.conversation.contact_id
    push(channel, visitor_keys(channel, contact_id), {
        "type": "message", "message": as_widget_message(message)
    })  # fmt: skip


def visitor_context(conversation) -> dict | None:
    """What agents see of a live-chat visitor: the page they are on, where they came from,
    their browser and language, and the pages they chatted from (newest first)."""
    if conversation.channel.kind != "livechat":
        return None
    datas = (
        Message.objects.filter(conversation=conversation, direction=Direction.INBOUND)
        .order_by("-pk")
        .values_list("data", flat=True)[:50]
    )
    seen_pages: list[dict] = []
    latest: dict = {}
    for data in datas:
        info = (data or {}).get("livechat") or {}
        latest = latest or info
        page = info.get("page") or {}
        url = str(page.get("url") or "")
        if not url.lower().startswith(("http://", "https://")):
            continue  # only links an agent may safely click (the widget already filters)
        if all(p["url"] != url for p in seen_pages):
            seen_pages.append({"url": page["url"], "title": page.get("title", "")})
    if not latest:
        return None
    page = latest.get("page") or {}
    safe = {
        key: value
        if key == "title" or str(value).lower().startswith(("http://", "https://"))
        else ""
        for key, value in page.items()
        if key in ("url", "title", "referrer")
    }
    return {
        "page": safe,
        "browser": latest.get("browser", ""),
        "locale": latest.get("locale", ""),
        "pages": seen_pages[:10],
    }


def rating_prompt(channel: Channel, visitor_key: str) -> dict | None:
    """``{conversation_id, rating?}`` when the visitor's latest conversation here is resolved:
    the widget asks for (or shows) their rating."""
    from loket.inbox.models import ConversationStatus, SatisfactionRating

    latest = (
        Conversation.objects.filter(
            channel=channel,
            contact__identities__channel=channel,
            contact__identities__external_id=visitor_key,
        )
        .order_by("-last_message_at")
        .values_list("pk", "status")
        .first()
    )
    if latest is None or latest[1] not in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
        return None
    given = (
        SatisfactionRating.objects.filter(conversation_id=latest[0])
        .values_list("rating", flat=True)
        .first()
    )
    return {"conversation_id": latest[0], "rating": given}


def on_event(event) -> None:
    """Event subscriber: when a live chat is resolved, its visitor's widgets ask for a rating."""
    if event.name != "conversation.updated" or event.changes.get("status") != "resolved":
        return
    row = (
        Conversation.objects.filter(pk=event.conversation_id, channel__kind="livechat")
        .select_related("channel")
        .only("pk", "contact_id", "channel")
        .first()
    )
    if row is None:
        return
    push(row.channel, visitor_keys(row.channel, row.contact_id), {
        "type": "csat", "conversation_id": row.pk
    })  # fmt: skip


def mark_seen_by_agent(conversation) -> list[int]:
    """An agent has the conversation open: the visitor's messages in it become read, and the
    visitor's widgets show "Seen" under their last one. Returns the ids marked."""
    from django.utils import timezone

    if conversation.channel.kind != "livechat":
        return []
    unseen = list(
        Message.objects.filter(
            conversation=conversation, direction=Direction.INBOUND, kind=MessageKind.MESSAGE
        )
        .exclude(status="read")
        .values_list("pk", flat=True)
    )
    if not unseen:
        return []
    Message.objects.filter(pk__in=unseen).update(status="read", status_changed_at=timezone.now())
    keys = visitor_keys(conversation.channel, conversation.contact_id)
    for message_id in unseen[-20:]:  # the widget only shows it under the last one
        push(conversation.channel, keys, {"type": "status", "id": message_id, "status": "read"})
    return unseen
