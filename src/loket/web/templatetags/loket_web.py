"""Template filters of the agent app."""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from loket.inbox.services.notifications import MENTION_TOKEN

register = template.Library()


@register.filter
def with_mentions(text: str) -> str:
    """Message text, escaped, with the composer's mention tokens ``@[Name](member:7)`` shown as
    a highlighted ``@Name``."""
    parts = []
    position = 0
    for match in MENTION_TOKEN.finditer(text or ""):
        parts.append(escape(text[position : match.start()]))
        parts.append(f'<span class="mention">@{escape(match["name"])}</span>')
        position = match.end()
    parts.append(escape((text or "")[position:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped


@register.simple_tag(takes_context=True)
def conversation_rows(context) -> str:
    """The list's rows for the conversations in the context (see loket.web.inbox.rows)."""
    from loket.web.inbox.rows import render_rows

    current = context.get("conversation")
    return render_rows(
        context.get("conversations") or [],
        base=context["conversation_base"],
        query=context.get("query") or "",
        current_pk=current.pk if current else None,
    )
