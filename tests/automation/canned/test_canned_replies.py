"""Canned replies: who may create, see, change and delete which (shared vs personal), the
shortcut rules, the selector's language and search filters, and other workspaces kept out."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.http import Http404

from loket.automation import canned
from loket.automation.models import CannedReply
from loket.tenancy.services import NotAllowed
from tests import factories

pytestmark = pytest.mark.django_db


def _create(actor, shortcut="thanks", *, shared=False, language="", title=None, body="Thanks!"):
    return canned.create_canned_reply(
        actor,
        shortcut=shortcut,
        title=title or f"Title of {shortcut}",
        body=body,
        language=language,
        shared=shared,
    )


def _shortcuts(queryset) -> list[str]:
    return [reply.shortcut for reply in queryset]


# -- creating ---------------------------------------------------------------------------------
def test_an_admin_creates_a_shared_reply_and_an_agent_a_personal_one(admin, agent):
    shared = _create(admin, "refund", shared=True)
    personal = _create(agent, "hi")
    assert shared.owner_id is None and shared.is_shared
    assert shared.created_by_id == admin.pk
    assert personal.owner_id == agent.pk and not personal.is_shared
    assert personal.workspace_id == agent.workspace_id


def test_an_agent_cannot_create_a_shared_reply(agent):
    with pytest.raises(NotAllowed):
        _create(agent, "refund", shared=True)
    assert not CannedReply.objects.exists()


@pytest.mark.parametrize(
    ("given", "stored"),
    [("thanks", "thanks"), ("/Thanks", "thanks"), ("order-status_2", "order-status_2"),
     ("x" * 32, "x" * 32)],
)  # fmt: skip
def test_valid_shortcuts_are_stored_lower_case_without_the_slash(agent, given, stored):
    assert _create(agent, given).shortcut == stored


@pytest.mark.parametrize("shortcut", ["", "/", "two words", "x" * 33, "dot.ted", "ümlaut", "a/b"])
def test_invalid_shortcuts_are_refused(agent, shortcut):
    with pytest.raises(canned.InvalidCannedReply) as caught:
        _create(agent, shortcut)
    assert caught.value.field == "shortcut"
    assert not CannedReply.objects.exists()


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("title", {"title": "   "}),
        ("title", {"title": "t" * 201}),
        ("body", {"body": "  \n "}),
        ("body", {"body": "b" * 10_001}),
        ("language", {"language": "english"}),
        ("language", {"language": "e"}),
    ],
)
def test_other_fields_are_checked(agent, field, kwargs):
    values = {"shortcut": "ok", "title": "A title", "body": "Body", **kwargs}
    with pytest.raises(canned.InvalidCannedReply) as caught:
        canned.create_canned_reply(agent, **values)
    assert caught.value.field == field


def test_a_language_is_normalised(agent):
    assert _create(agent, "a", language="NL").language == "nl"
    assert _create(agent, "b", language="pt_BR").language == "pt-br"
    assert _create(agent, "c", language="").language == ""


# -- uniqueness -------------------------------------------------------------------------------
def test_a_shared_shortcut_is_unique_in_the_workspace(admin, owner):
    _create(admin, "refund", shared=True)
    with pytest.raises(canned.InvalidCannedReply) as caught:
        _create(owner, "REFUND", shared=True)
    assert caught.value.field == "shortcut"
    assert CannedReply.objects.count() == 1


def test_a_personal_shortcut_is_unique_per_owner_only(agent, other_agent, admin):
    _create(agent, "hi")
    with pytest.raises(canned.InvalidCannedReply):
        _create(agent, "hi")
    # Another member's personal one and a shared one may use the same shortcut.
    _create(other_agent, "hi")
    _create(admin, "hi", shared=True)
    assert CannedReply.objects.filter(shortcut="hi").count() == 3


def test_the_same_shared_shortcut_in_another_workspace_is_fine(admin):
    other_owner = factories.owner_of(factories.workspace("bravo"))
    _create(admin, "refund", shared=True)
    _create(other_owner, "refund", shared=True)
    assert CannedReply.objects.filter(shortcut="refund").count() == 2


def test_the_database_enforces_both_uniqueness_rules(workspace, agent):
    """The service checks first; the constraints hold even for writes that skip it."""
    CannedReply.objects.create(workspace=workspace, shortcut="s", title="t", body="b")
    with pytest.raises(IntegrityError), transaction.atomic():
        CannedReply.objects.create(workspace=workspace, shortcut="s", title="t", body="b")
    CannedReply.objects.create(workspace=workspace, owner=agent, shortcut="p", title="t", body="b")
    with pytest.raises(IntegrityError), transaction.atomic():
        CannedReply.objects.create(
            workspace=workspace, owner=agent, shortcut="p", title="t", body="b"
        )


def test_renaming_onto_a_taken_shortcut_is_refused(admin):
    _create(admin, "one", shared=True)
    two = _create(admin, "two", shared=True)
    with pytest.raises(canned.InvalidCannedReply):
        canned.update_canned_reply(two, actor=admin, shortcut="one")
    two.refresh_from_db()
    assert two.shortcut == "two"
    # Saving a reply under its own shortcut is no clash.
    canned.update_canned_reply(two, actor=admin, shortcut="two", title="Renamed")
    two.refresh_from_db()
    assert two.title == "Renamed"


# -- visibility -------------------------------------------------------------------------------
def test_members_see_shared_replies_and_only_their_own_personal_ones(admin, agent, other_agent):
    _create(admin, "shared", shared=True)
    _create(admin, "admins-own")
    _create(agent, "agents-own")
    _create(other_agent, "olgas-own")
    assert set(_shortcuts(canned.visible(agent))) == {"shared", "agents-own"}
    assert set(_shortcuts(canned.visible(other_agent))) == {"shared", "olgas-own"}
    # Admins included: another member's personal replies are that member's business.
    assert set(_shortcuts(canned.visible(admin))) == {"shared", "admins-own"}


def test_get_visible_is_a_404_for_someone_elses_personal_reply_and_other_workspaces(
    admin, agent, other_agent
):
    personal = _create(other_agent, "olgas-own")
    with pytest.raises(Http404):
        canned.get_visible(agent, personal.pk)
    with pytest.raises(Http404):
        canned.get_visible(admin, personal.pk)
    assert canned.get_visible(other_agent, personal.pk) == personal

    other_owner = factories.owner_of(factories.workspace("bravo"))
    foreign = _create(other_owner, "foreign", shared=True)
    with pytest.raises(Http404):
        canned.get_visible(admin, foreign.pk)
    assert "foreign" not in _shortcuts(canned.visible(admin))
    with pytest.raises(Http404):
        canned.get_visible(admin, 987_654_321)


def test_visible_filters_by_language_with_that_language_first(agent):
    _create(agent, "a-any")
    _create(agent, "b-nl", language="nl")
    _create(agent, "c-en", language="en")
    _create(agent, "d-nl-be", language="nl-be")
    assert _shortcuts(canned.visible(agent, language="nl")) == ["b-nl", "d-nl-be", "a-any"]
    # A regional tag matches by its language.
    assert _shortcuts(canned.visible(agent, language="nl-NL")) == ["b-nl", "d-nl-be", "a-any"]
    assert _shortcuts(canned.visible(agent, language="en")) == ["c-en", "a-any"]
    assert _shortcuts(canned.visible(agent, language="de")) == ["a-any"]
    assert len(_shortcuts(canned.visible(agent))) == 4


def test_visible_searches_shortcut_and_title(agent, admin):
    _create(agent, "refund", title="Money back")
    _create(admin, "shipping", title="Where is my REFUND?", shared=True)
    _create(agent, "hello", title="Greeting")
    assert _shortcuts(canned.visible(agent, query="refund")) == ["refund", "shipping"]
    assert _shortcuts(canned.visible(agent, query="/ref")) == ["refund", "shipping"]
    assert _shortcuts(canned.visible(agent, query="greet")) == ["hello"]
    assert _shortcuts(canned.visible(agent, query="nothing")) == []


def test_a_personal_reply_is_listed_before_a_shared_one_with_the_same_shortcut(agent, admin):
    shared = _create(admin, "hi", shared=True)
    personal = _create(agent, "hi")
    assert list(canned.visible(agent)) == [personal, shared]


def test_the_composer_order_prefers_the_language_then_any_then_the_rest(agent):
    _create(agent, "a-en", language="en")
    _create(agent, "b-any")
    _create(agent, "c-nl", language="nl")
    _create(agent, "d-any")
    assert _shortcuts(canned.for_composer(agent, "nl-NL")) == ["c-nl", "b-any", "d-any", "a-en"]
    assert _shortcuts(canned.for_composer(agent, "")) == ["b-any", "d-any", "a-en", "c-nl"]


# -- changing and deleting --------------------------------------------------------------------
def test_an_agent_manages_their_own_personal_replies(agent):
    reply = _create(agent, "hi")
    canned.update_canned_reply(reply, actor=agent, title="New", body="New body", language="en")
    reply.refresh_from_db()
    assert (reply.title, reply.body, reply.language) == ("New", "New body", "en")
    canned.delete_canned_reply(reply, actor=agent)
    assert not CannedReply.objects.filter(pk=reply.pk).exists()


def test_an_agent_cannot_change_or_delete_a_shared_reply(admin, agent):
    reply = _create(admin, "refund", shared=True)
    with pytest.raises(NotAllowed):
        canned.update_canned_reply(reply, actor=agent, title="Hijacked")
    with pytest.raises(NotAllowed):
        canned.delete_canned_reply(reply, actor=agent)
    reply.refresh_from_db()
    assert reply.title == "Title of refund"


def test_nobody_changes_another_members_personal_reply(agent, other_agent, admin):
    reply = _create(other_agent, "mine")
    for actor in (agent, admin):
        with pytest.raises(NotAllowed):
            canned.update_canned_reply(reply, actor=actor, body="changed")
        with pytest.raises(NotAllowed):
            canned.delete_canned_reply(reply, actor=actor)
    reply.refresh_from_db()
    assert reply.body == "Thanks!"


def test_an_admin_shares_a_personal_reply_and_takes_a_shared_one_back(admin, agent):
    reply = _create(admin, "mine")
    canned.update_canned_reply(reply, actor=admin, shared=True)
    reply.refresh_from_db()
    assert reply.owner_id is None
    assert "mine" in _shortcuts(canned.visible(agent))
    canned.update_canned_reply(reply, actor=admin, shared=False)
    reply.refresh_from_db()
    assert reply.owner_id == admin.pk
    assert "mine" not in _shortcuts(canned.visible(agent))


def test_an_agent_cannot_share_their_personal_reply(agent, admin):
    reply = _create(agent, "mine")
    with pytest.raises(NotAllowed):
        canned.update_canned_reply(reply, actor=agent, shared=True)
    reply.refresh_from_db()
    assert reply.owner_id == agent.pk
    assert "mine" not in _shortcuts(canned.visible(admin))


def test_a_member_of_another_workspace_cannot_manage_a_reply(admin):
    reply = _create(admin, "refund", shared=True)
    other_owner = factories.owner_of(factories.workspace("bravo"))
    assert not canned.may_manage(other_owner, reply)
    with pytest.raises(NotAllowed):
        canned.update_canned_reply(reply, actor=other_owner, body="leaked")
    with pytest.raises(NotAllowed):
        canned.delete_canned_reply(reply, actor=other_owner)
    assert CannedReply.objects.get(pk=reply.pk).body == "Thanks!"


def test_personal_replies_go_with_their_member_shared_ones_stay(workspace, owner, admin):
    from loket.tenancy.services import remove_member

    _create(admin, "mine")
    shared = _create(admin, "ours", shared=True)
    remove_member(admin, actor=owner)
    assert list(CannedReply.objects.all()) == [shared]
    shared.refresh_from_db()
    assert shared.created_by_id is None
