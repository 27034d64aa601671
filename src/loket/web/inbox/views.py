"""The inbox: views on the left, the conversation list in the middle, the conversation on the
right. Full pages render all three; htmx asks for one pane at a time (``*_partial`` templates),
and live events make the browser re-ask for exactly what changed."""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
from urllib.parse import unquote, urlencode

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import OuterRef, Prefetch, Subquery
from django.db.models.functions import Substr
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from loket.automation import assignment, canned, sla
from loket.bots import services as bot_services
from loket.bots.models import BotSession, SessionState
from loket.connectors.registry import REGISTRY
from loket.inbox import listing, selectors
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Draft,
    Label,
    Message,
    MessageKind,
    MessageTemplate,
    Notification,
    Priority,
    SavedView,
)
from loket.inbox.services import conversations as conversation_service
from loket.inbox.services import notifications as notifications_service
from loket.inbox.services import outbound, templates, windows
from loket.inbox.services.conversations import InvalidChange
from loket.knowledge import suggestions
from loket.tenancy import hours
from loket.tenancy.models import Availability, Membership, Team
from loket.web.inbox import timeline
from loket.web.working_hours import WorkingHoursForm
from loket.web.workspace import workspace_view

TIMELINE_LIMIT = 200
# What a list row shows (loket/web/inbox/rows.py): loading no more keeps a page's rows cheap.
ROW_FIELDS = (
    "number", "subject", "status", "priority", "waiting_since", "last_message_at",
    "workspace_id", "assignee_id", "team_id", "channel__name", "contact__name",
    "contact__email", "contact__phone", "assignee__user__name", "assignee__user__email",
    "team__name", "sla_due_at", "sla_warn_at",
)  # fmt: skip
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


# -- list state: view, status, sort --------------------------------------------------------
class ListState:
    """What the list shows, from the query string; carried along on every link."""

    def __init__(self, request):
        self.view_key = request.GET.get("view") or "all"
        self.status = request.GET.get("status") or "open"
        self.sort = request.GET.get("sort") or "recent"

    def query(self, **overrides) -> str:
        values = {"view": self.view_key, "status": self.status, "sort": self.sort, **overrides}
        return urlencode({k: v for k, v in values.items() if v})


def _resolve(request) -> tuple[ListState, listing.View]:
    state = ListState(request)
    try:
        view = listing.resolve_view(request.membership, state.view_key)
    except listing.InvalidView as exc:
        raise Http404(str(exc)) from exc
    if state.status not in listing.STATUS_TABS:
        state.status = "open"
    if state.sort not in listing.SORTS:
        state.sort = "recent"
    return state, view


def _with_preview(queryset):
    """The list shows the last customer-visible message; one correlated lookup per row on the
    timeline index, inside the page's single query."""
    preview = (
        Message.objects.filter(conversation_id=OuterRef("pk"), kind=MessageKind.MESSAGE)
        .order_by("-created_at", "-id")
        .annotate(short=Substr("text", 1, 160))
        .values("short")[:1]
    )
    return queryset.annotate(preview=Subquery(preview))


class WorkspaceLists:
    """The workspace's members, teams, labels and the viewer's saved views, each queried at most
    once per request however many panes of the page show them."""

    def __init__(self, member: Membership) -> None:
        self.member = member

    @functools.cached_property
    def members(self) -> list[Membership]:
        return list(
            Membership.objects.filter(workspace_id=self.member.workspace_id)
            .select_related("user")
            .order_by("user__name", "user__email")
        )

    @functools.cached_property
    def teams(self) -> list[Team]:
        return list(Team.objects.filter(workspace_id=self.member.workspace_id).order_by("name"))

    @functools.cached_property
    def labels(self) -> list[Label]:
        return list(Label.objects.filter(workspace_id=self.member.workspace_id).order_by("name"))

    @functools.cached_property
    def saved_views(self) -> list[SavedView]:
        return list(listing.visible_saved_views(self.member))


def _lists(request) -> WorkspaceLists:
    if not hasattr(request, "_workspace_lists"):
        request._workspace_lists = WorkspaceLists(request.membership)
    return request._workspace_lists


