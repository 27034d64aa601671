"""Auto-assignment: a team's unassigned open conversations go to its online members, by round
robin or by workload balancing, never above a member's capacity.

**Which conversations.** Open, unassigned conversations of a team whose ``auto_assign`` is not
``off``: when one is created (``conversation.created``; the channel's default team is set at
creation), reopened or moved to such a team (``conversation.updated``), and every 30 seconds the
team's waiting ones, oldest first, while someone has room (agents coming online or finishing work).
When a member goes offline (``set_availability``), their open conversations of teams with
``reassign_when_offline`` are unassigned and handed out again.

**Who.** Members of the team whose availability is *online* (away and offline are skipped), who
are inside their working hours and who are under capacity. ``Membership.working_hours`` (None:
any time they are online) has the shape of the workspace's business hours and is read in the
workspace's time zone, closed on its holidays (``hours.Schedule.of_member``), at the database's
"now" (``clock.now``). Hours only decide who gets *new* work: a member whose hours end keeps
their conversations, and when their hours begin the periodic job below hands them waiting ones
(setting hours that have already begun does so straight away).

A member's load is the conversations assigned to them that are *open* or *pending*, in every
channel and team of the workspace (snoozed, resolved and closed ones do not count).
``Membership.capacity`` caps the total; ``Membership.capacities`` optionally caps a kind of work:
``"email"`` counts conversations of email channels, ``"chat"`` those of every other channel kind
(live chat, WhatsApp, Messenger, Instagram, Telegram, SMS, API); see ``work_kind``. So
``{"chat": 5, "email": 10}`` with capacity 12 allows 5 chats and 10 emails but 12 in all, and a
member full on chats still gets emails.

- *Round robin*: the next eligible member after ``team.last_assigned`` in membership id order,
  wrapping around.
- *Workload balancing*: the eligible member with the most free capacity (the smaller of total
  room and room for the conversation's kind); on a tie the one who has waited longest since the
  auto-assigner last gave them a conversation (never: first), then the lowest id.

**Fair under concurrency.** Each decision and its assignment run in one transaction that locks the
team row, then the team's online members (in id order, so two teams sharing members cannot
deadlock), then the conversation, and counts the loads only after those locks: a concurrent
assignment to any of these members has committed before the count or waits for this one. Working
hours are no database filter: every online member is locked as before, and those outside their
hours are left out afterwards, in Python (so the clock never changes which rows are locked in
which order). The team and member locks are ``FOR NO KEY UPDATE``, so ingest inserting
conversations that point at the team (a key-share lock) never waits for an assignment. On SQLite
write transactions are serialised anyway (``BEGIN IMMEDIATE`` and one writer per process).

The assignment goes through ``update_conversation`` (activity line, ``conversation.updated``) with
the system as the actor and ``context={"via": "auto_assign"}`` on its activity line, so the timeline
can say it was the auto-assigner.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext

from loket import events
from loket.automation import clock
from loket.inbox.models import (
    Conversation,
    ConversationStatus,
)
from loket.inbox.services.conversations import update_conversation
from loket.jobs.policy import job
from loket.memo import PerWorkspace
from loket.tenancy import hours
from loket.tenancy.models import (
    AutoAssign,
    Availability,
    AvailabilityPeriod,
    Membership,
    Team,
    Workspace,
)
from loket.tenancy.services import ADMIN_ROLES, NotAllowed

log = logging.getLogger(__name__)

CHAT = "chat"
EMAIL = "email"
WORK_KINDS = (CHAT, EMAIL)
# Conversations that occupy a member (a pending one may come back any moment).
COUNTED_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)
VIA = "auto_assign"
# Waiting conversations looked at per team and run of the periodic job.
BATCH = 200


def work_kind(channel_kind: str) -> str:
    """The kind of work a channel's conversations count as: email channels are "email", every
    other kind (live chat, messaging apps, SMS, API) is "chat"."""
    return EMAIL if channel_kind == "email" else CHAT


# -- Choosing ---------------------------------------------------------------------------------
def _limit(member: Membership, kind: str) -> int | None:
    value = (member.capacities or {}).get(kind)
    if isinstance(value, bool) or not isinstance(value, int):
        return None  # not set (or unreadable): only the total capacity applies
    return max(value, 0)


@dataclass(frozen=True)
class Load:
    member: Membership
    kind: str
    total: int
    of_kind: int

    @property
    def free(self) -> int:
        room = self.member.capacity - self.total
        limit = _limit(self.member, self.kind)
        return room if limit is None else min(room, limit - self.of_kind)


def loads(workspace_id: int, member_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per member: open + pending conversations assigned to them, by kind of work."""
    counted: dict[int, dict[str, int]] = {pk: defaultdict(int) for pk in member_ids}
    rows = (
        Conversation.objects.filter(
            workspace_id=workspace_id,
            assignee_id__in=member_ids,
            status__in=COUNTED_STATUSES,
        )
        .values_list("assignee_id", "channel__kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for member_id, channel_kind, n in rows:
        counted[member_id][work_kind(channel_kind)] += n
    return counted


def eligible(members: list[Membership], kind: str) -> list[Load]:
    """The given (online) members with room for one more conversation of this kind, in id
    order, with their loads."""
    if not members:
        return []
    counted = loads(members[0].workspace_id, [m.pk for m in members])
    found = []
    for member in sorted(members, key=lambda m: m.pk):
        by_kind = counted[member.pk]
        load = Load(member, kind, sum(by_kind.values()), by_kind[kind])
        if load.free > 0:
            found.append(load)
    return found


def choose(team: Team, candidates: list[Load]) -> Membership | None:
    """The member the team's policy picks among eligible candidates (in id order)."""
    if not candidates:
        return None
    if team.auto_assign == AutoAssign.ROUND_ROBIN:
        last = team.last_assigned_id or 0
        after = [c for c in candidates if c.member.pk > last]
        return (after or candidates)[0].member

    def rank(candidate: Load):
        waited_since = candidate.member.last_assigned_at
        # Most free first; then never assigned, then assigned longest ago; then lowest id.
        return (
            -candidate.free,
            waited_since is not None,
            waited_since or timezone.now(),
            candidate.member.pk,
        )

    return min(candidates, key=rank).member


# -- Assigning --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    # assigned | full (no online member in their hours with room) | skipped (not a
    # conversation to assign)
    result: str
    assignee: Membership | None = None


_SKIPPED = Outcome("skipped")


def _lock_team(team_id: int, workspace_id: int) -> Team | None:
    return (
        Team.objects.select_for_update(no_key=True)
        .filter(pk=team_id, workspace_id=workspace_id)
        .exclude(auto_assign=AutoAssign.OFF)
        .first()
    )


def _lock_online_members(team: Team) -> list[Membership]:
    return list(
        Membership.objects.select_for_update(of=("self",), no_key=True)
        .filter(workspace_id=team.workspace_id, teams=team, availability=Availability.ONLINE)
        .select_related("user")
        .order_by("pk")
    )


def in_working_hours(members: list[Membership], workspace_id: int) -> list[Membership]:
    """Those of the members who are inside their working hours now (order kept). Costs nothing
    when none of them has hours of their own; else one read of the workspace's time zone and
    holidays and, on PostgreSQL, of the database's clock."""
    if not any(m.working_hours for m in members):
        return members
    workspace = Workspace.objects.only("time_zone", "holidays").get(pk=workspace_id)
    now = clock.now()
    return [m for m in members if _working(m, workspace, now)]


def _working(member: Membership, workspace: Workspace, now) -> bool:
    if not member.working_hours:
        return True
    try:
        return hours.Schedule.of_member(member, workspace).is_open(now)
    except (ValueError, TypeError, AttributeError):
        # Unreadable hours (never written by set_working_hours): as if none were set, like an
        # unreadable capacity per kind.
        log.warning("member %s has unreadable working hours; ignoring them", member.pk)
        return True


def auto_assign(conversation_id: int) -> Outcome:
    """Assign this conversation if it is open, unassigned and in an auto-assigning team, to the
    member the team's policy picks among those with room. One transaction (see the module)."""
    # One cheap read, outside any transaction, settles the many conversations it has nothing to
    # do with; what it found is checked again under the locks.
    head = (
        Conversation.objects.filter(
            pk=conversation_id,
            status=ConversationStatus.OPEN,
            assignee__isnull=True,
            team__isnull=False,
        )
        .exclude(team__auto_assign=AutoAssign.OFF)
        .exclude(bot_sessions__state="active")  # the bot is talking; a hand-off assigns
        .values("workspace_id", "team_id")
        .first()
    )
    if head is None:
        return _SKIPPED
    with transaction.atomic():
        team = _lock_team(head["team_id"], head["workspace_id"])
        if team is None:
            return _SKIPPED
        members = in_working_hours(_lock_online_members(team), team.workspace_id)
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(
                pk=conversation_id,
                team=team,
                assignee__isnull=True,
                status=ConversationStatus.OPEN,
                merged_into__isnull=True,
            )
            .first()
        )
        if conversation is None:
            return _SKIPPED
        kind = work_kind(conversation.channel.kind)
        chosen = choose(team, eligible(members, kind))
        if chosen is None:
            return Outcome("full")
        _assign(conversation, team, chosen)
        return Outcome("assigned", chosen)


def _assign(conversation: Conversation, team: Team, member: Membership) -> None:
    update_conversation(conversation, actor=None, assignee=member, context={"via": VIA})
    Team.objects.filter(pk=team.pk).update(last_assigned=member)
    team.last_assigned = member
    now = timezone.now()
    Membership.objects.filter(pk=member.pk).update(last_assigned_at=now)
    member.last_assigned_at = now


def assign_waiting(*, team_ids: list[int] | None = None, batch: int = BATCH) -> int:
    """Assign teams' unassigned open conversations, oldest first, while members have room
    (the periodic job; also run when a member comes online). Returns how many were assigned."""
    someone_online = Membership.objects.filter(
        teams=OuterRef("pk"), availability=Availability.ONLINE
    )
    teams = (
        Team.objects.exclude(auto_assign=AutoAssign.OFF)
        .filter(Exists(someone_online))
        .order_by("pk")
    )
    if team_ids is not None:
        teams = teams.filter(pk__in=team_ids)
    assigned = 0
    for team in teams:
        waiting = (
            Conversation.objects.filter(
                workspace_id=team.workspace_id,
                team=team,
                status=ConversationStatus.OPEN,
                assignee__isnull=True,
                merged_into__isnull=True,
            )
            .exclude(bot_sessions__state="active")
            .order_by("created_at", "pk")
            .values_list("pk", "channel__kind")[:batch]
        )
        full: set[str] = set()
        for pk, channel_kind in list(waiting):
            kind = work_kind(channel_kind)
            if kind in full:
                continue
            outcome = auto_assign(pk)
            if outcome.result == "assigned":
                assigned += 1
            elif outcome.result == "full":
                full.add(kind)
                if len(full) == len(WORK_KINDS):
                    break
    return assigned


@job(every_seconds=30)
def assign_waiting_conversations() -> int:
    return assign_waiting()


# -- Availability -----------------------------------------------------------------------------
def set_availability(membership: Membership, availability: str) -> Membership:
    """Set a member's availability (online / away / offline). Going offline hands their open
    conversations of teams with ``reassign_when_offline`` back to the assigner; coming online
    lets their teams' waiting conversations be assigned straight away."""
    if availability not in Availability.values:
        raise ValueError(f"unknown availability {availability!r}")
    with transaction.atomic():
        previous = (
            Membership.objects.select_for_update()
            .filter(pk=membership.pk)
            .values_list("availability", flat=True)
            .get()
        )
        if previous != availability:
            Membership.objects.filter(pk=membership.pk).update(availability=availability)
            _record_period(membership, availability)
    membership.availability = availability
    if previous == availability:
        return membership
    if availability == Availability.OFFLINE:
        reassign_from(membership)
    elif availability == Availability.ONLINE:
        _assign_waiting_for(membership)
    return membership


def _record_period(membership: Membership, availability: str) -> None:
    """Close the member's open availability period and open the new one (the agents report's
    online time), in the transaction that changes the availability."""
    now = clock.now()
    AvailabilityPeriod.objects.filter(membership_id=membership.pk, ended_at__isnull=True).update(
        ended_at=now
    )
    AvailabilityPeriod.objects.create(
        workspace_id=membership.workspace_id,
        membership_id=membership.pk,
        availability=availability,
        started_at=now,
    )


def _assign_waiting_for(membership: Membership) -> int:
    """Assign the waiting conversations of the member's auto-assigning teams."""
    team_ids = list(
        Team.objects.filter(workspace_id=membership.workspace_id, members=membership)
        .exclude(auto_assign=AutoAssign.OFF)
        .values_list("pk", flat=True)
    )
    return assign_waiting(team_ids=team_ids) if team_ids else 0


def reassign_from(membership: Membership) -> int:
    """Unassign an offline member's open conversations of teams that reassign when a member
    goes offline, and assign each again (to someone with room, or later by the periodic job).
    Returns how many were unassigned."""
    teams = Team.objects.filter(
        workspace_id=membership.workspace_id, members=membership, reassign_when_offline=True
    ).exclude(auto_assign=AutoAssign.OFF)
    pks = list(
        Conversation.objects.filter(
            workspace_id=membership.workspace_id,
            assignee=membership,
            team__in=teams,
            status=ConversationStatus.OPEN,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    released = 0
    for pk in pks:
        with transaction.atomic():
            # Still theirs, still open, and they are still offline, once locked.
            conversation = (
                Conversation.objects.select_for_update(of=("self",))
                .filter(
                    pk=pk,
                    assignee=membership,
                    status=ConversationStatus.OPEN,
                    assignee__availability=Availability.OFFLINE,
                )
                .first()
            )
            if conversation is None:
                continue
            update_conversation(
                conversation,
                actor=None,
                assignee=None,
                context={
                    "via": VIA,
                    "reason": "offline",
                    "previous_id": membership.pk,
                    "previous_name": membership.display_name,
                },
            )
        released += 1
        auto_assign(pk)
    return released


def _bot_greets(workspace_id: int, conversation_id: int) -> bool:
    """A bot flow may start on this new conversation: it talks first (loket.bots)."""
    from loket.bots import engine as bots

    if not bots.enabled_flows(workspace_id):
        return False
    channel_id = (
        Conversation.objects.filter(pk=conversation_id).values_list("channel_id", flat=True).first()
    )
    return channel_id is not None and bots.may_start_on_arrival(workspace_id, channel_id)


# -- Events -----------------------------------------------------------------------------------
def _load_auto_assigning(workspace_id: int) -> bool:
    return (
        Team.objects.filter(workspace_id=workspace_id).exclude(auto_assign=AutoAssign.OFF).exists()
    )


# Whether a workspace has a team that assigns by itself, kept briefly per process (like the
# rules'): most conversations of most workspaces have nothing to be assigned by, and this runs
# after every new one.
_auto_assigning: PerWorkspace[bool] = PerWorkspace(_load_auto_assigning)


def on_event(event: events.Event) -> None:
    """Subscriber (settings.LOKET_EVENT_SUBSCRIBERS), called after commit."""
    if not isinstance(event, events.ConversationCreated | events.ConversationUpdated):
        return
    if not _auto_assigning.get(event.workspace_id):
        return
    if isinstance(event, events.ConversationCreated):
        conversation_id = event.conversation_id
        if _bot_greets(event.workspace_id, conversation_id):
            return
    elif isinstance(event, events.ConversationUpdated):
        changes = event.changes
        reopened = changes.get("status") == ConversationStatus.OPEN
        if not (reopened or changes.get("team_id")):
            return
        conversation_id = event.conversation_id
    else:
        return
    auto_assign(conversation_id)


# -- Settings ---------------------------------------------------------------------------------
def configure_team(
    team: Team, *, auto_assign: str | None = None, reassign_when_offline: bool | None = None
) -> Team:
    """Set how a team's conversations are assigned. Switching it on assigns its waiting
    conversations straight away."""
    fields = []
    if auto_assign is not None:
        if auto_assign not in AutoAssign.values:
            raise ValueError(f"unknown auto-assign mode {auto_assign!r}")
        if auto_assign != team.auto_assign:
            team.auto_assign = auto_assign
            fields.append("auto_assign")
    if reassign_when_offline is not None and reassign_when_offline != team.reassign_when_offline:
        team.reassign_when_offline = reassign_when_offline
        fields.append("reassign_when_offline")
    if fields:
        team.save(update_fields=fields)
        _auto_assigning.forget(team.workspace_id)
        if "auto_assign" in fields and team.auto_assign != AutoAssign.OFF:
            assign_waiting(team_ids=[team.pk])
    return team


def clean_capacities(capacities: dict) -> dict[str, int]:
    """Only known kinds of work with whole, non-negative numbers; anything else is an error."""
    cleaned = {}
    for kind, value in (capacities or {}).items():
        if kind not in WORK_KINDS:
            raise ValueError(f"unknown kind of work {kind!r}")
        if value is None:
            continue  # no limit of its own
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"capacity for {kind} must be a whole number, 0 or more")
        cleaned[kind] = value
    return cleaned


def set_capacities(membership: Membership, capacities: dict, *, actor: Membership) -> Membership:
    """Set a member's limits per kind of work (e.g. ``{"chat": 5, "email": 10}``; a kind left
    out or None: only the total capacity applies). Owners and admins only."""
    if actor.workspace_id != membership.workspace_id:
        raise NotAllowed(gettext("That member belongs to another workspace."))
    if actor.role not in ADMIN_ROLES:
        raise NotAllowed(gettext("Only owners and admins can manage members."))
    cleaned = clean_capacities(capacities)
    Membership.objects.filter(pk=membership.pk).update(capacities=cleaned)
    membership.capacities = cleaned
    return membership


def set_working_hours(
    membership: Membership, working_hours: dict | None, *, actor: Membership
) -> Membership:
    """Set when the auto-assigner may give a member conversations: weekday ranges like the
    workspace's business hours (``{"mon": [["09:00", "12:00"], ["13:00", "17:30"]], ...}``), in
    the workspace's time zone; None or empty: no hours of their own. The member themself, or an
    owner or admin. Raises ``hours.InvalidHours`` for hours that cannot be used. When the member
    is online and their hours have begun, their teams' waiting conversations are assigned
    straight away; conversations they already have stay theirs either way."""
    if actor.workspace_id != membership.workspace_id:
        raise NotAllowed(gettext("That member belongs to another workspace."))
    if actor.pk != membership.pk and actor.role not in ADMIN_ROLES:
        raise NotAllowed(gettext("Only owners and admins can change another member's hours."))
    cleaned = hours.clean_schedule(working_hours) or None
    Membership.objects.filter(pk=membership.pk).update(working_hours=cleaned)
    membership.working_hours = cleaned
    online = Membership.objects.filter(pk=membership.pk, availability=Availability.ONLINE)
    if online.exists() and in_working_hours([membership], membership.workspace_id):
        _assign_waiting_for(membership)
    return membership
