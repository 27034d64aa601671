"""Conversations: list with filters and keyset pages, show, and changes through PATCH."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox import selectors
from loket.inbox.models import Conversation, Message, MessageKind
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.tenancy.services import create_team
from tests import factories
from tests.api.conftest import assert_error


def _conversation(channel, contact_id: str, **changes) -> Conversation:
    result = factories.inbound(channel, f"Hi from {contact_id}", contact_id=contact_id,
                               name=f"Person {contact_id}")  # fmt: skip
    conversation = Conversation.objects.get(pk=result.conversation_id)
    if changes:
        update_conversation(conversation, actor=None, **changes)
    return conversation


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:500]
    return {c["id"] for c in response.json()["items"]}


@pytest.fixture
def inbox(workspace, owner, api_channel):
    """Four conversations that differ in every filterable way."""
    second = factories.api_channel(workspace, name="Second")
    agent = factories.agent(workspace, "agent@acme.example")
    team = create_team(workspace, "Billing", [agent])
    vip, other = ensure_labels(owner.workspace_id, ["vip", "other"])
    c1 = _conversation(api_channel, "c1", assignee=agent, team=team, priority=3, labels=[vip])
    c2 = _conversation(second, "c2", status="pending")
    c3 = _conversation(api_channel, "c3", status="resolved", labels=[other])
    c4 = _conversation(api_channel, "c4", assignee=owner, priority=1)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "agent": agent, "team": team,
            "second": second, "channel": api_channel, "owner": owner}  # fmt: skip


def test_list_filters(api, inbox):
    c1, c2, c3, c4 = (inbox[k].pk for k in ("c1", "c2", "c3", "c4"))
    expected = {
        "": {c1, c2, c3, c4},
        "status=open": {c1, c4},
        "status=pending": {c2},
        "status=resolved": {c3},
        "status=closed": set(),
        f"assignee_id={inbox['agent'].pk}": {c1},
        f"assignee_id={inbox['owner'].pk}": {c4},
        "unassigned=true": {c2, c3},
        f"unassigned=true&assignee_id={inbox['agent'].pk}": {c2, c3},
        f"team_id={inbox['team'].pk}": {c1},
        f"channel_id={inbox['second'].pk}": {c2},
        f"channel_id={inbox['channel'].pk}": {c1, c3, c4},
        "label=vip": {c1},
        "label=other": {c3},
        "label=missing": set(),
        "priority=3": {c1},
        "priority=0": {c2, c3},
        f"contact_id={inbox['c2'].contact_id}": {c2},
        f"status=open&channel_id={inbox['channel'].pk}&priority=1": {c4},
        "assignee_id=987654321": set(),
    }
    for query, ids in expected.items():
        assert _ids(api.get(f"/conversations?{query}")) == ids, query


def test_list_items_carry_the_conversation_state(api, inbox):
    item = next(c for c in api.get("/conversations").json()["items"] if c["id"] == inbox["c1"].pk)
    assert item["assignee_id"] == inbox["agent"].pk
    assert item["team_id"] == inbox["team"].pk
    assert item["labels"] == ["vip"]
    assert item["priority"] == 3
    assert item["status"] == "open"
    assert item["contact"]["name"] == "Person c1"
    assert item["channel_id"] == inbox["channel"].pk


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "limit=0", "limit=101", "limit=many", "priority=high", "assignee_id=x"],
)
def test_bad_list_parameters_are_400_invalid(api, inbox, query):
    assert_error(api.get(f"/conversations?{query}"), 400, "invalid")


def test_keyset_pages_cover_everything_once(api, api_channel):
    created = [_conversation(api_channel, f"k{i}") for i in range(7)]
    seen, sizes, cursor = [], [], None
    for _ in range(10):
        response = api.get("/conversations?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200
        page = response.json()
        sizes.append(len(page["items"]))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {c.pk for c in created}
    newest_first = list(
        Conversation.objects.order_by("-last_message_at", "-pk").values_list("pk", flat=True)
    )
    assert seen == newest_first


def test_a_full_last_page_has_no_next_cursor(api, api_channel):
    for i in range(6):
        _conversation(api_channel, f"f{i}")
    first = api.get("/conversations?limit=3").json()
    second = api.get(f"/conversations?limit=3&cursor={first['next_cursor']}").json()
    assert len(second["items"]) == 3
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "MjAyNHxub3QtYW4taWQ",  # "2024|not-an-id"
        "bm9waXBl",  # "nopipe"
        "MjAyNC0wMS0wMVQwMDowMDowMHw1",  # "2024-01-01T00:00:00|5": a naive time
    ],
)
def test_a_bad_cursor_is_400_bad_cursor(api, api_channel, cursor):
    _conversation(api_channel, "b1")
    assert_error(api.get(f"/conversations?cursor={cursor}"), 400, "bad_cursor")


def test_a_cursor_with_a_huge_id_is_harmless(api, api_channel):
    _conversation(api_channel, "h1")
    cursor = selectors.encode_cursor(dt.datetime(2999, 1, 1, tzinfo=dt.UTC), 2**70)
    response = api.get(f"/conversations?cursor={cursor}")
    assert response.status_code in (200, 400), response.content[:300]


def test_the_list_query_count_does_not_grow_with_the_page_size(api, inbox, api_channel, owner):
    vip = ensure_labels(owner.workspace_id, ["vip"])
    for i in range(12):
        _conversation(api_channel, f"q{i}", assignee=inbox["agent"], team=inbox["team"],
                      labels=vip)  # fmt: skip
    api.get("/conversations?limit=1")  # the token's last use is recorded once; not counted
    counts = {}
    for limit in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"/conversations?limit={limit}")
        assert response.status_code == 200
        assert len(response.json()["items"]) == min(limit, 16)
        counts[limit] = len(queries)
    assert counts[2] == counts[20], counts


def test_show(api, inbox):
    response = api.get(f"/conversations/{inbox['c1'].pk}")
    assert response.status_code == 200
    assert response.json()["id"] == inbox["c1"].pk
    assert response.json()["number"] == inbox["c1"].number
    assert_error(api.get("/conversations/987654321"), 404, "not_found")


# -- PATCH --------------------------------------------------------------------------------------
def _activities(conversation) -> list[dict]:
    return list(
        Message.objects.filter(conversation=conversation, kind=MessageKind.ACTIVITY)
        .order_by("pk")
        .values_list("data", flat=True)
    )


def test_patch_status(api, api_channel, owner):
    conversation = _conversation(api_channel, "p1")
    response = api.patch(f"/conversations/{conversation.pk}", {"status": "resolved"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolved_at"] is not None
    [activity] = _activities(conversation)
    assert activity["action"] == "status_changed"
    assert activity["status"] == "resolved" and activity["previous"] == "open"
    activity_message = Message.objects.get(conversation=conversation, kind=MessageKind.ACTIVITY)
    assert activity_message.author_member_id == owner.pk
    # The timeline through the API shows it too.
    kinds = [
        m["kind"] for m in api.get(f"/conversations/{conversation.pk}/messages").json()["items"]
    ]
    assert kinds == ["message", "activity"]

    reopened = api.patch(f"/conversations/{conversation.pk}", {"status": "open"}).json()
    assert reopened["status"] == "open" and reopened["resolved_at"] is None


def test_patch_snooze_with_a_time(api, api_channel):
    conversation = _conversation(api_channel, "s1")
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    response = api.patch(
        f"/conversations/{conversation.pk}",
        {"status": "snoozed", "snoozed_until": until.isoformat()},
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "snoozed"
    got = dt.datetime.fromisoformat(response.json()["snoozed_until"].replace("Z", "+00:00"))
    assert got == until


def test_patch_assignee_and_unassign(api, api_channel, workspace):
    agent = factories.agent(workspace, "jo@acme.example")
    conversation = _conversation(api_channel, "a1")
    body = api.patch(f"/conversations/{conversation.pk}", {"assignee_id": agent.pk}).json()
    assert body["assignee_id"] == agent.pk
    body = api.patch(f"/conversations/{conversation.pk}", {"assignee_id": None}).json()
    assert body["assignee_id"] is None
    assert [a["action"] for a in _activities(conversation)] == ["assigned", "unassigned"]
    assert _activities(conversation)[0]["assignee_id"] == agent.pk


def test_patch_team_labels_priority(api, api_channel, workspace):
    team = create_team(workspace, "Sales")
    conversation = _conversation(api_channel, "t1")
    response = api.patch(
        f"/conversations/{conversation.pk}",
        {"team_id": team.pk, "labels": [" vip ", "billing", "vip", ""], "priority": 4},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["team_id"] == team.pk
    assert body["labels"] == ["billing", "vip"]
    assert body["priority"] == 4
    actions = {a["action"]: a for a in _activities(conversation)}
    assert set(actions) == {"team_changed", "labels_changed", "priority_changed"}
    assert actions["labels_changed"]["labels"] == ["billing", "vip"]
    assert actions["priority_changed"]["priority"] == 4
    conversation.refresh_from_db()
    assert conversation.team_id == team.pk and conversation.priority == 4
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["billing", "vip"]

    # The same values again change nothing and record nothing.
    count = len(_activities(conversation))
    again = api.patch(
        f"/conversations/{conversation.pk}",
        {"team_id": team.pk, "labels": ["vip", "billing"], "priority": 4},
    )
    assert again.status_code == 200
    assert len(_activities(conversation)) == count

    cleared = api.patch(f"/conversations/{conversation.pk}", {"labels": [], "team_id": None})
    assert cleared.json()["labels"] == [] and cleared.json()["team_id"] is None


def test_patch_with_an_assignee_or_team_of_another_workspace_is_400(api, api_channel):
    other = factories.workspace("elsewhere")
    stranger = factories.owner_of(other)
    their_team = create_team(other, "Theirs")
    conversation = _conversation(api_channel, "x1")
    for body in ({"assignee_id": stranger.pk}, {"team_id": their_team.pk}):
        assert_error(api.patch(f"/conversations/{conversation.pk}", body), 400, "invalid")
    conversation.refresh_from_db()
    assert conversation.assignee_id is None and conversation.team_id is None
    assert _activities(conversation) == []


@pytest.mark.parametrize(
    "body",
    [
        {"status": "bogus"},
        {"status": None},
        {"status": 3},
        {"priority": 9},
        {"priority": "high"},
        {"labels": ["x" * 65]},
        {"labels": "vip"},
        {"assignee_id": "me"},
        {"snoozed_until": "tomorrow"},
    ],
    ids=lambda body: repr(body)[:30],
)
def test_patch_with_invalid_values_is_400_invalid(api, api_channel, body):
    conversation = _conversation(api_channel, "v1")
    response = api.patch(f"/conversations/{conversation.pk}", body)
    assert_error(response, 400, "invalid")
    assert _activities(conversation) == []
    conversation.refresh_from_db()
    assert conversation.status == "open" and conversation.priority == 0


def test_validation_errors_name_the_field(api, api_channel):
    conversation = _conversation(api_channel, "n1")
    error = assert_error(api.patch(f"/conversations/{conversation.pk}", {"status": "x"}), 400)
    assert [d["field"] for d in error["details"]] == ["status"]
    assert error["message"].startswith("status: ")
    error = assert_error(api.get("/conversations?limit=x"), 400, "invalid")
    assert [d["field"] for d in error["details"]] == ["limit"]


def test_patch_an_unknown_conversation_is_404(api, db):
    assert_error(api.patch("/conversations/987654321", {"status": "open"}), 404, "not_found")