def _list_context(
    request, state: ListState, view: listing.View, cursor: str | None, *, rows_only: bool = False
) -> dict:
    member = request.membership
    queryset = (
        listing.conversations(member, view, state.status)
        .prefetch_related(Prefetch("labels", queryset=Label.objects.only("name", "color")))
        .only(*ROW_FIELDS)
    )
    try:
        page = listing.page(_with_preview(queryset), state.sort, cursor)
    except listing.InvalidView as exc:
        raise Http404(str(exc)) from exc
    next_url = None
    if page.next_cursor:
        next_url = (
            reverse("inbox:list", args=[request.workspace.slug])
            + "?"
            + state.query(cursor=page.next_cursor)
        )
    context = {
        "state": state,
        "view": view,
        "conversations": page.items,
        "next_url": next_url,
        # Row links are this prefix + number: one reverse() per page instead of three per row.
        "conversation_base": reverse("inbox:index", args=[request.workspace.slug]) + "inbox/",
        "query": state.query(),
    }
    if rows_only:
        return context
    return {
        **context,
        "status_tabs": listing.STATUS_TABS,
        "sorts": {key: sort.label for key, sort in listing.SORTS.items()},
        "bulk_members": _lists(request).members,
        "bulk_labels": _lists(request).labels,
    }


def _sidebar_context(request, counts: listing.Counts | None = None) -> dict:
    """The views column: fixed views, saved views, teams, channels and labels, each with its
    count of open conversations once ``counts`` are known (they load after the page)."""
    member = request.membership
    lists = _lists(request)
    saved = lists.saved_views

    def item(key, title, color=""):
        count = counts.get(key) if counts else None
        return {"key": key, "title": title, "color": color, "count": count}

    sections = [
        (_("Conversations"), [item("mine", _("Mine")), item("unassigned", _("Unassigned")),
                              item("all", _("All")), item("mentions", _("Mentions"))]),
        (_("Saved views"), [item(f"saved:{v.pk}", v.name) for v in saved]),
        (_("Teams"), [item(f"team:{t.pk}", t.name) for t in lists.teams]),
        (_("Channels"), [item(f"channel:{c.pk}", c.name)
                         for c in selectors.channels(member).only("pk", "name")]),
        (_("Labels"), [item(f"label:{lb.pk}", lb.name, lb.color) for lb in lists.labels]),
    ]  # fmt: skip
    return {
        "sections": [{"title": title, "items": items} for title, items in sections if items],
        "saved_views": saved,
    }


# -- pages ------------------------------------------------------------------------------------
@require_GET
@workspace_view
def index(request, number: int | None = None):
    state, view = _resolve(request)
    context = {**_list_context(request, state, view, None), **_sidebar_context(request)}
    if number is not None:
        context.update(_conversation_context(request, _conversation(request, number)))
    context["js_text"] = _js_text()
    return render(request, "web/inbox/index.html", context)


def _js_text() -> dict[str, str]:
    """The strings inbox.js shows, translated on the server (the app has no JS catalogue)."""
    return {
        "%s is typing…": _("%s is typing…"),
        "%s is viewing": _("%s is viewing"),
        "New activity in this conversation while you were writing.": _(
            "New activity in this conversation while you were writing."
        ),
        "Sending failed. Your text is still here; try again.": _(
            "Sending failed. Your text is still here; try again."
        ),
        "Draft saved": _("Draft saved"),
        "Note added": _("Note added"),
        "Sent": _("Sent"),
    }


@require_GET
@workspace_view
def conversation_list(request):
    state, view = _resolve(request)
    # A page of the infinite scroll is rows only; a refresh is the whole list pane.
    rows_only = bool(request.GET.get("cursor"))
    context = _list_context(request, state, view, request.GET.get("cursor"), rows_only=rows_only)
    template = "web/inbox/_rows.html" if rows_only else "web/inbox/_list.html"
    return render(request, template, context)


@require_GET
@workspace_view
def counts(request):
    counts = listing.counts(request.membership, _lists(request).saved_views)
    context = _sidebar_context(request, counts)
    context["state"] = ListState(request)
    return render(request, "web/inbox/_views.html", context)


# -- one conversation -------------------------------------------------------------------------
def _connector(conversation: Conversation):
    """The connector of the conversation's channel (its sidebar facts, Cc/Bcc, "seen")."""
    return REGISTRY[conversation.channel.kind]


def _conversation(request, number: int) -> Conversation:
    conversation = (
        selectors.conversations(request.membership)
        .filter(number=number)
        .select_related("insight")  # the sidebar's estimate, in the same query
        .prefetch_related("labels")
        .first()
    )
    if conversation is None:
        raise Http404("no such conversation")
    return conversation


