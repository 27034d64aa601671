"""The inbox's conversation lists: views, allow-listed filters, sorts, keyset pages and counts.

A *view* is a key the UI puts in the URL: ``mine``, ``unassigned``, ``all``, ``mentions``,
``team:<id>``, ``channel:<id>``, ``label:<id>`` or ``saved:<id>``. Saved views hold a list of
filters ``{"field": ..., "op": ..., "value": ...}``; fields and operators come only from
``FILTER_FIELDS`` below, never raw ORM lookups, so a stored view can never reach another
workspace's rows or an unindexed column by name.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.inbox import selectors
from loket.inbox.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Label,
    Notification,
    NotificationKind,
    Priority,
    SavedView,
)
from loket.tenancy.models import Membership, Team

PAGE_SIZE = 25  # rendering rows is most of a page's cost; the list scrolls on for more


class InvalidView(ValueError):
    """A view key, filter, sort or cursor that the inbox does not offer."""


# -- statuses and sorts -----------------------------------------------------------------------
STATUS_TABS = {
    "open": _("Open"),
    "pending": _("Pending"),
    "snoozed": _("Snoozed"),
    "resolved": _("Resolved"),
    "closed": _("Closed"),
    "any": _("All statuses"),
}


@dataclass(frozen=True)
class Sort:
    label: object
    keys: tuple[tuple[str, bool], ...]  # (field, descending); the last key is always the pk
    only: Q = field(default_factory=Q)  # a sort may narrow the list (waiting: only the waiting)


SORTS = {
    "recent": Sort(_("Last activity"), (("last_message_at", True), ("pk", True))),
    "waiting": Sort(
        _("Waiting longest"),
        (("waiting_since", False), ("pk", False)),
        Q(waiting_since__isnull=False),
    ),
    "priority": Sort(_("Priority"), (("priority", True), ("last_message_at", True), ("pk", True))),
    # Nearest SLA due time first (loket.automation.sla); only conversations with one running.
    "sla": Sort(
        _("SLA due"),
        (("sla_due_at", False), ("pk", False)),
        Q(sla_due_at__isnull=False),
    ),
}


def encode_keys(values: list) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, dt.datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_keys(cursor: str, sort: Sort) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(sort.keys):
            raise ValueError("wrong length")
        decoded = []
        for (name, _desc), value in zip(sort.keys, values, strict=True):
            if name.endswith("_at") or name.endswith("_since"):
                value = dt.datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError("naive time")
            elif not isinstance(value, int):
                raise ValueError("not a number")
            decoded.append(value)
        return decoded
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidView(gettext("that page cursor is not one the inbox gave out")) from exc


def _after(sort: Sort, values: list) -> Q:
    """Rows strictly after ``values`` in the sort's order: (a, b, c) > (x, y, z) expanded."""
    condition = Q()
    for index, (name, descending) in enumerate(sort.keys):
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[index]})
        for prior_index in range(index):
            step &= Q(**{sort.keys[prior_index][0]: values[prior_index]})
        condition |= step
    # The same bound on the leading key alone, which an index range scan can start from (the
    # OR above would otherwise be a filter over every row before the page).
    lead, descending = sort.keys[0]
    return Q(**{f"{lead}__{'lte' if descending else 'gte'}": values[0]}) & condition


def page(queryset: QuerySet, sort_key: str, cursor: str | None, limit: int = PAGE_SIZE):
    sort = SORTS.get(sort_key)
    if sort is None:
        raise InvalidView(gettext("unknown sort %(sort)s") % {"sort": repr(sort_key)})
    queryset = queryset.filter(sort.only)
    if cursor:
        if sort_key == "recent":  # the API's and the benchmark's cursor format
            try:
                at, pk = selectors.decode_cursor(cursor)
            except selectors.BadCursor as exc:
                raise InvalidView(str(exc)) from exc
            values = [at, pk]
        else:
            values = _decode_keys(cursor, sort)
        queryset = queryset.filter(_after(sort, values))
    order = [f"-{name}" if descending else name for name, descending in sort.keys]
    rows = list(queryset.order_by(*order)[: limit + 1])
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        if sort_key == "recent":
            next_cursor = selectors.encode_cursor(last.last_message_at, last.pk)
        else:
            next_cursor = encode_keys([getattr(last, key[0]) for key in sort.keys])
    return selectors.Page(items, next_cursor)


