"""Auto-assignment: who gets a team's new, reopened and waiting conversations.

Conversations arrive through the real ingest service; the assigner runs as the event subscriber
configured in settings (after commit, which the ``arrive`` helper lets happen)."""

from __future__ import annotations

import itertools

import pytest

from loket.automation import assignment
from loket.automation.assignment import (
    assign_waiting,
    configure_team,
    set_availability,
    set_capacities,
    work_kind,
)
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Message,
    MessageKind,
)
from loket.inbox.services.channels import update_channel
from loket.inbox.services.conversations import update_conversation
from loket.jobs.policy import periodic_jobs
from loket.tenancy.models import AutoAssign, Availability, Membership, Team
from loket.tenancy.services import NotAllowed, add_member, create_team
from tests import factories

_contacts = itertools.count(1)


@pytest.fixture
def arrive(django_capture_on_commit_callbacks):
    """A customer's first message on the channel (a new contact each time, unless given); the
    after-commit subscribers run. Returns the conversation, fresh from the database."""

    def arrive(channel, contact_id: str | None = None, text: str = "Hello") -> Conversation:
        with django_capture_on_commit_callbacks(execute=True):
            result = factories.inbound(
                channel, text, contact_id=contact_id or f"cust-{next(_contacts)}"
            )
        return Conversation.objects.select_related("assignee").get(pk=result.conversation_id)

    return arrive


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a service with its after-commit subscribers."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


def member(workspace, name: str, *, online: bool = True, capacity: int = 10, **capacities):
    m = add_member(workspace, factories.user(f"{name.lower()}@acme.example", name))
    Membership.objects.filter(pk=m.pk).update(capacity=capacity, capacities=capacities)
    m.capacity, m.capacities = capacity, capacities
    if online:
        set_availability(m, Availability.ONLINE)
    return m


def team_of(workspace, members, mode=AutoAssign.ROUND_ROBIN, **options) -> Team:
    team = create_team(workspace, "Support", members)
    return configure_team(team, auto_assign=mode, **options)


@pytest.fixture
def chat(workspace):
    return factories.api_channel(workspace, name="Chat")


@pytest.fixture
def mail(workspace):
    return factories.email_channel(workspace)


def routed(channel, team):
    return update_channel(channel, name=channel.name, default_team=team)


def assignees(conversations) -> list[str]:
    names = []
    for conversation in conversations:
        conversation.refresh_from_db()
        names.append(conversation.assignee.display_name if conversation.assignee else None)
    return names


def load(m: Membership) -> int:
    return Conversation.objects.filter(
        assignee=m, status__in=[ConversationStatus.OPEN, ConversationStatus.PENDING]
    ).count()


# -- Round robin ------------------------------------------------------------------------------
def test_round_robin_goes_in_membership_order_and_wraps(workspace, owner, chat, arrive):
    anna, bram, cas = (member(workspace, n) for n in ("Anna", "Bram", "Cas"))
    team = team_of(workspace, [cas, anna, bram])  # the order members were added does not matter
    routed(chat, team)
    got = [arrive(chat) for _ in range(7)]
    assert assignees(got) == ["Anna", "Bram", "Cas", "Anna", "Bram", "Cas", "Anna"]
    team.refresh_from_db()
    assert team.last_assigned == anna


def test_round_robin_continues_after_the_last_assigned_member(workspace, chat, arrive):
    anna, bram, cas = (member(workspace, n) for n in ("Anna", "Bram", "Cas"))
    team = team_of(workspace, [anna, bram, cas])
    Team.objects.filter(pk=team.pk).update(last_assigned=bram)
    routed(chat, team)
    assert assignees([arrive(chat), arrive(chat)]) == ["Cas", "Anna"]


def test_the_assignment_is_an_activity_line_of_the_auto_assigner(workspace, chat, arrive):
    anna = member(workspace, "Anna")
    routed(chat, team_of(workspace, [anna]))
    conversation = arrive(chat)
    assert conversation.assignee == anna
    line = Message.objects.get(conversation=conversation, kind=MessageKind.ACTIVITY)
    assert line.author_type == AuthorType.SYSTEM and line.author_member is None
    assert line.data == {
        "action": "assigned",
        "assignee_id": anna.pk,
        "assignee_name": "Anna",
        "via": "auto_assign",
    }