def _timeline_messages(member: Membership, conversation: Conversation, after_id=None):
    queryset = selectors.messages(member, conversation)
    if after_id is not None:
        return list(queryset.filter(pk__gt=after_id).order_by("created_at", "pk"))
    newest = list(queryset.order_by("-created_at", "-pk")[: TIMELINE_LIMIT + 1])
    newest.reverse()
    return newest


def _conversation_context(request, conversation: Conversation, *, timeline_too=True) -> dict:
    """What the conversation pane shows; ``timeline_too=False`` for the header and sidebar
    alone (after an assign or label click), which need no messages."""
    member = request.membership
    workspace_id = member.workspace_id
    lists = _lists(request)
    connector = _connector(conversation)
    contact = conversation.contact
    identities = list(
        ContactIdentity.objects.filter(workspace_id=workspace_id, contact=contact)
        .select_related("channel")
        .order_by("pk")
    )
    others = list(
        Conversation.objects.filter(workspace_id=workspace_id, contact=contact)
        .exclude(pk=conversation.pk)
        .filter(merged_into__isnull=True)
        .select_related("channel")
        .order_by("-last_message_at")[:10]
    )
    from loket.knowledge import enrichment

    label_ids = {label.pk for label in conversation.labels.all()}
    context = {
        "conversation": conversation,
        "contact": contact,
        "identities": identities,
        "other_conversations": others,
        "members": lists.members,
        "teams_all": lists.teams,
        "labels_all": lists.labels,
        "conversation_label_ids": label_ids,
        "insight": enrichment.sidebar(conversation, lists.labels, label_ids),
        "priorities": Priority.choices,
        "snooze_options": _snooze_options(),
        "visitor": connector.sidebar(conversation),
        "copies": connector.capabilities.copies,
        "sla": _sla_context(request, conversation),
        "bot": _bot_talking(conversation),
    }
    if not timeline_too:
        return context
    rows = _timeline_messages(member, conversation)
    truncated = len(rows) > TIMELINE_LIMIT
    rows = rows[-TIMELINE_LIMIT:]
    return {
        **context,
        "timeline": [timeline.entry(m) for m in rows],
        "timeline_truncated": truncated,
        "last_message_id": rows[-1].pk if rows else 0,
        "last_visible_id": max((m.pk for m in rows if m.kind != MessageKind.ACTIVITY), default=0),
        "draft": Draft.objects.filter(membership=member, conversation=conversation).first(),
        "composer_members": [
            {"id": m.pk, "name": m.display_name, "email": m.user.email}
            for m in lists.members
            if m.pk != member.pk
        ],
        "reply_to": next((i for i in identities if i.channel_id == conversation.channel_id), None),
        "reply_window": windows.reply_window(conversation),
        "template_choices": _template_choices(conversation, connector),
    }


def _sla_context(request, conversation: Conversation) -> dict | None:
    """The SLA chips of the header and the sidebar; no query without a policy."""
    if conversation.sla_policy_id is None:
        return None
    if not Conversation.workspace.is_cached(conversation):
        conversation.workspace = request.workspace
    return {
        "policy": conversation.sla_policy,
        "due": sla.due_times(conversation, timezone.now()),
        "paused_at": conversation.sla_paused_at,
        "outcomes": sla.outcomes(conversation),
    }


def _bot_talking(conversation: Conversation) -> dict | None:
    """The flow bot talking in this conversation (its active session), for the header's line
    with "Take over"; one query."""
    session = (
        BotSession.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            state=SessionState.ACTIVE,
        )
        .select_related("flow", "version")
        .only("step", "waiting", "flow", "version", "flow__name", "version__definition")
        .first()
    )
    if session is None:
        return None
    steps = (session.version.definition or {}).get("steps") or {}
    title = (steps.get(session.step) or {}).get("title")
    return {
        "flow": session.flow.name,
        "step": title if isinstance(title, str) and title.strip() else session.step,
        "waiting": session.waiting,
    }


def _template_choices(conversation: Conversation, connector) -> list[dict]:
    """The channel's approved message templates, as the composer's picker needs them."""
    if not connector.capabilities.templates:
        return []
    return [
        {
            "id": template.pk,
            "name": template.name,
            "language": template.language,
            "header": templates.component_text(template, "HEADER"),
            "body": templates.component_text(template, "BODY"),
            "footer": templates.component_text(template, "FOOTER"),
            "header_count": needed["header"],
            "body_count": needed["body"],
        }
        for template in templates.approved(conversation.channel)
        for needed in [templates.variables_needed(template)]
    ]


