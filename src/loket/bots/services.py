"""Managing flows: create, edit the draft, publish a version, switch on and off, import and
export — by owners and admins; reading them and their figures, scoped to one workspace."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket import events
from loket.bots import definition as flow_definition
from loket.bots.engine import forget_flows
from loket.bots.models import BotSession, Flow, FlowTrigger, FlowVersion, SessionState
from loket.inbox.models import (
    AuthorType,
    Channel,
    Conversation,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services.conversations import check_actor
from loket.problems import Invalid, Problem
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import require_admin

EXPORT_FORMAT = "loket.flow/1"


class InvalidFlowSettings(Invalid):
    """Flow settings that cannot be saved; the problem says why."""


def _check_admin(actor: Membership | None, workspace_id: int) -> None:
    require_admin(actor, workspace_id, gettext("Only owners and admins can change bot flows."))


def _clean_settings(workspace_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name or len(name) > 200:
            raise InvalidFlowSettings(_("a flow needs a name of up to 200 characters"))
        cleaned["name"] = name
    if "description" in fields:
        cleaned["description"] = (fields["description"] or "").strip()[:2000]
    if "trigger" in fields:
        if fields["trigger"] not in FlowTrigger.values:
            raise InvalidFlowSettings(
                _("unknown trigger “%(value)s”; one of %(choices)s"),
                value=fields["trigger"],
                choices=", ".join(FlowTrigger.values),
            )
        cleaned["trigger"] = fields["trigger"]
    for key in ("keywords", "handoff_words"):
        if key in fields:
            words = fields[key] or []
            if not isinstance(words, list) or not all(
                isinstance(w, str) and 0 < len(w.strip()) <= 64 for w in words
            ):
                raise InvalidFlowSettings(_("%(field)s is a list of words"), field=key)
            cleaned[key] = [w.strip() for w in words][:50]
    if "enabled" in fields:
        cleaned["enabled"] = bool(fields["enabled"])
    return cleaned


def _channels(workspace_id: int, ids: list[int]) -> list[Channel]:
    found = list(Channel.objects.filter(workspace_id=workspace_id, pk__in=ids))
    if len(found) != len(set(ids)):
        raise InvalidFlowSettings(_("a channel is not in this workspace"))
    return found


def create_flow(
    workspace: Workspace,
    *,
    name: str,
    draft: dict | None = None,
    trigger: str = FlowTrigger.NEW_CONVERSATION,
    keywords: list[str] | None = None,
    handoff_words: list[str] | None = None,
    channel_ids: list[int] | None = None,
    description: str = "",
    actor: Membership | None = None,
) -> Flow:
    _check_admin(actor, workspace.pk)
    fields = _clean_settings(
        workspace.pk,
        {
            "name": name,
            "trigger": trigger,
            "keywords": keywords or [],
            "handoff_words": handoff_words or [],
            "description": description,
        },
    )
    if draft is not None:
        flow_definition.clean(draft, workspace.pk)  # a draft must at least be valid JSON shape
    flow = Flow.objects.create(workspace=workspace, created_by=actor, draft=draft or {}, **fields)
    if channel_ids:
        flow.channels.set(_channels(workspace.pk, channel_ids))
    return flow


def update_flow(flow: Flow, *, actor: Membership | None = None, **changes: Any) -> Flow:
    """Change settings and the draft; the published version is untouched until ``publish``.
    A draft is stored as given (it may be unfinished); ``check_draft`` says what is wrong."""
    _check_admin(actor, flow.workspace_id)
    channel_ids = changes.pop("channel_ids", None)
    draft = changes.pop("draft", None)
    fields = _clean_settings(flow.workspace_id, changes)
    if draft is not None:
        if not isinstance(draft, dict):
            raise InvalidFlowSettings(_("a draft is a JSON object"))
        fields["draft"] = draft
    for name, value in fields.items():
        setattr(flow, name, value)
    if fields.get("enabled") and flow.published_id is None:
        raise InvalidFlowSettings(_("publish the flow before switching it on"))
    flow.updated_at = timezone.now()
    flow.save()
    if channel_ids is not None:
        flow.channels.set(_channels(flow.workspace_id, channel_ids))
    forget_flows(flow.workspace_id)
    return flow


def check_draft(flow: Flow) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of the flow's draft."""
    try:
        _clean, warnings = flow_definition.clean(copy.deepcopy(flow.draft), flow.workspace_id)
    except flow_definition.InvalidFlow as exc:
        return exc.errors, []
    return [], warnings


def publish(flow: Flow, *, actor: Membership | None = None) -> FlowVersion:
    """The draft becomes the version new conversations get; running ones keep theirs."""
    _check_admin(actor, flow.workspace_id)
    definition, _warnings = flow_definition.clean(copy.deepcopy(flow.draft), flow.workspace_id)
    with transaction.atomic():
        locked = Flow.objects.select_for_update().get(pk=flow.pk)
        number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = FlowVersion.objects.create(
            workspace_id=flow.workspace_id,
            flow=locked,
            number=number,
            definition=definition,
            published_by=actor,
        )
        locked.published = version
        locked.updated_at = timezone.now()
        locked.save(update_fields=["published", "updated_at"])
    flow.published = version
    forget_flows(flow.workspace_id)
    return version