def test_away_and_offline_members_are_skipped(workspace, chat, arrive):
    anna = member(workspace, "Anna")
    bram = member(workspace, "Bram")
    cas = member(workspace, "Cas", online=False)
    dirk = member(workspace, "Dirk")
    set_availability(bram, Availability.AWAY)
    routed(chat, team_of(workspace, [anna, bram, cas, dirk]))
    assert assignees([arrive(chat) for _ in range(4)]) == ["Anna", "Dirk", "Anna", "Dirk"]


def test_round_robin_skips_members_at_capacity(workspace, chat, arrive):
    anna = member(workspace, "Anna", capacity=1)
    bram = member(workspace, "Bram", capacity=3)
    routed(chat, team_of(workspace, [anna, bram]))
    got = [arrive(chat) for _ in range(5)]
    assert assignees(got) == ["Anna", "Bram", "Bram", "Bram", None]


# -- Workload balancing -----------------------------------------------------------------------
def test_balanced_gives_each_to_the_member_with_most_room(workspace, chat, arrive):
    anna = member(workspace, "Anna", capacity=2)
    bram = member(workspace, "Bram", capacity=5)
    cas = member(workspace, "Cas", capacity=3)
    routed(chat, team_of(workspace, [anna, bram, cas], AutoAssign.BALANCED))
    got = [arrive(chat) for _ in range(6)]
    # Room (Anna, Bram, Cas): 2,5,3 → Bram; 2,4,3 → Bram; 2,3,3 tie: Cas never had one → Cas;
    # 2,3,2 → Bram; 2,2,2 tie: Anna never had one → Anna; 1,2,2 tie: Cas waited longer → Cas.
    assert assignees(got) == ["Bram", "Bram", "Cas", "Bram", "Anna", "Cas"]
    assert [load(m) for m in (anna, bram, cas)] == [1, 3, 2]


def test_balanced_counts_open_and_pending_work_in_every_channel(
    workspace, owner, chat, mail, arrive, committed
):
    anna = member(workspace, "Anna", capacity=4)
    bram = member(workspace, "Bram", capacity=4)
    # Anna already has an open email, a pending chat elsewhere, and snoozed/resolved ones.
    other = factories.api_channel(workspace, name="Elsewhere")
    work = [arrive(mail), arrive(other), arrive(other), arrive(other)]
    for conversation, status in zip(work, ["open", "pending", "snoozed", "resolved"], strict=True):
        update_conversation(conversation, actor=owner, assignee=anna, status=status)
    routed(chat, team_of(workspace, [anna, bram], AutoAssign.BALANCED))
    got = [arrive(chat) for _ in range(3)]
    # Anna has 2 of 4 taken, Bram none: Bram, Bram (2 left each, Anna waited longer), Anna.
    assert assignees(got) == ["Bram", "Bram", "Anna"]


def test_ties_go_to_whoever_waited_longest_then_the_lowest_id(workspace, chat, arrive):
    anna, bram, cas = (member(workspace, n, capacity=5) for n in ("Anna", "Bram", "Cas"))
    team = team_of(workspace, [anna, bram, cas], AutoAssign.BALANCED)
    routed(chat, team)
    # Most room first; among equals who never had one, the lowest id.
    assert assignees([arrive(chat) for _ in range(3)]) == ["Anna", "Bram", "Cas"]
    # All equal again (4 free each); Anna has waited longest.
    assert assignees([arrive(chat)]) == ["Anna"]


# -- Capacity per kind of work ----------------------------------------------------------------
def test_kinds_of_work_email_channels_are_email_the_rest_chat():
    assert work_kind("email") == "email"
    for kind in ("api", "livechat", "whatsapp", "messenger", "instagram", "telegram", "twilio"):
        assert work_kind(kind) == "chat"


def test_a_member_full_on_chats_still_gets_emails(workspace, chat, mail, arrive):
    anna = member(workspace, "Anna", capacity=10, chat=1, email=2)
    team = team_of(workspace, [anna], AutoAssign.BALANCED)
    routed(chat, team)
    routed(mail, team)
    first, second = arrive(chat), arrive(chat)
    emails = [arrive(mail) for _ in range(3)]
    assert assignees([first, second]) == ["Anna", None]
    assert assignees(emails) == ["Anna", "Anna", None]


def test_the_total_capacity_caps_the_kinds_together(workspace, chat, mail, arrive):
    anna = member(workspace, "Anna", capacity=2, chat=5, email=5)
    team = team_of(workspace, [anna])
    routed(chat, team)
    routed(mail, team)
    assert assignees([arrive(chat), arrive(mail), arrive(mail)]) == ["Anna", "Anna", None]