# -- allow-listed filters ---------------------------------------------------------------------
def _ids(value) -> list[int]:
    values = value if isinstance(value, list) else [value]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidView(gettext("expected ids")) from exc


def _day_bound(value, *, end: bool) -> dt.datetime:
    day = parse_date(str(value)) if value else None
    if day is None:
        raise InvalidView(gettext("%(value)s is not a date (YYYY-MM-DD)") % {"value": repr(value)})
    start = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
    return start + dt.timedelta(days=1) if end else start


def _date_filter(column: str) -> dict[str, Callable[[object, Membership], Q]]:
    return {
        "after": lambda v, m: Q(**{f"{column}__gte": _day_bound(v, end=False)}),
        "before": lambda v, m: Q(**{f"{column}__lt": _day_bound(v, end=True)}),
        "between": lambda v, m: (
            Q(**{f"{column}__gte": _day_bound(v[0], end=False)})
            & Q(**{f"{column}__lt": _day_bound(v[1], end=True)})
            if isinstance(v, list) and len(v) == 2
            else _raise(gettext("between needs [from, to]"))
        ),
    }


def _raise(message: str):
    raise InvalidView(message)


def _status(value, member) -> Q:
    values = value if isinstance(value, list) else [value]
    if not values or any(v not in ConversationStatus.values for v in values):
        raise InvalidView(gettext("unknown status %(status)s") % {"status": repr(value)})
    return Q(status__in=values)


def _assignee(value, member) -> Q:
    if value == "me":
        return Q(assignee_id=member.pk)
    if value in ("none", None):
        return Q(assignee__isnull=True)
    return Q(assignee_id__in=_ids(value))


def _team(value, member) -> Q:
    return Q(team__isnull=True) if value in ("none", None) else Q(team_id__in=_ids(value))


def _label(value, member) -> Q:
    if value in ("none", None):
        return ~Exists(Conversation.labels.through.objects.filter(conversation_id=OuterRef("pk")))
    return Q(
        Exists(
            Conversation.labels.through.objects.filter(
                conversation_id=OuterRef("pk"), label_id__in=_ids(value)
            )
        )
    )


def _priority(op: str):
    def build(value, member) -> Q:
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise InvalidView(gettext("priority must be a number")) from exc
        if number not in Priority.values:
            raise InvalidView(gettext("unknown priority %(priority)s") % {"priority": repr(value)})
        return Q(**{f"priority{'' if op == 'is' else '__' + op}": number})

    return build


FILTER_FIELDS: dict[str, dict[str, Callable[[object, Membership], Q]]] = {
    "status": {"is": _status},
    "channel": {"is": lambda v, m: Q(channel_id__in=_ids(v))},
    "assignee": {"is": _assignee},
    "team": {"is": _team},
    "label": {"is": _label},
    "priority": {"is": _priority("is"), "gte": _priority("gte"), "lte": _priority("lte")},
    "language": {"is": lambda v, m: Q(language=str(v)[:10])},
    "created": _date_filter("created_at"),
    "last_activity": _date_filter("last_message_at"),
}


def filters_q(filters: list, member: Membership) -> Q:
    """AND of allow-listed filters; anything else is refused with a clear error."""
    if not isinstance(filters, list):
        raise InvalidView(gettext("filters must be a list"))
    condition = Q()
    for item in filters:
        if not isinstance(item, dict):
            raise InvalidView(gettext("each filter is an object with field, op and value"))
        operators = FILTER_FIELDS.get(item.get("field"))
        if operators is None:
            raise InvalidView(
                gettext("cannot filter on %(field)s") % {"field": repr(item.get("field"))}
            )
        build = operators.get(item.get("op", "is"))
        if build is None:
            raise InvalidView(
                gettext("%(field)s has no operator %(op)s")
                % {"field": repr(item.get("field")), "op": repr(item.get("op"))}
            )
        condition &= build(item.get("value"), member)
    return condition


# -- views ------------------------------------------------------------------------------------
@dataclass
class View:
    key: str
    title: str
    condition: Q
    saved: SavedView | None = None
    # Mentions are ordered by the conversation, but only those with a mention of me.
    status_applies: bool = True


def mentioned(member: Membership) -> Q:
    return Q(
        Exists(
            Notification.objects.filter(
                recipient_id=member.pk,
                kind=NotificationKind.MENTION,
                conversation_id=OuterRef("pk"),
            )
        )
    )


