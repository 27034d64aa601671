"""SLA policies: how soon a conversation gets its first answer, each next answer and its
resolution, per priority, with a warning before the due time and a record of every breach.

**Policies.** A workspace has any number of policies (``SlaPolicy``); new conversations of a
channel get the first enabled policy that lists the channel, else the workspace's default
policy (when enabled). Rules apply another one with :func:`apply_policy`. A policy counts in
business hours (the channel's own hours, else the workspace's, with holidays and time zone:
loket.tenancy.hours.Schedule) or in calendar time.

**Targets.** For the conversation's priority, in minutes; a target without minutes does not run.

- *First response*: from the conversation's start until an agent's first reply.
- *Next response*: from a customer message that came after the first reply (while nobody
  answered them yet) until an agent answers.
- *Resolution*: from the start (or a reopening) until the conversation is resolved or closed.

**Pauses.** While a conversation is *pending* (the customer's turn) every running target is
paused: the business (or calendar) minutes of the pause are added to its due time when it is
open again. Snoozed conversations keep running (the agent chose to wait, not the customer).

**The clock** is recomputed after commit from events (:func:`on_event`): conversation created,
customer message (next response), agent reply (first/next response met), priority change
(due times recomputed from the targets' starts), pending (pause), open (resume or, after a
resolution, restart), resolved/closed (stop: the resolution target met or breached). Every
moment comes from ``loket.automation.clock`` (the database's time; tests freeze it).
``Conversation.sla_clock`` keeps each running target's start, paused minutes and whether it
was warned or breached (for which due time); the ``*_due_at`` columns, the nearest due time
(``sla_due_at``, the list's chip and sort), the nearest at-risk moment (``sla_warn_at``) and
when the periodic check must look next (``sla_check_at``) follow from it.

**The periodic check** (:func:`check_due`, every 30 seconds) looks only at conversations whose
``sla_check_at`` passed, locks each (skipping one another worker holds), records an
``SlaWarning`` at the at-risk moment and an ``SlaBreach`` at the due time, each once per target
and due time (unique constraints, so two workers cannot both announce it), emits
``events.SlaChanged`` (``at_risk`` / ``breached``) and notifies the assignee. A target whose
due time passes before anyone looked is only announced as breached.

**Outcomes.** When a target stops (the reply that ends a response target, the resolution that
ends the resolution target) an ``SlaOutcome`` row says whether it was met, in the same
transaction (the SLA report counts targets achieved from them).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from loket import events
from loket.automation import clock
from loket.automation.models import (
    SlaBreach,
    SlaOutcome,
    SlaPolicy,
    SlaTarget,
    SlaWarning,
    SlaWarnUnit,
)
from loket.events import Actor
from loket.inbox.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    MessageKind,
    NotificationKind,
    Priority,
)
from loket.inbox.services.notifications import notify
from loket.memo import PerWorkspace
from loket.tenancy.hours import Schedule
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import NotAllowed, require_admin

log = logging.getLogger(__name__)

TARGETS = tuple(SlaTarget.values)  # first_response, next_response, resolution
DUE_FIELDS = {target: f"{target}_due_at" for target in TARGETS}
# A target may be at most a year of minutes; the warning at most as many minutes or 100 %.
MAX_MINUTES = 366 * 24 * 60
BATCH = 500
_STOPPED = (ConversationStatus.RESOLVED, ConversationStatus.CLOSED)
_ALWAYS = Schedule(dt.UTC, {}, frozenset())


class InvalidPolicy(ValueError):
    """A policy that cannot be saved; ``field`` names the form field to show it on."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- Policies ---------------------------------------------------------------------------------
def _check_admin(actor: Membership | None, workspace_id: int) -> None:
    require_admin(actor, workspace_id, _("Only admins can manage SLA policies."))