def _chosen_template(request, conversation: Conversation):
    """The filled template the composer sent (``template_id`` + variables), or None."""
    template_id = request.POST.get("template_id")
    if not template_id:
        return None
    try:
        template = templates.approved(conversation.channel).get(pk=int(template_id))
    except (ValueError, MessageTemplate.DoesNotExist):
        raise ValueError(_("That template is not available on this channel.")) from None
    return templates.fill(
        template,
        header=request.POST.getlist("template_header"),
        body=request.POST.getlist("template_body"),
    )


def _snooze_options() -> list[tuple[str, str]]:
    now = timezone.localtime()
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    monday = (now + dt.timedelta(days=7 - now.weekday())).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    return [
        ((now + dt.timedelta(hours=1)).isoformat(), _("In one hour")),
        ((now + dt.timedelta(hours=4)).isoformat(), _("In four hours")),
        (tomorrow.isoformat(), _("Tomorrow morning")),
        (monday.isoformat(), _("Next week")),
        ("reply", _("Until the customer replies")),
    ]


@require_GET
@workspace_view
def conversation_pane(request, number: int):
    conversation = _conversation(request, number)
    _connector(conversation).conversation_opened(conversation)
    context = _conversation_context(request, conversation)
    context["query"] = ListState(request).query()
    return render(request, "web/inbox/_conversation.html", context)


@require_GET
@workspace_view
def conversation_head(request, number: int):
    """Header and sidebar after a change by anyone (status, assignee, labels...)."""
    return _head_response(request, number)


def _entries(request, conversation: Conversation, messages: list[Message]):
    """Timeline entries as HTML, for the page to add or replace by id."""
    return render(
        request,
        "web/inbox/_timeline_entries.html",
        {"timeline": [timeline.entry(m) for m in messages], "conversation": conversation},
    )


@require_GET
@workspace_view
def timeline_after(request, number: int):
    conversation = _conversation(request, number)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        return HttpResponseBadRequest("after must be a message id")
    rows = _timeline_messages(request.membership, conversation, after_id=after)
    if any(m.direction == Direction.INBOUND for m in rows):
        _connector(conversation).conversation_opened(conversation)  # it arrived on an open pane
    return _entries(request, conversation, rows)


@require_GET
@workspace_view
def message_fragment(request, number: int, message_id: int):
    conversation = _conversation(request, number)
    message = selectors.messages(request.membership, conversation).filter(pk=message_id).first()
    if message is None:
        raise Http404("no such message")
    return _entries(request, conversation, [message])


@require_POST
@workspace_view
def send(request, number: int):
    """Send a reply or add a note. If the conversation moved on since the agent last looked
    (a customer message or someone else's reply after ``seen``), ask them to review first."""
    member = request.membership
    conversation = _conversation(request, number)
    kind = MessageKind.NOTE if request.POST.get("kind") == "note" else MessageKind.MESSAGE
    text = request.POST.get("text", "")
    files = [
        outbound.OutgoingFile(f.name, f.content_type or "", f.read())
        for f in request.FILES.getlist("attachments")
    ]
    try:
        seen = int(request.POST.get("seen") or 0)
    except ValueError:
        seen = 0
    try:
        template = _chosen_template(request, conversation) if kind == MessageKind.MESSAGE else None
    except ValueError as exc:
        return render(request, "web/inbox/_composer_error.html", {"error": str(exc)}, status=400)
    if not text.strip() and not files and template is None:
        return render(
            request,
            "web/inbox/_composer_error.html",
            {"error": _("Write a message or attach a file first.")},
            status=400,
        )
    try:
        data = _copies(request, conversation) if kind == MessageKind.MESSAGE else None
    except ValueError as exc:
        return render(request, "web/inbox/_composer_error.html", {"error": str(exc)}, status=400)
    if kind == MessageKind.MESSAGE and not request.POST.get("confirmed"):
        newer = list(
            selectors.messages(member, conversation)
            .filter(pk__gt=seen, kind__in=[MessageKind.MESSAGE])
            .exclude(author_member=member)
            .order_by("created_at", "pk")
        )
        if newer:
            return render(
                request,
                "web/inbox/_collision.html",
                {"newer": [timeline.entry(m) for m in newer], "conversation": conversation},
                status=409,
            )
    # Suggestions the agent inserted (the panel's feedback ids): settled with the reply, in its
    # transaction. None posted (the usual case): no query.
    inserted = suggestions.pending(conversation, member, request.POST.getlist("suggestion"))
    try:
        message = outbound.reply(
            conversation,
            author=member,
            text=text,
            kind=kind,
            attachments=files,
            data=data,
            template=template,
            on_stored=(lambda stored: suggestions.settle(inserted, stored)) if inserted else None,
        )
    except ValueError as exc:
        return render(request, "web/inbox/_composer_error.html", {"error": str(exc)}, status=400)
    if kind == MessageKind.NOTE:
        notifications_service.notify_mentions(message, actor=member)
    Draft.objects.filter(membership=member, conversation=conversation).delete()
    try:
        after = int(request.POST.get("after") or message.pk - 1)
    except ValueError:
        after = message.pk - 1
    rows = _timeline_messages(member, conversation, after_id=after)
    return _entries(request, conversation, rows)


