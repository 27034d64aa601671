"""/api/v1/canned-replies and rendering one for a conversation: CRUD with the member rules,
errors in the API's shape, and another workspace's (or member's) ids answering 404."""

from __future__ import annotations

import pytest

from loket.automation import canned
from loket.automation.models import CannedReply
from tests import factories
from tests.api.conftest import assert_error, call
from tests.automation.canned.conftest import conversation_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_api(owner) -> factories.ApiClient:
    return factories.ApiClient(owner)


@pytest.fixture
def agent_api(agent) -> factories.ApiClient:
    return factories.ApiClient(agent)


def _new(actor, shortcut, *, shared=False, language="", body="Hello {{contact.first_name}}"):
    return canned.create_canned_reply(
        actor, shortcut=shortcut, title=f"{shortcut} title", body=body, language=language,
        shared=shared,
    )  # fmt: skip


def test_create_get_list_patch_and_delete(owner_api, owner):
    response = owner_api.post(
        "/canned-replies",
        {"shortcut": "/Refund", "title": "Refund", "body": "We refunded you.", "language": "en",
         "shared": True},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["shortcut"] == "refund"
    assert created["shared"] is True and created["owner_id"] is None
    assert created["created_by_id"] == owner.pk
    assert created["language"] == "en"
    reply_id = created["id"]

    shown = owner_api.get(f"/canned-replies/{reply_id}")
    assert shown.status_code == 200 and shown.json() == created

    listed = owner_api.get("/canned-replies")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [reply_id]

    patched = owner_api.patch(
        f"/canned-replies/{reply_id}", {"title": "Money back", "body": "Done."}
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["title"], patched.json()["body"]) == ("Money back", "Done.")
    assert patched.json()["shortcut"] == "refund"  # unchanged when not given

    deleted = call(owner_api, "DELETE", f"/canned-replies/{reply_id}")
    assert deleted.status_code == 204
    assert not CannedReply.objects.filter(pk=reply_id).exists()
    assert_error(owner_api.get(f"/canned-replies/{reply_id}"), 404, "not_found")


def test_an_agent_creates_personal_replies_but_not_shared_ones(agent_api, agent):
    response = agent_api.post("/canned-replies", {"shortcut": "hi", "title": "Hi", "body": "Hi!"})
    assert response.status_code == 201
    assert response.json()["owner_id"] == agent.pk and response.json()["shared"] is False
    refused = agent_api.post(
        "/canned-replies", {"shortcut": "all", "title": "All", "body": "x", "shared": True}
    )
    assert_error(refused, 403, "forbidden")
    assert not CannedReply.objects.filter(shortcut="all").exists()


def test_an_agent_reads_shared_replies_but_cannot_change_them(agent_api, owner):
    shared = _new(owner, "refund", shared=True)
    assert agent_api.get(f"/canned-replies/{shared.pk}").status_code == 200
    assert_error(agent_api.patch(f"/canned-replies/{shared.pk}", {"body": "x"}), 403, "forbidden")
    assert_error(call(agent_api, "DELETE", f"/canned-replies/{shared.pk}"), 403, "forbidden")
    shared.refresh_from_db()
    assert shared.body == "Hello {{contact.first_name}}"


def test_another_members_personal_reply_is_a_404(agent_api, owner_api, owner):
    personal = _new(owner, "mine")
    for method, body in (("GET", None), ("PATCH", {"body": "x"}), ("DELETE", None)):
        assert_error(call(agent_api, method, f"/canned-replies/{personal.pk}", body), 404)
    listed = agent_api.get("/canned-replies").json()
    assert personal.pk not in {r["id"] for r in listed}
    assert owner_api.get(f"/canned-replies/{personal.pk}").status_code == 200


def test_invalid_input_is_a_400_naming_the_field(owner_api):
    response = owner_api.post(
        "/canned-replies", {"shortcut": "two words", "title": "T", "body": "B"}
    )
    error = assert_error(response, 400, "invalid")
    assert error["message"].startswith("shortcut:")
    _new_response = owner_api.post("/canned-replies", {"shortcut": "a", "title": "T", "body": "B"})
    assert _new_response.status_code == 201
    clash = owner_api.post("/canned-replies", {"shortcut": "A", "title": "T", "body": "B"})
    assert_error(clash, 400, "invalid")
    reply_id = _new_response.json()["id"]
    assert_error(owner_api.patch(f"/canned-replies/{reply_id}", {"title": None}), 400, "invalid")
    assert_error(owner_api.patch(f"/canned-replies/{reply_id}", {"language": "xx-"}), 400)
    assert_error(owner_api.post("/canned-replies", {"shortcut": "b"}), 400, "invalid")


def test_list_filters_by_language_and_query(owner_api, owner):
    _new(owner, "a-any", shared=True)
    _new(owner, "b-nl", language="nl", shared=True)
    _new(owner, "c-en", language="en")
    shortcuts = lambda path: [r["shortcut"] for r in owner_api.get(path).json()]  # noqa: E731
    assert shortcuts("/canned-replies?language=nl") == ["b-nl", "a-any"]
    assert shortcuts("/canned-replies?language=en") == ["c-en", "a-any"]
    assert shortcuts("/canned-replies?q=NL") == ["b-nl"]
    assert shortcuts("/canned-replies?language=nl&q=any") == ["a-any"]
    assert len(shortcuts("/canned-replies")) == 3


def test_render_fills_in_the_conversation_and_sends_nothing(owner_api, owner, api_channel):
    conversation = conversation_with(api_channel, custom={"order": "A-1"})
    reply = _new(
        owner, "hi", body="Hi {{contact.first_name}}, order {{conversation.custom.order}} {{x.y}}"
    )
    messages_before = conversation.messages.count()
    response = owner_api.post(f"/conversations/{conversation.pk}/canned-replies/{reply.pk}/render")
    assert response.status_code == 200, response.content
    assert response.json() == {"text": "Hi Jane, order A-1 {{x.y}}", "unknown_variables": ["x.y"]}
    assert conversation.messages.count() == messages_before


def test_render_uses_the_token_members_name(agent_api, owner, api_channel):
    conversation = conversation_with(api_channel)
    reply = _new(owner, "sig", body="— {{agent.first_name}}", shared=True)
    response = agent_api.post(f"/conversations/{conversation.pk}/canned-replies/{reply.pk}/render")
    assert response.json()["text"] == "— Abe"


def test_other_workspaces_ids_are_404_everywhere(owner_api, owner, api_channel):
    """Replies and conversations of workspace B through A's token: 404, like ids that exist
    nowhere, and nothing of B changes."""
    other = factories.workspace("bravo")
    b_owner = factories.owner_of(other)
    b_reply = _new(b_owner, "bravo-only", shared=True, body="Bravo secret")
    b_conversation = conversation_with(factories.api_channel(other), contact_id="b")
    a_reply = _new(owner, "alpha", shared=True)
    a_conversation = conversation_with(api_channel)

    for method, body in (("GET", None), ("PATCH", {"body": "leaked"}), ("DELETE", None)):
        foreign = call(owner_api, method, f"/canned-replies/{b_reply.pk}", body)
        missing = call(owner_api, method, "/canned-replies/987654321", body)
        assert assert_error(foreign, 404, "not_found") == assert_error(missing, 404, "not_found")
    for conversation_id, reply_id in (
        (b_conversation.pk, a_reply.pk),
        (a_conversation.pk, b_reply.pk),
        (b_conversation.pk, b_reply.pk),
    ):
        response = owner_api.post(
            f"/conversations/{conversation_id}/canned-replies/{reply_id}/render"
        )
        assert_error(response, 404, "not_found")
    assert "bravo" not in owner_api.get("/canned-replies").content.decode().lower()
    b_reply.refresh_from_db()
    assert b_reply.body == "Bravo secret"


def test_the_routes_need_a_token(client):
    assert_error(client.get("/api/v1/canned-replies"), 401, "unauthorized")