def clean_targets(value) -> dict[str, dict[str, int]]:
    """``{"<priority>": {"<target>": minutes}}`` validated; empty targets are left out."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise InvalidPolicy(_("targets map a priority to minutes per target"), "targets")
    out: dict[str, dict[str, int]] = {}
    for priority, minutes in value.items():
        if str(priority) not in {str(p) for p in Priority.values}:
            raise InvalidPolicy(
                _("unknown priority %(priority)s") % {"priority": repr(priority)}, "targets"
            )
        if not isinstance(minutes, dict) or set(minutes) - set(TARGETS):
            raise InvalidPolicy(
                _("the targets are %(targets)s") % {"targets": ", ".join(TARGETS)}, "targets"
            )
        row = {}
        for target, amount in minutes.items():
            if amount in (None, ""):
                continue
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise InvalidPolicy(_("a target is a whole number of minutes"), "targets")
            if not 1 <= amount <= MAX_MINUTES:
                raise InvalidPolicy(
                    _("a target is between 1 and %(max)s minutes") % {"max": MAX_MINUTES},
                    "targets",
                )
            row[target] = amount
        if row:
            out[str(priority)] = row
    return out


def _clean(workspace_id: int, fields: dict, policy: SlaPolicy | None = None) -> dict:
    cleaned = dict(fields)
    if "name" in cleaned:
        cleaned["name"] = (cleaned["name"] or "").strip()
        if not cleaned["name"]:
            raise InvalidPolicy(_("A policy needs a name."), "name")
        if len(cleaned["name"]) > 100:
            raise InvalidPolicy(_("A name is at most 100 characters."), "name")
        taken = SlaPolicy.objects.filter(workspace_id=workspace_id, name=cleaned["name"])
        if policy is not None:
            taken = taken.exclude(pk=policy.pk)
        if taken.exists():
            raise InvalidPolicy(_("Another policy has that name."), "name")
    if "targets" in cleaned:
        cleaned["targets"] = clean_targets(cleaned["targets"])
    if "warn_unit" in cleaned and cleaned["warn_unit"] not in SlaWarnUnit.values:
        raise InvalidPolicy(_("Warn by percent or by minutes."), "warn_unit")
    if "warn_value" in cleaned:
        value = cleaned["warn_value"]
        unit = cleaned.get("warn_unit") or (policy.warn_unit if policy else SlaWarnUnit.PERCENT)
        ceiling = 100 if unit == SlaWarnUnit.PERCENT else MAX_MINUTES
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ceiling:
            raise InvalidPolicy(
                _("The warning is a number from 0 to %(max)s.") % {"max": ceiling}, "warn_value"
            )
    if "channels" in cleaned:
        channels = list(cleaned["channels"] or [])
        if any(channel.workspace_id != workspace_id for channel in channels):
            raise InvalidPolicy(_("A channel belongs to another workspace."), "channels")
        cleaned["channels"] = channels
    return cleaned


def _save(policy: SlaPolicy, fields: dict) -> SlaPolicy:
    channels = fields.pop("channels", None)
    for name, value in fields.items():
        setattr(policy, name, value)
    if policy.is_default:
        SlaPolicy.objects.filter(workspace_id=policy.workspace_id, is_default=True).exclude(
            pk=policy.pk
        ).update(is_default=False)
    policy.save()
    if channels is not None:
        policy.channels.set(channels)
    forget_policies(policy.workspace_id)
    return policy


def create_policy(
    workspace: Workspace,
    *,
    actor: Membership | None = None,
    name: str,
    targets: dict | None = None,
    business_hours: bool = True,
    warn_unit: str = SlaWarnUnit.PERCENT,
    warn_value: int = 80,
    channels: Iterable[Channel] = (),
    enabled: bool = True,
    is_default: bool = False,
) -> SlaPolicy:
    """A new policy. ``is_default``: the one for channels no policy lists (the previous
    default stops being it)."""
    _check_admin(actor, workspace.pk)
    fields = _clean(
        workspace.pk,
        {
            "name": name,
            "targets": targets,
            "business_hours": bool(business_hours),
            "warn_unit": warn_unit,
            "warn_value": warn_value,
            "channels": channels,
            "enabled": bool(enabled),
            "is_default": bool(is_default),
        },
    )
    with transaction.atomic():
        return _save(SlaPolicy(workspace=workspace), fields)


def update_policy(policy: SlaPolicy, *, actor: Membership | None = None, **fields) -> SlaPolicy:
    """Change a policy (only the given fields). Running clocks of its open conversations follow
    the new targets (recomputed after commit, in the background)."""
    _check_admin(actor, policy.workspace_id)
    unknown = set(fields) - {
        "name", "targets", "business_hours", "warn_unit", "warn_value", "channels", "enabled",
        "is_default",
    }  # fmt: skip
    if unknown:
        raise TypeError(f"unknown policy fields {sorted(unknown)}")
    cleaned = _clean(policy.workspace_id, fields, policy)
    with transaction.atomic():
        policy = _save(policy, cleaned)
        if set(cleaned) & {"targets", "business_hours", "warn_unit", "warn_value", "enabled"}:
            from loket.automation.tasks import recompute_sla_policy

            transaction.on_commit(lambda: recompute_sla_policy.enqueue(policy.pk))
    return policy


def delete_policy(policy: SlaPolicy, *, actor: Membership | None = None) -> None:
    """Delete a policy; its conversations no longer have an SLA (their breaches stay, for
    reports, without the policy)."""
    _check_admin(actor, policy.workspace_id)
    with transaction.atomic():
        Conversation.objects.filter(sla_policy=policy).update(
            sla_policy=None, sla_clock={}, sla_paused_at=None, **_CLEARED
        )
        policy.delete()
    forget_policies(policy.workspace_id)


def policies(workspace_id: int):
    return (
        SlaPolicy.objects.filter(workspace_id=workspace_id)
        .prefetch_related("channels")
        .order_by("-is_default", "name", "pk")
    )


def get_policy(member: Membership, policy_id: int) -> SlaPolicy:
    """The member's workspace's policy; another workspace's id is a 404."""
    policy = policies(member.workspace_id).filter(pk=policy_id).first()
    if policy is None:
        raise Http404(_("No such SLA policy."))
    return policy


