"""Members and roles: who may change whom, the last-owner rule, capacity, removal."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.models import Conversation, ConversationStatus, Message, MessageKind
from loket.inbox.services.conversations import update_conversation
from loket.tenancy.models import Membership, Role
from loket.tenancy.services import NotAllowed, add_member, change_member, create_team
from tests import factories
from tests.workspace_settings.conftest import url


def change(client, workspace, member, *, role=None, capacity=None):
    return client.post(
        url("member-update", workspace, member.pk),
        {
            "role": role or member.role,
            "capacity": member.capacity if capacity is None else capacity,
        },
        follow=True,
    )


def role_of(member: Membership) -> str:
    return Membership.objects.get(pk=member.pk).role


def test_list_shows_each_member_with_role_teams_capacity_and_2fa(
    admin_client, workspace, owner, admin, agent
):
    create_team(workspace, "Billing", [agent])
    TOTP.activate(agent.user, generate_totp_secret())
    html = admin_client.get(url("members", workspace)).content.decode()
    row = html[html.index(f'id="member-{agent.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Abe Agent" in row and "agent@acme.example" in row
    assert '<option value="agent" selected>' in row
    assert "Offline" in row
    assert 'name="capacity" value="10"' in row
    assert '<span class="chip">Billing</span>' in row
    assert "Yes" in row
    owner_row = html[html.index(f'id="member-{owner.pk}"') :]
    assert "No" in owner_row[: owner_row.index("</tr>")]
    assert f'href="/w/{workspace.slug}/settings/invitations/"' in html  # "Invite people"


def test_members_page_runs_a_constant_number_of_queries(
    admin_client, workspace, django_assert_max_num_queries
):
    def members_page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url("members", workspace)).status_code == 200
        return len(queries)

    add_member(workspace, factories.user(), role=Role.AGENT)
    few = members_page_queries()
    team = create_team(workspace, "Support")
    for _ in range(15):
        member = factories.agent(workspace)
        team.members.add(member)
        TOTP.activate(member.user, generate_totp_secret())
    create_team(workspace, "Sales", list(Membership.objects.filter(workspace=workspace)))
    with django_assert_max_num_queries(few):
        assert admin_client.get(url("members", workspace)).status_code == 200


def test_admin_changes_an_agents_role_and_capacity(admin_client, workspace, agent):
    response = change(admin_client, workspace, agent, role=Role.SUPERVISOR, capacity=25)
    assert "Abe Agent was updated." in response.content.decode()
    agent.refresh_from_db()
    assert (agent.role, agent.capacity) == (Role.SUPERVISOR, 25)


@pytest.mark.parametrize("capacity", ["-1", "1001", "lots"])
def test_capacity_out_of_range_is_refused(admin_client, workspace, agent, capacity):
    response = change(admin_client, workspace, agent, capacity=capacity)
    assert "Abe Agent was not changed" in response.content.decode()
    agent.refresh_from_db()
    assert agent.capacity == 10


def test_admin_cannot_make_admins_or_touch_owners_and_admins(
    admin_client, workspace, owner, admin, agent
):
    other_admin = add_member(workspace, factories.user(), role=Role.ADMIN)
    for target, role in [
        (agent, Role.ADMIN),
        (agent, Role.OWNER),
        (other_admin, Role.AGENT),
        (owner, Role.AGENT),
        (admin, Role.OWNER),  # not even themselves
    ]:
        response = change(admin_client, workspace, target, role=role)
        assert "Only an owner can make or change owners and admins." in response.content.decode()
        assert role_of(target) == target.role
    # An admin may still set an owner's capacity.
    change(admin_client, workspace, owner, capacity=3)
    owner.refresh_from_db()
    assert owner.capacity == 3
    # And the page offers an admin no admin or owner role to pick.
    html = admin_client.get(url("members", workspace)).content.decode()
    assert '<option value="admin"' not in html and '<option value="owner"' not in html


def test_owner_makes_and_unmakes_admins_and_owners(owner_client, workspace, owner, agent):
    change(owner_client, workspace, agent, role=Role.ADMIN)
    assert role_of(agent) == Role.ADMIN
    change(owner_client, workspace, agent, role=Role.OWNER)
    assert role_of(agent) == Role.OWNER
    # Two owners now: the first may step down to admin.
    change(owner_client, workspace, owner, role=Role.ADMIN)
    assert role_of(owner) == Role.ADMIN


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client, workspace, owner):
    response = change(owner_client, workspace, owner, role=Role.ADMIN)
    assert "The last owner cannot be demoted" in response.content.decode()
    assert role_of(owner) == Role.OWNER
    response = owner_client.post(url("member-remove", workspace, owner.pk), follow=True)
    assert "The last owner cannot be removed." in response.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_the_last_owner_rule_holds_in_the_service_against_a_stale_copy(workspace, owner):
    second = add_member(workspace, factories.user(), role=Role.OWNER)
    stale_second = Membership.objects.get(pk=second.pk)
    change_member(owner, actor=second, role=Role.AGENT)
    # ``stale_second`` still believes there were two owners.
    with pytest.raises(NotAllowed):
        change_member(stale_second, actor=stale_second, role=Role.AGENT)
    assert role_of(second) == Role.OWNER


def test_admin_removes_an_agent_whose_open_conversations_become_unassigned(
    admin_client, workspace, admin, agent
):
    channel = factories.api_channel(workspace)
    open_one = Conversation.objects.get(
        pk=factories.inbound(channel, contact_id="c-1").conversation_id
    )
    resolved_one = Conversation.objects.get(
        pk=factories.inbound(channel, contact_id="c-2").conversation_id
    )
    update_conversation(open_one, actor=admin, assignee=agent)
    update_conversation(
        resolved_one, actor=admin, assignee=agent, status=ConversationStatus.RESOLVED
    )

    response = admin_client.post(url("member-remove", workspace, agent.pk), follow=True)
    assert "Abe Agent was removed" in response.content.decode()
    assert not Membership.objects.filter(pk=agent.pk).exists()
    assert agent.user.__class__.objects.filter(pk=agent.user_id).exists()  # the account stays
    open_one.refresh_from_db()
    resolved_one.refresh_from_db()
    assert open_one.assignee_id is None and resolved_one.assignee_id is None
    unassigned = Message.objects.filter(
        conversation=open_one, kind=MessageKind.ACTIVITY, data__action="unassigned"
    ).get()
    assert unassigned.author_member_id == admin.pk
    # A resolved conversation gets no new timeline line for it.
    assert not Message.objects.filter(
        conversation=resolved_one, kind=MessageKind.ACTIVITY, data__action="unassigned"
    ).exists()


def test_admin_cannot_remove_an_owner_or_another_admin(admin_client, workspace, owner):
    other_admin = add_member(workspace, factories.user(), role=Role.ADMIN)
    for target in (owner, other_admin):
        response = admin_client.post(url("member-remove", workspace, target.pk), follow=True)
        assert "Only an owner can make or change owners and admins." in response.content.decode()
        assert Membership.objects.filter(pk=target.pk).exists()


def test_owner_removes_an_admin(owner_client, workspace, admin):
    owner_client.post(url("member-remove", workspace, admin.pk))
    assert not Membership.objects.filter(pk=admin.pk).exists()


def test_an_admin_may_leave(admin_client, workspace, admin):
    response = admin_client.post(url("member-remove", workspace, admin.pk))
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Membership.objects.filter(pk=admin.pk).exists()
    assert admin_client.get(url("members", workspace)).status_code == 404
