"""The conversation list's rows, rendered in Python: the list is the most-shown fragment of the
app, and the template engine spent most of a page's time on its ~70 look-ups per row
(docs/benchmarks.md, "Inbox and search"). Same markup as a template would give, every value
escaped by ``format_html``."""

from __future__ import annotations

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.formats import get_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from loket.automation.sla import chip_state
from loket.inbox.models import ConversationStatus


def render_rows(conversations, *, base: str, query: str, current_pk: int | None) -> SafeString:
    datetime_format = get_format("DATETIME_FORMAT")
    status_labels = dict(ConversationStatus.choices)
    now = timezone.now()
    rows = []
    for c in conversations:
        classes = "conv-item"
        if c.waiting_since:
            classes += " unread"
        if current_pk == c.pk:
            classes += " current"
        meta = [format_html("<span>#{}</span><span>· {}</span>", c.number, c.channel.name)]
        if c.assignee_id:
            meta.append(format_html("<span>· {}</span>", c.assignee.display_name))
        if c.status != ConversationStatus.OPEN:
            meta.append(format_html('<span class="chip">{}</span>', status_labels[c.status]))
        if c.sla_due_at:
            meta.append(
                format_html(
                    '<span class="chip sla-{}" title="{}">{}</span>',
                    chip_state(c.sla_due_at, c.sla_warn_at, now),
                    _("SLA due %(when)s") % {"when": format_date(c.sla_due_at, datetime_format)},
                    _("SLA %(when)s") % {"when": naturaltime(c.sla_due_at)},
                )
            )
        if c.priority >= 2:
            meta.append(
                format_html(
                    '<span class="chip prio-{}">{}</span>', c.priority, c.get_priority_display()
                )
            )
        meta.append(
            format_html_join(
                "",
                '<span class="chip"><span class="dot" style="background: {}"></span>{}</span>',
                ((label.color, label.name) for label in c.labels.all()),
            )
        )
        link = f"{base}{c.number}/"
        rows.append(
            format_html(
                '<li class="{}" id="c{}" data-number="{}">'
                '<input type="checkbox" name="ids" value="{}" aria-label="{}" '
                '@change="toggle($event)">'
                '<a class="conv-link conv-name" href="{}?{}" hx-get="{}pane/?{}" '
                'hx-target="#conv-slot" hx-push-url="{}?{}">{}</a>'
                '<time class="conv-time" datetime="{}" title="{}">{}</time>'
                '<div class="conv-preview">{}</div><div class="conv-meta">{}</div></li>',
                classes,
                c.number,
                c.number,
                c.pk,
                _("Select #%(number)s") % {"number": c.number},
                link,
                query,
                link,
                query,
                link,
                query,
                c.contact.display_name,
                c.last_message_at.isoformat(),
                format_date(c.last_message_at, datetime_format),
                naturaltime(c.last_message_at),
                c.preview or c.subject or "",
                mark_safe("".join(meta)),  # noqa: S308 - each part built by format_html
            )
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - each row built by format_html
