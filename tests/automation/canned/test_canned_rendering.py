"""Filling in a canned reply's variables: every allow-listed variable, defaults, unknown names
kept as written and reported, custom attribute keys without reaching anything else, and values
that stay plain text (never a template, never HTML)."""

from __future__ import annotations

import pytest

from loket.automation import canned
from loket.inbox.models import Conversation
from loket.tenancy.models import Workspace
from tests import factories
from tests.automation.canned.conftest import conversation_with

pytestmark = pytest.mark.django_db


def _render(body, conversation, agent=None):
    reply = canned.create_canned_reply(
        agent or factories.owner_of(Workspace.objects.get(pk=conversation.workspace_id)),
        shortcut="t",
        title="Test",
        body=body,
    )
    return canned.render(reply, conversation, agent)


def test_every_variable_is_filled_in(conversation, agent, workspace):
    body = (
        "{{contact.name}}|{{contact.first_name}}|{{contact.email}}|{{contact.phone}}|"
        "{{agent.name}}|{{agent.first_name}}|{{conversation.number}}|{{conversation.subject}}|"
        "{{workspace.name}}|{{contact.attributes.plan}}|{{conversation.custom.order}}"
    )
    text, unknown = _render(body, conversation, agent)
    assert text.split("|") == [
        "Jane Q. Doe", "Jane", "jane@example.com", "+31 6 1234 5678",
        "Abe van Agent", "Abe", str(conversation.number), "Where is my parcel?",
        workspace.name, "Gold", "A-77",
    ]  # fmt: skip
    assert unknown == []


def test_render_returns_a_named_pair(conversation, agent):
    result = _render("Hi {{contact.first_name}}", conversation, agent)
    assert result.text == "Hi Jane"
    assert result.unknown == []
    text, unknown = result
    assert (text, unknown) == ("Hi Jane", [])


def test_spaces_inside_the_braces_are_allowed(conversation, agent):
    text, unknown = _render(
        "Hi {{ contact.first_name }} / {{ agent.name | us }}", conversation, agent
    )
    assert text == "Hi Jane / Abe van Agent"
    assert unknown == []


def test_defaults_are_used_for_missing_and_empty_values(api_channel, agent):
    conversation = conversation_with(
        api_channel, contact_id="anon", name="", email="", phone="", subject="", attributes={}
    )
    text, unknown = _render(
        "Hi {{contact.first_name|there}}, {{contact.name|customer}} {{contact.email|no email}} "
        "{{contact.phone|-}} {{conversation.subject|(none)}} {{contact.attributes.plan|Basic}} "
        '{{conversation.custom.order|unknown order}} {{contact.first_name|" spaced "}}',
        conversation,
        agent,
    )
    assert text == ("Hi there, customer no email - (none) Basic unknown order  spaced ")
    assert unknown == []


def test_a_value_wins_over_its_default(conversation, agent):
    text, _ = _render(
        "{{contact.first_name|there}} {{contact.attributes.plan|Basic}}", conversation, agent
    )
    assert text == "Jane Gold"


def test_a_missing_value_without_a_default_is_empty(api_channel, agent):
    conversation = conversation_with(api_channel, contact_id="anon", name="", phone="")
    text, unknown = _render("Hi {{contact.first_name}}! [{{contact.phone}}]", conversation, agent)
    assert text == "Hi ! []"
    assert unknown == []


def test_unknown_variables_stay_as_written_and_are_reported_once(conversation, agent):
    body = (
        "Hi {{contact.age}}, {{ customer.name }} {{contact.age}} {{bogus}} {{1}} "
        "{{contact.first_name}} {{ agent.password|x }}"
    )
    text, unknown = _render(body, conversation, agent)
    assert text == (
        "Hi {{contact.age}}, {{ customer.name }} {{contact.age}} {{bogus}} {{1}} "
        "Jane {{ agent.password|x }}"
    )
    assert unknown == ["contact.age", "customer.name", "bogus", "1", "agent.password"]


