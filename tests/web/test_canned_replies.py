"""Canned replies in the agent app: the settings page (admins: shared and their own; every
other member: their own, read-only shared ones) and the composer's JSON endpoints that list
replies for a conversation and fill one in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from loket.automation import canned
from loket.automation.models import CannedReply
from loket.inbox.models import Conversation, Message
from tests import factories
from tests.automation.canned.conftest import conversation_with
from tests.workspace_settings.conftest import signed_in

pytestmark = pytest.mark.django_db


def _url(name, *args) -> str:
    return reverse(f"wsettings:{name}", args=["acme", *args])


def _new(actor, shortcut, *, shared=False, language="", body="Hi {{contact.first_name|there}}"):
    return canned.create_canned_reply(
        actor, shortcut=shortcut, title=f"{shortcut} title", body=body, language=language,
        shared=shared,
    )  # fmt: skip


# -- the settings page ------------------------------------------------------------------------
def test_an_admin_creates_a_shared_reply_from_the_settings_page(admin):
    client = signed_in(admin)
    page = client.get(_url("canned-replies"))
    assert page.status_code == 200
    assert "shared" in page.context["form"].fields
    # Linked from the settings navigation, marked as the current page.
    assert f'href="{_url("canned-replies")}" aria-current="page"' in page.content.decode()

    response = client.post(
        _url("canned-replies"),
        {"shortcut": "refund", "title": "Refund", "language": "nl", "shared": "on",
         "body": "Beste {{contact.first_name|klant}},\r\nje geld komt eraan."},
    )  # fmt: skip
    assert response.status_code == 302
    reply = CannedReply.objects.get(shortcut="refund")
    assert reply.owner_id is None and reply.language == "nl"
    assert reply.body == "Beste {{contact.first_name|klant}},\nje geld komt eraan."
    listing = client.get(_url("canned-replies")).content.decode()
    assert "<code>/refund</code>" in listing and "<td>Shared</td>" in listing


def test_an_agent_creates_a_personal_reply_and_sees_shared_ones_read_only(agent, admin):
    shared = _new(admin, "refund", shared=True)
    client = signed_in(agent)
    page = client.get(_url("canned-replies"))
    assert page.status_code == 200
    # No "shared" choice, and not the admin pages' navigation.
    assert "shared" not in page.context["form"].fields
    html = page.content.decode()
    assert _url("members") not in html
    assert "/refund" in html
    assert _url("canned-reply-edit", shared.pk) not in html

    # A "shared" sneaked into the form is ignored: the reply is personal.
    response = client.post(
        _url("canned-replies"),
        {"shortcut": "hi", "title": "Hi", "body": "Hello!", "shared": "on"},
    )
    assert response.status_code == 302
    reply = CannedReply.objects.get(shortcut="hi")
    assert reply.owner_id == agent.pk
    html = client.get(_url("canned-replies")).content.decode()
    assert _url("canned-reply-edit", reply.pk) in html
    assert "Personal (you)" in html

    assert client.get(_url("canned-reply-edit", shared.pk)).status_code == 403
    assert (
        client.post(
            _url("canned-reply-edit", shared.pk), {"shortcut": "x", "title": "x", "body": "x"}
        ).status_code
        == 403
    )
    assert client.post(_url("canned-reply-delete", shared.pk)).status_code == 403
    shared.refresh_from_db()
    assert shared.shortcut == "refund"


def test_other_members_personal_replies_are_neither_listed_nor_reachable(agent, admin):
    personal = _new(agent, "agents-secret", body="Agent's own words")
    client = signed_in(admin)
    assert "agents-secret" not in client.get(_url("canned-replies")).content.decode()
    assert client.get(_url("canned-reply-edit", personal.pk)).status_code == 404
    assert client.post(_url("canned-reply-delete", personal.pk)).status_code == 404
    assert CannedReply.objects.filter(pk=personal.pk).exists()


def test_edit_and_delete_through_the_pages(agent):
    reply = _new(agent, "hi")
    client = signed_in(agent)
    form = client.get(_url("canned-reply-edit", reply.pk))
    assert form.status_code == 200
    assert form.context["form"].initial["shortcut"] == "hi"
    response = client.post(
        _url("canned-reply-edit", reply.pk),
        {"shortcut": "hello", "title": "Hello", "language": "en", "body": "Hello there"},
    )
    assert response.status_code == 302
    reply.refresh_from_db()
    assert (reply.shortcut, reply.title, reply.language, reply.body) == (
        "hello", "Hello", "en", "Hello there",
    )  # fmt: skip
    response = client.post(_url("canned-reply-delete", reply.pk))
    assert response.status_code == 302
    assert not CannedReply.objects.filter(pk=reply.pk).exists()
    assert client.get(_url("canned-reply-delete", reply.pk)).status_code == 405


def test_invalid_input_shows_the_form_again_with_the_error(agent, admin):
    _new(admin, "taken", shared=True)
    _new(agent, "mine")
    client = signed_in(agent)
    response = client.post(
        _url("canned-replies"), {"shortcut": "two words", "title": "T", "body": "B"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["shortcut"]
    # A personal shortcut may repeat a shared one, not one of the member's own.
    assert (
        client.post(
            _url("canned-replies"), {"shortcut": "taken", "title": "T", "body": "B"}
        ).status_code
        == 302
    )
    response = client.post(_url("canned-replies"), {"shortcut": "MINE", "title": "T", "body": "B"})
    assert response.status_code == 400
    assert "already in use" in str(response.context["form"].errors["shortcut"])
    response = client.post(
        _url("canned-replies"), {"shortcut": "ok", "title": "T", "body": "B", "language": "dutch"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["language"]
    assert CannedReply.objects.filter(owner=agent).count() == 2


def test_search_on_the_settings_page(admin):
    _new(admin, "refund", shared=True)
    _new(admin, "shipping", shared=True)
    page = signed_in(admin).get(_url("canned-replies") + "?q=ship")
    assert [row["reply"].shortcut for row in page.context["rows"]] == ["shipping"]


def test_another_workspaces_reply_is_a_404_on_the_pages(admin):
    other_owner = factories.owner_of(factories.workspace("bravo"))
    foreign = _new(other_owner, "foreign", shared=True)
    client = signed_in(admin)
    assert client.get(_url("canned-reply-edit", foreign.pk)).status_code == 404
    assert client.post(_url("canned-reply-delete", foreign.pk)).status_code == 404
    assert "foreign" not in client.get(_url("canned-replies")).content.decode()
    # And bravo's settings are not ours to see at all.
    assert client.get(reverse("wsettings:canned-replies", args=["bravo"])).status_code == 404
    assert CannedReply.objects.filter(pk=foreign.pk).exists()


def test_the_page_needs_a_sign_in(workspace):
    response = Client().get(_url("canned-replies"))
    assert response.status_code == 302
    assert "login" in response["Location"]


# -- the composer -----------------------------------------------------------------------------
def _composer_urls(conversation: Conversation, reply_id: int | None = None) -> str:
    if reply_id is None:
        return reverse("inbox:canned_replies", args=["acme", conversation.number])
    return reverse("inbox:canned_reply", args=["acme", conversation.number, reply_id])


def test_the_composer_has_the_slash_menu(owner, api_channel):
    conversation = conversation_with(api_channel)
    page = signed_in(owner).get(reverse("inbox:conversation", args=["acme", conversation.number]))
    html = page.content.decode()
    assert 'id="canned-menu"' in html
    assert f'data-url="{_composer_urls(conversation)}"' in html


def test_the_composer_lists_replies_in_the_conversations_language_first(agent, admin, api_channel):
    conversation = conversation_with(api_channel, language="nl")
    _new(admin, "a-en", language="en", shared=True)
    _new(admin, "b-any", shared=True)
    _new(agent, "c-nl", language="nl")
    _new(admin, "d-admins-own")  # personal to the admin: not offered to the agent
    response = signed_in(agent).get(_composer_urls(conversation))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["shortcut"] for i in items] == ["c-nl", "b-any", "a-en"]
    first = items[0]
    assert first["shared"] is False and first["language"] == "nl"
    assert first["preview"] == "Hi {{contact.first_name|there}}"
    assert first["url"] == _composer_urls(conversation, first["id"])


def test_without_a_conversation_language_the_contacts_locale_counts(agent, admin, api_channel):
    conversation = conversation_with(api_channel, locale="en-GB")
    _new(admin, "a-nl", language="nl", shared=True)
    _new(admin, "b-en", language="en", shared=True)
    items = signed_in(agent).get(_composer_urls(conversation)).json()["items"]
    assert [i["shortcut"] for i in items] == ["b-en", "a-nl"]


def test_choosing_a_reply_fills_it_in_for_this_conversation_and_member(agent, admin, api_channel):
    conversation = conversation_with(api_channel, name="", contact_id="anon")
    reply = _new(
        admin, "hi", shared=True,
        body="Hi {{contact.first_name|there}}, <b>{{agent.name}}</b> here about "
        "#{{conversation.number}}. {{contact.shoe_size}}",
    )  # fmt: skip
    before = Message.objects.filter(conversation=conversation).count()
    response = signed_in(agent).get(_composer_urls(conversation, reply.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "text": f"Hi there, <b>Abe Agent</b> here about #{conversation.number}. "
        "{{contact.shoe_size}}",
        "unknown_variables": ["contact.shoe_size"],
    }
    # Nothing is sent or saved.
    assert Message.objects.filter(conversation=conversation).count() == before


def test_the_composer_cannot_reach_other_members_or_workspaces_replies(agent, admin, api_channel):
    conversation = conversation_with(api_channel)
    admins_own = _new(admin, "admins-own")
    other = factories.workspace("bravo")
    foreign = _new(factories.owner_of(other), "foreign", shared=True)
    foreign_conversation = conversation_with(factories.api_channel(other), contact_id="b")
    client = signed_in(agent)
    assert client.get(_composer_urls(conversation, admins_own.pk)).status_code == 404
    assert client.get(_composer_urls(conversation, foreign.pk)).status_code == 404
    # Bravo's conversation number under acme's URL is acme's conversation or none at all;
    # bravo's own URLs are a 404 for a member of acme.
    bravo = reverse("inbox:canned_replies", args=["bravo", foreign_conversation.number])
    assert client.get(bravo).status_code == 404
    bravo_render = reverse(
        "inbox:canned_reply", args=["bravo", foreign_conversation.number, foreign.pk]
    )
    assert client.get(bravo_render).status_code == 404
    listed = client.get(_composer_urls(conversation)).json()["items"]
    assert {i["shortcut"] for i in listed} == set()
    assert client.get(_composer_urls(conversation, 987654321)).status_code == 404