MAX_COPIES = 20


def _copies(request, conversation: Conversation) -> dict | None:
    """An email reply's Cc and Bcc from the composer: ``{"email": {"cc": [...], ...}}``."""
    if not _connector(conversation).capabilities.copies:
        return None
    found = {}
    for field in ("cc", "bcc"):
        addresses = [a for a in re.split(r"[\s,;]+", request.POST.get(field, "")) if a]
        if len(addresses) > MAX_COPIES:
            raise ValueError(
                _("At most %(n)d addresses in %(field)s.")
                % {"n": MAX_COPIES, "field": field.title()}
            )
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValueError(
                    _("“%(address)s” is not an email address.") % {"address": address}
                ) from None
        if addresses:
            found[field] = [{"name": "", "address": a} for a in dict.fromkeys(addresses)]
    return {"email": found} if found else None


@require_POST
@workspace_view
def save_draft(request, number: int):
    member = request.membership
    conversation = _conversation(request, number)
    text = request.POST.get("text", "")[:100_000]
    kind = MessageKind.NOTE if request.POST.get("kind") == "note" else MessageKind.MESSAGE
    if text.strip():
        Draft.objects.update_or_create(
            membership=member,
            conversation=conversation,
            defaults={"text": text, "kind": kind, "workspace_id": member.workspace_id},
        )
    else:
        Draft.objects.filter(membership=member, conversation=conversation).delete()
    return HttpResponse(status=204)


@require_POST
@workspace_view
def update(request, number: int):
    """Status, assignee, team, priority, labels and snooze from the conversation header."""
    member = request.membership
    conversation = _conversation(request, number)
    changes: dict = {}
    post = request.POST
    try:
        if "status" in post:
            changes["status"] = post["status"]
        if "snooze" in post:
            changes["status"] = ConversationStatus.SNOOZED
            if post["snooze"] == "reply":
                changes["snoozed_until"] = None
            else:
                until = parse_datetime(post["snooze"])
                if until is None:
                    raise InvalidChange(_("Pick a time to snooze until."))
                if timezone.is_naive(until):
                    until = timezone.make_aware(until)
                if until <= timezone.now():
                    raise InvalidChange(_("The snooze time must be in the future."))
                changes["snoozed_until"] = until
        if "assignee" in post:
            value = post["assignee"]
            changes["assignee"] = (
                selectors.member_of_workspace(member, int(value)) if value else None
            )
        if "team" in post:
            value = post["team"]
            changes["team"] = selectors.team(member, int(value)) if value else None
        if "priority" in post:
            changes["priority"] = int(post["priority"])
        if "labels" in post:
            ids = [int(v) for v in post.getlist("label") if v]
            found = list(Label.objects.filter(workspace_id=member.workspace_id, pk__in=ids))
            if len(found) != len(set(ids)):
                raise Http404("no such label")
            changes["labels"] = found
        conversation_service.update_conversation(conversation, actor=member, **changes)
    except (InvalidChange, ValueError) as exc:
        response = _head_response(request, number)
        response.headers["HX-Trigger"] = _toast(str(exc))
        return response
    return _head_response(request, number)