def delete_flow(flow: Flow, *, actor: Membership | None = None) -> None:
    _check_admin(actor, flow.workspace_id)
    with transaction.atomic():
        BotSession.objects.filter(flow=flow, state=SessionState.ACTIVE).update(
            state=SessionState.STOPPED, ended_at=timezone.now()
        )
        flow.delete()
    forget_flows(flow.workspace_id)


def export_flow(flow: Flow) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "name": flow.name,
        "description": flow.description,
        "trigger": flow.trigger,
        "keywords": flow.keywords,
        "handoff_words": flow.handoff_words,
        "definition": flow.draft,
    }


def import_flow(workspace: Workspace, data: Any, *, actor: Membership | None = None) -> Flow:
    """A new flow (switched off, unpublished) from an export."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise InvalidFlowSettings(
            _("not a Loket flow export (format %(format)s)"), format=EXPORT_FORMAT
        )
    flow_definition.clean(copy.deepcopy(data.get("definition")), workspace.pk)
    return create_flow(
        workspace,
        name=data.get("name") or "Imported flow",
        description=data.get("description") or "",
        trigger=data.get("trigger") or FlowTrigger.NEW_CONVERSATION,
        keywords=data.get("keywords") or [],
        handoff_words=data.get("handoff_words") or [],
        draft=data.get("definition"),
        actor=actor,
    )


def take_over(conversation: Conversation, actor: Membership | None) -> BotSession | None:
    """An agent takes the conversation from the bot (the inbox's "Take over"): its active session
    stops, as when an agent replies; an activity line says who took over, and
    ``conversation.updated`` (``{"bot_session": "stopped"}``) re-renders the header on the
    agents' screens. Any member of the conversation's workspace may (``actor`` None: the system);
    with no bot talking it does nothing and returns None."""
    check_actor(actor, conversation.workspace_id)
    with transaction.atomic():
        # Locked: a bot turn in progress holds this row; it finishes before the bot stops.
        session = (
            BotSession.objects.select_for_update(of=("self",))
            .select_related("flow")
            .filter(
                workspace_id=conversation.workspace_id,
                conversation_id=conversation.pk,
                state=SessionState.ACTIVE,
            )
            .first()
        )
        if session is None:
            return None
        now = timezone.now()
        session.state = SessionState.STOPPED
        session.ended_at = session.updated_at = now
        session.timeout_at = None
        session.save(update_fields=["state", "ended_at", "updated_at", "timeout_at"])
        Message.objects.create(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            channel_id=conversation.channel_id,
            direction=Direction.OUTBOUND,
            kind=MessageKind.ACTIVITY,
            author_type=AuthorType.MEMBER if actor else AuthorType.SYSTEM,
            author_member=actor,
            text="bot_taken_over",
            data={
                "action": "bot_taken_over",
                "flow_id": session.flow_id,
                "flow_name": session.flow.name,
                "step": session.step,
            },
        )
        events.emit(
            events.ConversationUpdated(
                conversation.workspace_id,
                events.Actor(AuthorType.MEMBER, actor.pk) if actor else events.Actor.system(),
                conversation.pk,
                {"bot_session": SessionState.STOPPED.value},
            )
        )
    return session


# -- reads --------------------------------------------------------------------------------------
def flows_of(workspace_id: int):
    return Flow.objects.filter(workspace_id=workspace_id).order_by("name", "pk")


def get_flow(workspace_id: int, flow_id: int) -> Flow | None:
    return Flow.objects.filter(workspace_id=workspace_id, pk=flow_id).first()


def metrics(flow: Flow) -> dict[str, Any]:
    """Started, completed, handed off, dropped, stopped by an agent, still talking; and per
    step how many sessions reached it and how many were dropped there."""
    sessions = BotSession.objects.filter(workspace_id=flow.workspace_id, flow=flow)
    by_state = Counter(dict(_count_by(sessions, "state")))
    reached: Counter[str] = Counter()
    dropped_at: Counter[str] = Counter()
    for state, step, path in sessions.values_list("state", "step", "path").iterator():
        reached.update(set(path or []))
        if state == SessionState.DROPPED:
            dropped_at[step] += 1
    return {
        "started": sum(by_state.values()),
        **{state: by_state.get(state, 0) for state in SessionState.values},
        "steps": {
            step: {"reached": reached[step], "dropped": dropped_at.get(step, 0)}
            for step in sorted(reached, key=lambda s: -reached[s])
        },
    }


def _count_by(queryset, field: str):
    from django.db.models import Count

    return queryset.order_by().values_list(field).annotate(n=Count("pk"))