def policy_for(conversation: Conversation) -> SlaPolicy | None:
    """The policy a new conversation gets: an enabled one listing its channel (the oldest), else
    the enabled default."""
    found = (
        SlaPolicy.objects.filter(workspace_id=conversation.workspace_id, enabled=True)
        .filter(Q(channels=conversation.channel_id) | Q(is_default=True))
        .order_by("is_default", "pk")
        .first()
    )
    return found


# -- The clock --------------------------------------------------------------------------------
_CLEARED = {
    **{field: None for field in DUE_FIELDS.values()},
    "sla_due_at": None,
    "sla_warn_at": None,
    "sla_check_at": None,
}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def schedule_for(conversation: Conversation, policy: SlaPolicy) -> Schedule:
    if not policy.business_hours:
        return _ALWAYS
    return Schedule.of(conversation.workspace, conversation.channel)


def _running(state: dict) -> dict[str, dict]:
    return {target: entry for target, entry in state.items() if target in TARGETS}


def _due_and_warn(
    policy: SlaPolicy, schedule: Schedule, priority: int, target: str, entry: dict
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(due, at risk) of a running target, pauses included; (None, None) without minutes."""
    if entry.get("breached"):
        due = _moment(entry["breached"])
        return due, due
    minutes = policy.minutes(priority, target)
    if minutes is None:
        return None, None
    start = _moment(entry["start"])
    paused = entry.get("paused", 0.0)
    due = schedule.add(start, minutes + paused)
    if policy.warn_unit == SlaWarnUnit.MINUTES:
        before = max(minutes - policy.warn_value, 0)
    else:
        before = minutes * min(policy.warn_value, 100) / 100
    warn = schedule.add(start, before + paused)
    return due, warn


def _fields(conversation: Conversation, policy: SlaPolicy | None, state: dict) -> dict:
    """The conversation's SLA columns for this clock state."""
    fields = dict(_CLEARED)
    if policy is None or not policy.enabled or conversation.sla_paused_at is not None:
        return fields
    schedule = schedule_for(conversation, policy)
    checks, warns = [], []
    for target, entry in _running(state).items():
        due, warn = _due_and_warn(policy, schedule, conversation.priority, target, entry)
        if due is None:
            continue
        fields[DUE_FIELDS[target]] = due
        warns.append(warn)
        if entry.get("breached"):
            continue
        checks.append(warn if entry.get("warned") != _iso(due) else due)
    dues = [value for name, value in fields.items() if name in DUE_FIELDS.values() and value]
    fields["sla_due_at"] = min(dues, default=None)
    fields["sla_warn_at"] = min(warns, default=None)
    fields["sla_check_at"] = min(checks, default=None)
    return fields


def _store(conversation: Conversation, policy: SlaPolicy | None, state: dict) -> None:
    fields = _fields(conversation, policy, state)
    fields.update(sla_policy=policy, sla_clock=state, sla_paused_at=conversation.sla_paused_at)
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)


