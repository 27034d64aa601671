"""Which members a note mentions."""

from __future__ import annotations

import pytest

from loket.inbox.services.notifications import mention_token, mentioned_members, plain_text
from loket.tenancy.models import Role
from loket.tenancy.services import add_member
from tests import factories


@pytest.fixture
def team(workspace):
    def member(email, name):
        return add_member(workspace, factories.user(email, name=name), role=Role.AGENT)

    return {
        "anna": member("anna.smith@acme.example", "Anna Smith"),
        "bob": member("bob@acme.example", "Bob Jansen"),
        "bob2": member("robert@acme.example", "Bob de Vries"),  # a second Bob
        "eve": member("e.v@acme.example", "Éve Łukasz"),
    }


def names(members) -> list[str]:
    return [m.user.email for m in members]


def test_an_explicit_token_mentions_that_member(workspace, team):
    text = f"Can you check? {mention_token(team['bob2'])}"
    assert text.endswith(f"@[Bob de Vries](member:{team['bob2'].pk})")
    assert mentioned_members(workspace.pk, text) == [team["bob2"]]


def test_a_unique_first_name_or_email_local_part_mentions_that_member(workspace, team):
    assert names(mentioned_members(workspace.pk, "@anna please look")) == [
        "anna.smith@acme.example"
    ]
    assert mentioned_members(workspace.pk, "ping @Anna.Smith.") == [team["anna"]]
    assert mentioned_members(workspace.pk, "@robert, thoughts?") == [team["bob2"]]
    assert mentioned_members(workspace.pk, "(@éve)") == [team["eve"]]


def test_ambiguous_and_unknown_names_mention_nobody(workspace, team):
    assert mentioned_members(workspace.pk, "@bob and @nobody and @") == []
    # ...but the explicit token of one of the Bobs does.
    assert mentioned_members(workspace.pk, f"@bob {mention_token(team['bob'])}") == [team["bob"]]


def test_email_addresses_are_not_mentions(workspace, team):
    assert mentioned_members(workspace.pk, "mail anna@acme.example or x@bob") == []


def test_each_member_once_in_order_of_first_mention(workspace, team):
    text = f"@eve {mention_token(team['anna'])} @anna @Eve"
    assert mentioned_members(workspace.pk, text) == [team["eve"], team["anna"]]


def test_another_workspaces_members_are_never_matched(workspace, team):
    other = factories.workspace("other")
    outsider = add_member(other, factories.user("zoe@other.example", name="Zoe Outsider"))
    text = f"@zoe {mention_token(outsider)} @[Anna](member:{outsider.pk})"
    assert mentioned_members(workspace.pk, text) == []
    # A member of both workspaces is matched in each through that workspace's membership.
    here = add_member(workspace, outsider.user)
    assert mentioned_members(workspace.pk, "@zoe") == [here]
    assert mentioned_members(other.pk, "@zoe") == [outsider]


def test_a_deactivated_user_is_not_mentioned(workspace, team):
    team["anna"].user.is_active = False
    team["anna"].user.save()
    assert mentioned_members(workspace.pk, f"@anna {mention_token(team['anna'])}") == []


def test_plain_text_shows_tokens_as_names(team):
    assert plain_text(f"hi {mention_token(team['anna'])}!") == "hi @Anna Smith!"


def test_text_without_mentions_costs_no_query(workspace, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert mentioned_members(workspace.pk, "no mentions here") == []