def test_text_that_is_not_a_variable_is_left_alone(conversation, agent):
    body = "Use {{}} or { single } or {{ spans\nlines }} — 100% {{contact.first_name}}"
    text, unknown = _render(body, conversation, agent)
    assert text == "Use {{}} or { single } or {{ spans\nlines }} — 100% Jane"
    assert unknown == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{contact.attributes.order_id}}", "1234"),
        ("{{contact.attributes.vip}}", "yes"),
        ("{{contact.attributes.tags}}", "a, b"),
        ("{{contact.attributes.missing|none}}", "none"),
        ("{{conversation.custom.nested|no text}}", "no text"),  # an object has no text form
    ],
)
def test_attribute_values_of_other_types(conversation, agent, body, expected):
    text, unknown = _render(body, conversation, agent)
    assert (text, unknown) == (expected, [])


@pytest.mark.parametrize(
    "name",
    [
        "conversation.custom.nested.secret",  # no walking into nested values
        "contact.attributes.__class__.__name__",
        "contact.__dict__",
        "contact.__class__",
        "contact._state",
        "contact.workspace",
        "contact.pk",
        "contact.identities",
        "conversation.contact.email",
        "conversation.workspace.name",
        "conversation.assignee",
        "agent.user.password",
        "agent.user.email",
        "agent.role",
        "workspace.slug",
        "workspace.secret_key",
        "contact.attributes",
        "conversation.custom",
        "contact.attributes.a b",
        "contact.attributes.",
    ],
)
def test_nothing_outside_the_allow_list_is_reachable(conversation, agent, name):
    body = "{{" + name + "}}"
    text, unknown = _render(body, conversation, agent)
    assert text == body
    assert unknown == [name]


def test_values_are_never_evaluated_again(api_channel, agent):
    """A contact who calls themselves "{{agent.name}}" is greeted by exactly that name."""
    conversation = conversation_with(
        api_channel,
        contact_id="trick",
        name="{{agent.name}} {% debug %}",
        attributes={"plan": "{{workspace.name}}"},
    )
    text, unknown = _render(
        "Hi {{contact.name}}, plan {{contact.attributes.plan}}", conversation, agent
    )
    assert text == "Hi {{agent.name}} {% debug %}, plan {{workspace.name}}"
    assert unknown == []


def test_html_and_script_stay_plain_text(api_channel, agent):
    conversation = conversation_with(
        api_channel,
        contact_id="xss",
        name="<script>alert(1)</script> & Co",
        subject='"><img src=x onerror=alert(2)>',
    )
    text, unknown = _render(
        "<b>Dear</b> {{contact.name}} re {{conversation.subject}}", conversation, agent
    )
    # Not escaped (it is text, not HTML) and not stripped: shown and sent as typed text.
    assert text == ('<b>Dear</b> <script>alert(1)</script> & Co re "><img src=x onerror=alert(2)>')
    assert unknown == []


def test_the_body_is_not_a_django_template(conversation, agent):
    body = "{% load static %}{{ contact.first_name }} {{ request }} {% now 'Y' %} {# c #}"
    text, unknown = _render(body, conversation, agent)
    assert text == "{% load static %}Jane {{ request }} {% now 'Y' %} {# c #}"
    assert unknown == ["request"]


def test_without_an_agent_agent_variables_use_their_defaults(conversation, owner):
    reply = canned.create_canned_reply(
        owner, shortcut="auto", title="Auto", body="{{agent.name|The team}} / {{agent.first_name}}."
    )
    assert canned.render(reply, conversation, None) == ("The team / .", [])


def test_an_agent_without_a_name_signs_with_what_identifies_them(conversation, workspace):
    from loket.tenancy.services import add_member

    nameless = add_member(workspace, factories.user("nameless@acme.example", name=" "))
    nameless.user.name = ""
    nameless.user.save(update_fields=["name"])
    text, _ = _render("{{agent.name}} {{agent.first_name}}", conversation, nameless)
    assert text == "nameless@acme.example nameless@acme.example"


def test_rendering_across_workspaces_is_refused(conversation, owner):
    reply = canned.create_canned_reply(owner, shortcut="x", title="X", body="{{contact.email}}")
    other = factories.workspace("bravo")
    other_owner = factories.owner_of(other)
    foreign_conversation = conversation_with(factories.api_channel(other), contact_id="b")
    with pytest.raises(ValueError):
        canned.render(reply, foreign_conversation, owner)
    with pytest.raises(ValueError):
        canned.render(reply, conversation, other_owner)


def test_render_text_fills_in_any_body(conversation, agent):
    assert canned.render_text("#{{conversation.number}}", conversation, agent).text == (
        f"#{conversation.number}"
    )
    assert isinstance(conversation, Conversation)