def test_balanced_room_is_the_smaller_of_total_and_kind(workspace, chat, arrive):
    # Anna: 10 in all but 1 chat; Bram: 3 in all. Anna's room for a chat is 1, Bram's 3.
    anna = member(workspace, "Anna", capacity=10, chat=1)
    bram = member(workspace, "Bram", capacity=3)
    routed(chat, team_of(workspace, [anna, bram], AutoAssign.BALANCED))
    assert assignees([arrive(chat) for _ in range(5)]) == ["Bram", "Bram", "Anna", "Bram", None]


def test_capacity_zero_means_never_auto_assigned(workspace, chat, arrive):
    anna = member(workspace, "Anna", capacity=0)
    bram = member(workspace, "Bram", capacity=5, chat=0)
    routed(chat, team_of(workspace, [anna, bram]))
    assert assignees([arrive(chat)]) == [None]


# -- Waiting conversations and the periodic job -----------------------------------------------
def test_nobody_with_room_leaves_it_waiting_until_the_job_finds_room(
    workspace, owner, chat, arrive
):
    anna = member(workspace, "Anna", capacity=1)
    bram = member(workspace, "Bram", capacity=1)
    routed(chat, team_of(workspace, [anna, bram]))
    a, b = arrive(chat), arrive(chat)
    older, newer = arrive(chat), arrive(chat)
    assert assignees([a, b, older, newer]) == ["Anna", "Bram", None, None]
    assert assign_waiting() == 0  # still full
    update_conversation(a, actor=anna, status=ConversationStatus.RESOLVED)
    assert assign_waiting() == 1
    assert assignees([older, newer]) == ["Anna", None]  # the one waiting longest first
    # Snoozing frees a slot too; pending does not.
    update_conversation(b, actor=bram, status=ConversationStatus.PENDING)
    assert assign_waiting() == 0
    update_conversation(b, actor=bram, status=ConversationStatus.SNOOZED)
    assert assign_waiting() == 1
    assert assignees([newer]) == ["Bram"]
    assert max(load(anna), load(bram)) == 1


def test_the_job_is_a_periodic_job_that_assigns(workspace, chat, arrive):
    jobs = {p.name: p for p in periodic_jobs()}
    periodic = jobs["loket.automation.assignment.assign_waiting_conversations"]
    assert periodic.every_seconds <= 60
    anna = member(workspace, "Anna", online=False)
    routed(chat, team_of(workspace, [anna]))
    waiting = arrive(chat)
    Membership.objects.filter(pk=anna.pk).update(availability=Availability.ONLINE)  # not by us
    assert assignment.assign_waiting_conversations.call() == 1
    assert assignees([waiting]) == ["Anna"]


def test_the_job_skips_a_full_kind_but_goes_on_with_the_other(workspace, chat, mail, arrive):
    anna = member(workspace, "Anna", capacity=5, chat=0, email=5)
    # Switched on behind the service's back below (configure_team would assign them itself).
    team = create_team(workspace, "Support", [anna])
    routed(chat, team)
    routed(mail, team)
    waiting = [arrive(chat), arrive(chat), arrive(mail)]
    assert assignees(waiting) == [None, None, None]
    Team.objects.filter(pk=team.pk).update(auto_assign=AutoAssign.ROUND_ROBIN)
    assert assign_waiting() == 1
    assert assignees(waiting) == [None, None, "Anna"]


def test_coming_online_assigns_the_waiting_conversations(workspace, chat, arrive):
    anna = member(workspace, "Anna", online=False, capacity=2)
    routed(chat, team_of(workspace, [anna]))
    waiting = [arrive(chat) for _ in range(3)]
    assert assignees(waiting) == [None, None, None]
    set_availability(anna, Availability.AWAY)
    assert assignees(waiting) == [None, None, None]
    set_availability(anna, Availability.ONLINE)
    assert assignees(waiting) == ["Anna", "Anna", None]


def test_switching_a_team_on_assigns_its_waiting_conversations(workspace, chat, arrive):
    anna = member(workspace, "Anna")
    team = create_team(workspace, "Support", [anna])
    routed(chat, team)
    waiting = arrive(chat)
    assert assignees([waiting]) == [None]
    configure_team(team, auto_assign=AutoAssign.BALANCED)
    assert assignees([waiting]) == ["Anna"]