def _locked(conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("sla_policy", "workspace", "channel")
        .filter(pk=conversation_id)
        .first()
    )


def _start(state: dict, target: str, now: dt.datetime) -> None:
    state[target] = {"start": _iso(now), "paused": 0.0}


def _fresh_state(conversation: Conversation, now: dt.datetime) -> dict:
    state: dict = {}
    if conversation.status in _STOPPED:
        return state
    if conversation.first_response_at is None:
        _start(state, SlaTarget.FIRST_RESPONSE, now)
    elif conversation.waiting_since is not None:
        _start(state, SlaTarget.NEXT_RESPONSE, now)
    _start(state, SlaTarget.RESOLUTION, now)
    return state


def apply_policy(
    conversation: Conversation, policy: SlaPolicy | None, actor: Membership | None = None
) -> Conversation:
    """Put the conversation under ``policy`` (None: no SLA). Rules apply a policy by channel or
    label; a new conversation gets :func:`policy_for`'s. Clocks already running (under another
    policy, or the same one applied again) keep their starts and pauses, so only the targets
    change; otherwise they start now."""
    workspace_id = conversation.workspace_id
    if policy is not None and policy.workspace_id != workspace_id:
        raise NotAllowed(_("that policy belongs to another workspace"))
    if actor is not None and actor.workspace_id != workspace_id:
        raise NotAllowed(_("the acting member belongs to another workspace"))
    now = clock.now()
    with transaction.atomic():
        locked = _locked(conversation.pk)
        if locked is None:
            return conversation
        state = dict(locked.sla_clock or {})
        if policy is None:
            state, locked.sla_paused_at = {}, None
        elif locked.sla_policy_id is None or not _running(state):
            state = _fresh_state(locked, now)
            paused = locked.status == ConversationStatus.PENDING
            locked.sla_paused_at = now if paused else None
        _store(locked, policy, state)
    return locked


def _record_once(model, **values) -> bool:
    try:
        with transaction.atomic():
            model.objects.create(**values)
    except IntegrityError:
        return False
    return True


def _announce(conversation: Conversation, target: str, state: str, due: dt.datetime) -> None:
    events.emit(
        events.SlaChanged(
            conversation.workspace_id,
            Actor.system(),
            conversation.pk,
            target,
            state,
            due.isoformat(),
        )
    )
    if conversation.assignee_id:
        recipient = (
            Membership.objects.select_related("user", "workspace")
            .filter(pk=conversation.assignee_id)
            .first()
        )
        if recipient is not None:
            notify(recipient, kind=NotificationKind.SLA, conversation=conversation, sla=state)


def _breach(
    conversation: Conversation,
    policy: SlaPolicy,
    target: str,
    due: dt.datetime,
    now: dt.datetime,
    *,
    announce: bool = True,
) -> None:
    recorded = _record_once(
        SlaBreach,
        workspace_id=conversation.workspace_id,
        conversation_id=conversation.pk,
        policy=policy,
        target=target,
        due_at=due,
        breached_at=now,
    )
    if recorded and announce:
        _announce(conversation, target, "breached", due)