@require_POST
@workspace_view
def take_over(request, number: int):
    """Stop the flow bot talking in this conversation ("Take over" in the header); nothing
    happens when it has already stopped. Answers with the header, as the header's actions do."""
    bot_services.take_over(_conversation(request, number), request.membership)
    return _head_response(request, number)


def _head_response(request, number: int):
    context = _conversation_context(request, _conversation(request, number), timeline_too=False)
    context["oob"] = True
    return render(request, "web/inbox/_conversation_head.html", context)


def _toast(text: str) -> str:
    import json

    return json.dumps({"loket:toast": {"text": text}})


@require_POST
@workspace_view
def bulk(request):
    """Assign, label or change the status of the selected conversations."""
    member = request.membership
    try:
        ids = [int(v) for v in request.POST.getlist("ids")][:500]
    except ValueError:
        return HttpResponseBadRequest("ids must be numbers")
    targets = list(selectors.conversations(member).filter(pk__in=ids).prefetch_related("labels"))
    action = request.POST.get("action")
    changed = 0
    try:
        for conversation in targets:
            if action == "status":
                conversation_service.update_conversation(
                    conversation, actor=member, status=request.POST["status"]
                )
            elif action == "assign":
                value = request.POST.get("assignee")
                assignee = selectors.member_of_workspace(member, int(value)) if value else None
                conversation_service.update_conversation(
                    conversation, actor=member, assignee=assignee
                )
            elif action == "label":
                label = Label.objects.filter(
                    workspace_id=member.workspace_id, pk=int(request.POST.get("label", 0))
                ).first()
                if label is None:
                    raise Http404("no such label")
                current = list(conversation.labels.all())
                if label not in current:
                    conversation_service.update_conversation(
                        conversation, actor=member, labels=[*current, label]
                    )
            else:
                return HttpResponseBadRequest("unknown bulk action")
            changed += 1
    except (InvalidChange, ValueError, KeyError) as exc:
        return HttpResponseBadRequest(str(exc))
    state, view = _resolve(request)
    response = render(request, "web/inbox/_list.html", _list_context(request, state, view, None))
    response.headers["HX-Trigger"] = _toast(
        _("%(count)d conversations updated.") % {"count": changed}
    )
    return response


@require_POST
@workspace_view
def retry(request, number: int, message_id: int):
    conversation = _conversation(request, number)
    message = selectors.messages(request.membership, conversation).filter(pk=message_id).first()
    if message is None:
        raise Http404("no such message")
    if message.status == DeliveryStatus.FAILED:
        outbound.retry(message)
    return _entries(request, conversation, [selectors.message(request.membership, message.pk)])


@require_POST
@workspace_view
def merge(request, number: int):
    from loket.inbox.services import merging

    member = request.membership
    source = _conversation(request, number)
    try:
        target = _conversation(request, int(request.POST.get("into", "0")))
        record = merging.merge_conversations(source, target, actor=member)
    except (InvalidChange, ValueError) as exc:
        flash.error(request, str(exc))
        return redirect(reverse("inbox:conversation", args=[request.workspace.slug, number]))
    flash.success(
        request,
        _("Merged #%(source)d into #%(target)d.")
        % {"source": source.number, "target": target.number},
    )
    request.session["undo_merge"] = record.pk
    return redirect(reverse("inbox:conversation", args=[request.workspace.slug, target.number]))


@require_POST
@workspace_view
def undo_merge(request, merge_id: int):
    from loket.inbox.models import ConversationMerge
    from loket.inbox.services import merging

    record = (
        ConversationMerge.objects.filter(workspace_id=request.workspace.pk, pk=merge_id)
        .select_related("source")
        .first()
    )
    if record is None:
        raise Http404("no such merge")
    try:
        merging.undo_conversation_merge(record, actor=request.membership)
    except (InvalidChange, ValueError) as exc:
        flash.error(request, str(exc))
    else:
        flash.success(request, _("The merge was undone."))
    request.session.pop("undo_merge", None)
    return redirect(
        reverse("inbox:conversation", args=[request.workspace.slug, record.source.number])
    )


@require_POST
@workspace_view
def split(request, number: int, message_id: int):
    from loket.inbox.services import merging

    conversation = _conversation(request, number)
    message = selectors.messages(request.membership, conversation).filter(pk=message_id).first()
    if message is None:
        raise Http404("no such message")
    try:
        created = merging.split_message(message, actor=request.membership)
    except (InvalidChange, ValueError) as exc:
        flash.error(request, str(exc))
        return redirect(reverse("inbox:conversation", args=[request.workspace.slug, number]))
    flash.success(request, _("Moved the message to #%(number)d.") % {"number": created.number})
    return redirect(reverse("inbox:conversation", args=[request.workspace.slug, created.number]))