# -- Reopened and moved conversations ---------------------------------------------------------
def test_a_conversation_reopening_unassigned_is_assigned(workspace, owner, chat, arrive, committed):
    anna = member(workspace, "Anna", online=False)
    routed(chat, team_of(workspace, [anna]))
    conversation = arrive(chat, contact_id="returning")
    committed(update_conversation, conversation, actor=owner, status=ConversationStatus.RESOLVED)
    set_availability(anna, Availability.ONLINE)
    assert assignees([conversation]) == [None]  # resolved: nothing to do
    again = arrive(chat, contact_id="returning", text="It broke again")
    assert again.pk == conversation.pk and again.status == ConversationStatus.OPEN
    assert again.assignee == anna


def test_reopening_keeps_an_existing_assignee(workspace, owner, chat, arrive, committed):
    anna = member(workspace, "Anna")
    bram = member(workspace, "Bram")
    routed(chat, team_of(workspace, [anna, bram]))
    conversation = arrive(chat, contact_id="returning")
    assert conversation.assignee == anna
    committed(update_conversation, conversation, actor=owner, status=ConversationStatus.RESOLVED)
    committed(update_conversation, conversation, actor=owner, status=ConversationStatus.OPEN)
    assert assignees([conversation]) == ["Anna"]


def test_moving_a_conversation_to_an_auto_assigning_team_assigns_it(
    workspace, owner, chat, arrive, committed
):
    anna = member(workspace, "Anna")
    team = team_of(workspace, [anna])
    conversation = arrive(chat)  # the channel has no team
    assert conversation.assignee is None
    committed(update_conversation, conversation, actor=owner, team=team)
    assert assignees([conversation]) == ["Anna"]


def test_conversations_without_team_or_of_a_team_without_auto_assign_are_untouched(
    workspace, owner, chat, mail, arrive
):
    anna = member(workspace, "Anna")
    manual = create_team(workspace, "Manual", [anna])
    routed(mail, manual)
    untouched = [arrive(chat), arrive(mail)]
    assert assignees(untouched) == [None, None]
    assert assign_waiting() == 0
    set_availability(anna, Availability.OFFLINE)
    set_availability(anna, Availability.ONLINE)
    assert assignees(untouched) == [None, None]
    assert not Message.objects.filter(kind=MessageKind.ACTIVITY).exists()


# -- Going offline ----------------------------------------------------------------------------
def test_going_offline_hands_open_conversations_to_others(
    workspace, owner, chat, arrive, committed
):
    anna = member(workspace, "Anna", capacity=3)
    bram = member(workspace, "Bram", capacity=2)
    team = team_of(workspace, [anna, bram], reassign_when_offline=True)
    routed(chat, team)
    set_availability(bram, Availability.AWAY)
    mine = [arrive(chat) for _ in range(3)]
    assert assignees(mine) == ["Anna", "Anna", "Anna"]
    committed(update_conversation, mine[2], actor=anna, status=ConversationStatus.PENDING)
    set_availability(bram, Availability.ONLINE)
    set_availability(anna, Availability.OFFLINE)
    # The two open ones go to Bram; the pending one waits for the customer and stays.
    assert assignees(mine) == ["Bram", "Bram", "Anna"]
    lines = list(
        Message.objects.filter(conversation=mine[0], kind=MessageKind.ACTIVITY)
        .order_by("created_at", "pk")
        .values_list("data", flat=True)
    )
    assert [(d["action"], d["assignee_id"], d["via"]) for d in lines] == [
        ("assigned", anna.pk, "auto_assign"),
        ("unassigned", None, "auto_assign"),
        ("assigned", bram.pk, "auto_assign"),
    ]
    assert (lines[1]["reason"], lines[1]["previous_id"]) == ("offline", anna.pk)


def test_going_offline_with_nobody_free_leaves_them_waiting(workspace, chat, arrive):
    anna = member(workspace, "Anna")
    bram = member(workspace, "Bram", capacity=1)
    routed(chat, team_of(workspace, [anna, bram], reassign_when_offline=True))
    set_availability(bram, Availability.AWAY)
    mine = [arrive(chat) for _ in range(2)]
    set_availability(bram, Availability.ONLINE)
    set_availability(anna, Availability.OFFLINE)
    assert assignees(mine) == ["Bram", None]  # the oldest first
    set_availability(anna, Availability.ONLINE)
    assert assignees(mine) == ["Bram", "Anna"]