def _finish(
    conversation: Conversation, policy: SlaPolicy, state: dict, target: str, now: dt.datetime
) -> None:
    """The target stops: met, or breached when it passed its due time (recorded now if the
    periodic check had not yet)."""
    entry = state.pop(target, None)
    if entry is None:
        return
    outcome = state.setdefault("outcome", {})
    if entry.get("breached"):
        outcome[target] = "breached"
        _record_outcome(conversation, policy, target, _moment(entry["breached"]), now, met=False)
        return
    due, _warn = _due_and_warn(
        policy, schedule_for(conversation, policy), conversation.priority, target, entry
    )
    if due is None:
        return
    if due < now:
        _breach(conversation, policy, target, due, now, announce=False)
        outcome[target] = "breached"
    else:
        outcome[target] = "met"
    _record_outcome(conversation, policy, target, due, now, met=due >= now)


def _record_outcome(
    conversation: Conversation,
    policy: SlaPolicy,
    target: str,
    due: dt.datetime,
    now: dt.datetime,
    *,
    met: bool,
) -> None:
    """The durable record of how a target ended (``SlaOutcome``, for the SLA report), in the
    transaction that stops it; once per conversation, target and due time."""
    _record_once(
        SlaOutcome,
        workspace_id=conversation.workspace_id,
        conversation_id=conversation.pk,
        policy=policy,
        target=target,
        due_at=due,
        completed_at=now,
        met=met,
    )


def _pause(conversation: Conversation, state: dict, now: dt.datetime) -> None:
    if conversation.sla_paused_at is None and _running(state):
        conversation.sla_paused_at = now


def _resume(conversation: Conversation, policy: SlaPolicy, state: dict, now: dt.datetime) -> None:
    paused_at = conversation.sla_paused_at
    if paused_at is None:
        return
    schedule = schedule_for(conversation, policy)
    for entry in _running(state).values():
        if entry.get("breached"):
            continue
        since = max(paused_at, _moment(entry["start"]))
        entry["paused"] = entry.get("paused", 0.0) + schedule.minutes_between(since, now)
    conversation.sla_paused_at = None


def _change(conversation_id: int, change, wanted=None) -> None:
    """Run ``change(conversation, policy, state, now)`` on the locked conversation with an
    enabled policy, then store the clock. One cheap read first, outside any transaction, settles
    the many conversations without a policy (or, with ``wanted(head)``, with nothing to do) before
    anything is locked: this runs after every message."""
    head = (
        Conversation.objects.filter(pk=conversation_id, sla_policy__enabled=True)
        .values("sla_clock", "first_response_at", "waiting_since")
        .first()
    )
    if head is None or (wanted is not None and not wanted(head)):
        return
    now = clock.now()
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation is None or conversation.sla_policy is None:
            return
        policy = conversation.sla_policy
        if not policy.enabled:
            return
        state = dict(conversation.sla_clock or {})
        change(conversation, policy, state, now)
        _store(conversation, policy, state)


def _status_changed(conversation, policy, state, now) -> None:
    status = conversation.status
    if status == ConversationStatus.PENDING:
        _pause(conversation, state, now)
    elif status in _STOPPED:
        _resume(conversation, policy, state, now)  # the pause's minutes count until now
        for target in [t for t in TARGETS if t in state]:
            if target == SlaTarget.RESOLUTION:
                _finish(conversation, policy, state, target, now)
            else:
                _drop_or_breach(conversation, policy, state, target, now)
    elif status in (ConversationStatus.OPEN, ConversationStatus.SNOOZED):
        _resume(conversation, policy, state, now)
        if status == ConversationStatus.OPEN and SlaTarget.RESOLUTION not in state:
            # Reopened after a resolution: a new resolution clock (and a new first response,
            # if nobody ever answered).
            state.pop("outcome", None)
            if conversation.first_response_at is None:
                _start(state, SlaTarget.FIRST_RESPONSE, now)
            _start(state, SlaTarget.RESOLUTION, now)