# -- attachments and email bodies: served so they cannot script the app ----------------------
@require_GET
@workspace_view
def attachment(request, attachment_id: int):
    item = Attachment.objects.filter(
        workspace_id=request.workspace.pk, pk=attachment_id, status=AttachmentStatus.STORED
    ).first()
    if item is None or not item.file:
        raise Http404("no such attachment")
    inline = item.content_type in IMAGE_TYPES and request.GET.get("download") is None
    response = FileResponse(
        item.file.open("rb"),
        as_attachment=not inline,
        filename=item.filename,
        content_type=item.content_type if inline else "application/octet-stream",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@xframe_options_sameorigin
@workspace_view
def message_html(request, message_id: int):
    """A sanitised email body for a sandboxed frame: no scripts, no forms, no remote loads.
    Inline images (``cid:``) point at the message's own attachments; remote images load only
    when the agent asks (``?images=1``), as they tell the sender the mail was opened.
    ``?part=quoted`` shows the quoted history cut from the body."""
    message = Message.objects.filter(workspace_id=request.workspace.pk, pk=message_id).first()
    if message is None:
        raise Http404("no such message")
    if request.GET.get("part") == "quoted":
        body = ((message.data or {}).get("email") or {}).get("quoted_html") or ""
    else:
        body = message.html
    if not body:
        raise Http404("no such message")
    body = _inline_images(request, message, body)
    page = (
        '<!doctype html><meta charset="utf-8"><base target="_blank">'
        "<style>body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1f2937;"
        "overflow-wrap:anywhere}img{max-width:100%;height:auto}</style>" + body
    )
    images = "https: http: data:" if request.GET.get("images") == "1" else "data:"
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        f"img-src 'self' {images}; style-src 'unsafe-inline'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


_CID = re.compile(r"""(["'])cid:([^"'\s>]+)\1""", re.IGNORECASE)


def _inline_images(request, message: Message, body: str) -> str:
    """``cid:`` references → the URLs of the message's attachments with those Content-IDs."""
    if "cid:" not in body.lower():
        return body
    urls = {
        content_id.lower(): reverse("inbox:attachment", args=[request.workspace.slug, pk])
        for pk, content_id in Attachment.objects.filter(
            message_id=message.pk, status=AttachmentStatus.STORED
        )
        .exclude(content_id="")
        .values_list("pk", "content_id")
    }

    def replace(found) -> str:
        url = urls.get(unquote(found.group(2)).lower())
        return f"{found.group(1)}{html.escape(url)}{found.group(1)}" if url else found.group(0)

    return _CID.sub(replace, body)


# -- saved views ------------------------------------------------------------------------------
@require_POST
@workspace_view
def save_view(request):
    member = request.membership
    name = request.POST.get("name", "").strip()[:100]
    fields = request.POST.getlist("field")
    ops = request.POST.getlist("op")
    values = request.POST.getlist("value")
    filters = []
    for field, op, value in zip(fields, ops, values, strict=False):
        if not field:
            continue
        filters.append({"field": field, "op": op or "is", "value": _filter_value(field, value)})
    try:
        if not name:
            raise listing.InvalidView(_("Give the view a name."))
        listing.filters_q(filters, member)  # refuses anything not on the allow-list
    except listing.InvalidView as exc:
        flash.error(request, str(exc))
        return redirect(reverse("inbox:index", args=[request.workspace.slug]))
    shared = request.POST.get("shared") == "1" and member.is_admin
    saved = SavedView.objects.create(
        workspace_id=member.workspace_id,
        owner=None if shared else member,
        name=name,
        filters=filters,
        sort=request.POST.get("sort") if request.POST.get("sort") in listing.SORTS else "recent",
    )
    return redirect(
        reverse("inbox:index", args=[request.workspace.slug]) + f"?view=saved:{saved.pk}"
    )


def _filter_value(field: str, value: str):
    value = value.strip()
    if field in ("created", "last_activity") and ".." in value:
        return [part.strip() for part in value.split("..", 1)]
    if field in ("channel", "team", "label", "assignee") and "," in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


@require_POST
@workspace_view
def delete_view(request, view_id: int):
    member = request.membership
    saved = listing.visible_saved_views(member).filter(pk=view_id).first()
    if saved is None:
        raise Http404("no such view")
    if saved.owner_id is None and not member.is_admin:
        flash.error(request, _("Only an admin can delete a shared view."))
    else:
        saved.delete()
    return redirect(reverse("inbox:index", args=[request.workspace.slug]))


# -- notifications and preferences ------------------------------------------------------------
@workspace_view
def notifications(request):
    member = request.membership
    if request.method == "POST":
        notifications_service.mark_read(member)
        if request.headers.get("HX-Request"):
            return JsonResponse({"unread": 0})
        return redirect(reverse("inbox:notifications", args=[request.workspace.slug]))
    items = list(
        Notification.objects.filter(recipient=member)
        .select_related("conversation__contact", "actor__user", "message")
        .order_by("-created_at")[:100]
    )
    return render(request, "web/inbox/notifications.html", {"notifications": items})


@workspace_view
def preferences(request):
    user = request.user
    member = request.membership
    if request.method == "POST":
        language = request.POST.get("language", "")
        if language in ("", "en", "nl"):
            user.locale = language
        user.preferences = {
            **(user.preferences or {}),
            "browser_notifications": request.POST.get("browser_notifications") == "1",
        }
        user.save(update_fields=["locale", "preferences"])
        if "email_signature" in request.POST:
            member.email_signature = request.POST["email_signature"].strip()[:2000]
            member.save(update_fields=["email_signature"])
        availability = request.POST.get("availability")
        if availability in Availability.values and availability != member.availability:
            # Going offline may hand open conversations back to the auto-assigner.
            assignment.set_availability(member, availability)
        upload = request.FILES.get("photo")
        if upload is not None or request.POST.get("remove_photo"):
            from loket.tenancy import photos

            try:
                photos.set_member_photo(user, upload.read() if upload is not None else None)
            except photos.InvalidPhoto as exc:
                flash.error(request, str(exc))
                return redirect(reverse("inbox:preferences", args=[request.workspace.slug]))
        flash.success(request, _("Your preferences are saved."))
        return redirect(reverse("inbox:preferences", args=[request.workspace.slug]))
    return _preferences_page(request, WorkingHoursForm.for_member(member))


def _preferences_page(request, hours_form: WorkingHoursForm, status: int = 200):
    return render(
        request,
        "web/inbox/preferences.html",
        {
            "availabilities": Availability.choices,
            "prefs": request.user.preferences or {},
            "hours_form": hours_form,
        },
        status=status,
    )


@require_POST
@workspace_view
def working_hours(request):
    """The member's own working hours (a form of its own on the preferences page)."""
    member = request.membership
    form = WorkingHoursForm.for_member(member, request.POST)
    if form.is_valid():
        try:
            assignment.set_working_hours(member, form.value(), actor=member)
        except hours.InvalidHours as exc:
            form.add_error(None, str(exc))
        else:
            flash.success(request, _("Your working hours are saved."))
            return redirect(reverse("inbox:preferences", args=[request.workspace.slug]))
    return _preferences_page(request, form, status=400)


# -- canned replies in the composer -----------------------------------------------------------
def _preview(body: str, limit: int = 90) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@require_GET
@workspace_view
def canned_replies(request, number: int):
    """The replies the composer's "/" menu offers for this conversation: the member's own and
    the shared ones, those in the conversation's language (or the contact's) first."""
    conversation = _conversation(request, number)
    language = conversation.language or conversation.contact.locale
    items = [
        {
            "id": reply.pk,
            "shortcut": reply.shortcut,
            "title": reply.title,
            "language": reply.language,
            "shared": reply.is_shared,
            "preview": _preview(reply.body),
            "url": reverse(
                "inbox:canned_reply", args=[request.workspace.slug, conversation.number, reply.pk]
            ),
        }
        for reply in canned.for_composer(request.membership, language)
    ]
    return JsonResponse({"items": items})


@require_GET
@workspace_view
def canned_reply(request, number: int, reply_id: int):
    """One reply's text filled in for this conversation and this member; nothing is sent."""
    conversation = _conversation(request, number)
    reply = canned.get_visible(request.membership, reply_id)
    text, unknown = canned.render(reply, conversation, request.membership)
    return JsonResponse({"text": text, "unknown_variables": unknown})