def test_without_reassign_when_offline_conversations_stay(workspace, owner, chat, arrive):
    anna = member(workspace, "Anna")
    bram = member(workspace, "Bram")
    routed(chat, team_of(workspace, [anna, bram], reassign_when_offline=False))
    mine = [arrive(chat)]
    assert assignees(mine) == ["Anna"]
    set_availability(anna, Availability.OFFLINE)
    assert assignees(mine) == ["Anna"]


def test_going_offline_only_releases_conversations_of_reassigning_teams(
    workspace, owner, chat, mail, arrive
):
    anna = member(workspace, "Anna")
    bram = member(workspace, "Bram")
    chats = team_of(workspace, [anna, bram], reassign_when_offline=True)
    emails = configure_team(
        create_team(workspace, "Email", [anna, bram]), auto_assign=AutoAssign.ROUND_ROBIN
    )
    routed(chat, chats)
    routed(mail, emails)
    set_availability(bram, Availability.AWAY)
    a_chat, a_mail = arrive(chat), arrive(mail)
    assert assignees([a_chat, a_mail]) == ["Anna", "Anna"]
    set_availability(bram, Availability.ONLINE)
    set_availability(anna, Availability.OFFLINE)
    assert assignees([a_chat, a_mail]) == ["Bram", "Anna"]


def test_set_availability_refuses_unknown_values(workspace):
    anna = member(workspace, "Anna")
    with pytest.raises(ValueError):
        set_availability(anna, "busy")


# -- Settings services ------------------------------------------------------------------------
def test_capacities_are_set_by_admins_only_and_checked(workspace, owner):
    anna = member(workspace, "Anna")
    set_capacities(anna, {"chat": 5, "email": 10}, actor=owner)
    assert Membership.objects.get(pk=anna.pk).capacities == {"chat": 5, "email": 10}
    set_capacities(anna, {"chat": None, "email": 3}, actor=owner)
    assert Membership.objects.get(pk=anna.pk).capacities == {"email": 3}
    for wrong in ({"phone": 1}, {"chat": -1}, {"chat": "5"}, {"chat": True}):
        with pytest.raises(ValueError):
            set_capacities(anna, wrong, actor=owner)
    with pytest.raises(NotAllowed):
        set_capacities(anna, {"chat": 1}, actor=anna)
    outsider = factories.owner_of(factories.workspace("bravo"))
    with pytest.raises(NotAllowed):
        set_capacities(anna, {"chat": 1}, actor=outsider)
    assert Membership.objects.get(pk=anna.pk).capacities == {"email": 3}


def test_configure_team_refuses_unknown_modes(workspace):
    team = create_team(workspace, "Support")
    with pytest.raises(ValueError):
        configure_team(team, auto_assign="random")
    assert Team.objects.get(pk=team.pk).auto_assign == AutoAssign.OFF


def test_the_timeline_names_the_auto_assigner(workspace, chat, arrive, client, owner):
    anna = member(workspace, "Anna")
    routed(chat, team_of(workspace, [anna], reassign_when_offline=True))
    conversation = arrive(chat)
    client.force_login(owner.user)
    pane = client.get(f"/w/{workspace.slug}/inbox/{conversation.number}/pane/").content.decode()
    assert "Assigned to Anna (auto-assign)" in pane


def test_going_offline_in_the_preferences_hands_conversations_on(
    workspace, chat, arrive, client, django_capture_on_commit_callbacks
):
    anna, bram = member(workspace, "Anna"), member(workspace, "Bram")
    routed(chat, team_of(workspace, [anna, bram], reassign_when_offline=True))
    first = arrive(chat)
    assert first.assignee == anna
    client.force_login(anna.user)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/w/{workspace.slug}/me/", {"availability": "offline"})
    assert answer.status_code in (200, 302)
    first.refresh_from_db()
    assert first.assignee == bram
    lines = list(
        Message.objects.filter(conversation=first, kind=MessageKind.ACTIVITY)
        .order_by("pk")
        .values_list("data__action", "data__reason")
    )
    assert ("unassigned", "offline") in lines
    owner_view = client.get(f"/w/{workspace.slug}/inbox/{first.number}/pane/").content.decode()
    assert "Unassigned: Anna went offline (auto-assign)" in owner_view