def _drop_or_breach(conversation, policy, state, target, now) -> None:
    """A response target still running when the conversation is resolved: breached if its due
    time passed, else simply no longer running."""
    entry = state.get(target)
    due, _warn = _due_and_warn(
        policy, schedule_for(conversation, policy), conversation.priority, target, entry
    )
    if entry.get("breached") or (due is not None and due < now):
        _finish(conversation, policy, state, target, now)
    else:
        state.pop(target)


def _may_start_next_response(head: dict) -> bool:
    return (
        head["first_response_at"] is not None
        and head["waiting_since"] is not None
        and SlaTarget.NEXT_RESPONSE not in (head["sla_clock"] or {})
    )


def _responses_running(head: dict) -> bool:
    state = head["sla_clock"] or {}
    return SlaTarget.FIRST_RESPONSE in state or SlaTarget.NEXT_RESPONSE in state


def _customer_wrote(conversation, policy, state, now) -> None:
    if (
        conversation.first_response_at is not None
        and conversation.waiting_since is not None
        and conversation.status not in _STOPPED
        and SlaTarget.NEXT_RESPONSE not in state
    ):
        _start(state, SlaTarget.NEXT_RESPONSE, now)


def _agent_replied(conversation, policy, state, now) -> None:
    if conversation.first_response_at is not None:
        _finish(conversation, policy, state, SlaTarget.FIRST_RESPONSE, now)
    if conversation.waiting_since is None:
        _finish(conversation, policy, state, SlaTarget.NEXT_RESPONSE, now)


def _priority_changed(conversation, policy, state, now) -> None:
    pass  # the due times follow from the targets' starts and the new priority (_store)


def _load_has_policies(workspace_id: int) -> bool:
    return SlaPolicy.objects.filter(workspace_id=workspace_id, enabled=True).exists()


# Whether a workspace has an enabled policy at all, kept briefly per process like the rules: most
# messages of most workspaces have no clock to move, and this runs after every one of them.
_has_policies: PerWorkspace[bool] = PerWorkspace(_load_has_policies)


def forget_policies(workspace_id: int) -> None:
    _has_policies.forget(workspace_id)


def on_event(event: events.Event) -> None:
    """Subscriber (settings.LOKET_EVENT_SUBSCRIBERS), called after commit."""
    if not _has_policies.get(event.workspace_id):
        return  # no enabled policy: no conversation of this workspace has a clock
    if isinstance(event, events.ConversationCreated):
        conversation = (
            Conversation.objects.select_related("workspace", "channel")
            .filter(pk=event.conversation_id, sla_policy__isnull=True)
            .first()
        )
        if conversation is not None and conversation.status not in _STOPPED:
            policy = policy_for(conversation)
            if policy is not None:
                apply_policy(conversation, policy)
    elif isinstance(event, events.ConversationUpdated):
        if "status" in event.changes:
            _change(event.conversation_id, _status_changed)
        elif "priority" in event.changes:
            _change(event.conversation_id, _priority_changed)
    elif isinstance(event, events.MessageCreated) and event.kind == MessageKind.MESSAGE:
        if event.direction == Direction.INBOUND:
            _change(event.conversation_id, _customer_wrote, _may_start_next_response)
        elif event.actor.type == "member":
            _change(event.conversation_id, _agent_replied, _responses_running)


# -- The periodic check -----------------------------------------------------------------------
def _check(conversation: Conversation, policy: SlaPolicy, state: dict, now: dt.datetime) -> None:
    schedule = schedule_for(conversation, policy)
    for target, entry in _running(state).items():
        if entry.get("breached"):
            continue
        due, warn = _due_and_warn(policy, schedule, conversation.priority, target, entry)
        if due is None:
            continue
        if due <= now:
            entry["breached"] = entry["warned"] = _iso(due)
            _breach(conversation, policy, target, due, now)
        elif warn <= now and entry.get("warned") != _iso(due):
            entry["warned"] = _iso(due)
            recorded = _record_once(
                SlaWarning,
                workspace_id=conversation.workspace_id,
                conversation_id=conversation.pk,
                target=target,
                due_at=due,
                warned_at=now,
            )
            if recorded:
                _announce(conversation, target, "at_risk", due)