def resolve_view(member: Membership, key: str) -> View:
    scope, _sep, ident = key.partition(":")
    if key == "mine":
        return View(key, str(_("Mine")), Q(assignee_id=member.pk))
    if key == "unassigned":
        return View(key, str(_("Unassigned")), Q(assignee__isnull=True))
    if key == "all":
        return View(key, str(_("All")), Q())
    if key == "mentions":
        return View(key, str(_("Mentions")), mentioned(member), status_applies=False)
    if not ident.isdigit():
        raise InvalidView(gettext("unknown view %(view)s") % {"view": repr(key)})
    pk = int(ident)
    workspace_id = member.workspace_id
    if scope == "team":
        team = Team.objects.filter(workspace_id=workspace_id, pk=pk).first()
        if team:
            return View(key, team.name, Q(team_id=pk))
    elif scope == "channel":
        channel = Channel.objects.filter(workspace_id=workspace_id, pk=pk).first()
        if channel:
            return View(key, channel.name, Q(channel_id=pk))
    elif scope == "label":
        label = Label.objects.filter(workspace_id=workspace_id, pk=pk).first()
        if label:
            return View(key, label.name, _label(pk, member))
    elif scope == "saved":
        saved = visible_saved_views(member).filter(pk=pk).first()
        if saved:
            return View(key, saved.name, filters_q(saved.filters, member), saved=saved)
    raise InvalidView(gettext("unknown view %(view)s") % {"view": repr(key)})


def visible_saved_views(member: Membership) -> QuerySet[SavedView]:
    return SavedView.objects.filter(workspace_id=member.workspace_id).filter(
        Q(owner__isnull=True) | Q(owner_id=member.pk)
    )


def conversations(member: Membership, view: View, status: str) -> QuerySet[Conversation]:
    if status not in STATUS_TABS:
        raise InvalidView(gettext("unknown status %(status)s") % {"status": repr(status)})
    queryset = selectors.conversations(member).filter(view.condition)
    saved_status = view.saved and any(f.get("field") == "status" for f in view.saved.filters)
    if status != "any" and view.status_applies and not saved_status:
        queryset = queryset.filter(status=status)
    return queryset.filter(merged_into__isnull=True)


def list_page(member: Membership, view: View, status: str, sort: str, cursor: str | None):
    queryset = conversations(member, view, status).prefetch_related("labels")
    return page(queryset, sort, cursor)


# -- counts -----------------------------------------------------------------------------------
@dataclass
class Counts:
    views: dict[str, int]

    def get(self, key: str) -> int:
        return self.views.get(key, 0)


def counts(member: Membership, saved: list[SavedView] = ()) -> Counts:
    """Open conversations per view, in a fixed number of grouped queries (plus one per saved
    view), so the sidebar costs the same however many teams, channels and labels there are."""
    open_ = Conversation.objects.filter(
        workspace_id=member.workspace_id, status=ConversationStatus.OPEN, merged_into__isnull=True
    )
    totals = open_.aggregate(
        all=Count("pk"),
        mine=Count("pk", filter=Q(assignee_id=member.pk)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
    )
    result = dict(totals)
    for team_id, count in (
        open_.filter(team__isnull=False).values_list("team_id").annotate(n=Count("pk"))
    ):
        result[f"team:{team_id}"] = count
    for channel_id, count in open_.values_list("channel_id").annotate(n=Count("pk")):
        result[f"channel:{channel_id}"] = count
    # Driven from the open conversations (few) rather than from every label row (many).
    for label_id, count in (
        Conversation.labels.through.objects.filter(
            conversation_id__in=open_.values("pk"),
        )
        .values_list("label_id")
        .annotate(n=Count("pk"))
    ):
        result[f"label:{label_id}"] = count
    result["mentions"] = Notification.objects.filter(
        recipient_id=member.pk, kind=NotificationKind.MENTION, read_at__isnull=True
    ).count()
    for view in saved:
        try:
            condition = filters_q(view.filters, member)
        except InvalidView:
            continue
        queryset = Conversation.objects.filter(
            workspace_id=member.workspace_id, merged_into__isnull=True
        ).filter(condition)
        if not any(f.get("field") == "status" for f in view.filters):
            queryset = queryset.filter(status=ConversationStatus.OPEN)
        result[f"saved:{view.pk}"] = queryset.count()
    return Counts(result)