def check_due(*, batch: int = BATCH) -> int:
    """Warn of and record the SLA targets whose at-risk moment or due time passed; returns how
    many conversations were looked at. Each in its own transaction, skipping one another worker
    has locked (it is doing the same)."""
    now = clock.now()
    pks = list(
        Conversation.objects.filter(sla_check_at__lte=now)
        .order_by("sla_check_at")
        .values_list("pk", flat=True)[:batch]
    )
    skip_locked = connection.features.has_select_for_update_skip_locked
    looked = 0
    for pk in pks:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update(of=("self",), skip_locked=skip_locked)
                .select_related("sla_policy", "workspace", "channel")
                .filter(pk=pk, sla_check_at__lte=now, sla_policy__enabled=True)
                .first()
            )
            if conversation is None:
                continue
            state = dict(conversation.sla_clock or {})
            _check(conversation, conversation.sla_policy, state, now)
            _store(conversation, conversation.sla_policy, state)
        looked += 1
    return looked


def recompute_policy(policy_id: int, *, batch: int = BATCH) -> int:
    """Recompute the clocks of a policy's unresolved conversations after it changed. Those
    resolved or closed while it was disabled (no event reached them) lose their running clocks."""
    Conversation.objects.filter(
        sla_policy_id=policy_id, status__in=_STOPPED, sla_clock__has_any_keys=list(TARGETS)
    ).update(sla_clock={}, sla_paused_at=None, **_CLEARED)
    pks = list(
        Conversation.objects.filter(sla_policy_id=policy_id)
        .exclude(status__in=_STOPPED)
        .values_list("pk", flat=True)
    )
    for start in range(0, len(pks), batch):
        for pk in pks[start : start + batch]:
            with transaction.atomic():
                conversation = _locked(pk)
                if conversation is None or conversation.sla_policy_id != policy_id:
                    continue
                _store(conversation, conversation.sla_policy, dict(conversation.sla_clock))
    return len(pks)


# -- For the screens --------------------------------------------------------------------------
def chip_state(due: dt.datetime | None, warn: dt.datetime | None, now: dt.datetime) -> str:
    """``breached``, ``at_risk`` or ``normal`` for a due time (and its at-risk moment)."""
    if due is None:
        return ""
    if due <= now:
        return "breached"
    if warn is not None and warn <= now:
        return "at_risk"
    return "normal"


def due_times(conversation: Conversation, now: dt.datetime | None = None) -> list[dict]:
    """The running targets' due times with their state, for the conversation's header."""
    now = now or clock.now()
    policy = conversation.sla_policy
    if policy is None:
        return []
    state = conversation.sla_clock or {}
    labels = dict(SlaTarget.choices)
    found = []
    schedule = schedule_for(conversation, policy) if policy.enabled else None
    for target in TARGETS:
        due = getattr(conversation, DUE_FIELDS[target])
        if due is None:
            continue
        entry = state.get(target) or {}
        _due, warn = (
            _due_and_warn(policy, schedule, conversation.priority, target, entry)
            if schedule is not None and entry
            else (due, None)
        )
        found.append(
            {
                "target": target,
                "label": labels[target],
                "due_at": due,
                "state": chip_state(due, warn, now),
            }
        )
    return found


def outcomes(conversation: Conversation) -> list[dict]:
    """Targets that ended (met or breached), for the conversation's sidebar."""
    labels = dict(SlaTarget.choices)
    done = (conversation.sla_clock or {}).get("outcome") or {}
    return [
        {"target": target, "label": labels[target], "outcome": done[target]}
        for target in TARGETS
        if target in done
    ]
