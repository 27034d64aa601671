"""The inbound journal through the API: admins only."""

from __future__ import annotations

from loket.inbox.services import journal
from tests import factories
from tests.api.conftest import assert_error


def test_admins_list_show_and_replay_failed_deliveries(api, api_channel):
    failed = journal.record(api_channel, b"{broken", {}, content_type="application/json")
    listed = api.get("/inbound-events?status=failed").json()["items"]
    assert [e["id"] for e in listed] == [failed.event_id]
    assert listed[0]["error"]
    shown = api.get(f"/inbound-events/{failed.event_id}")
    assert shown.status_code == 200 and shown.json()["status"] == "failed"
    replayed = api.post(f"/inbound-events/{failed.event_id}/replay")
    assert replayed.status_code == 200
    assert replayed.json()["attempts"] == 2
    assert_error(api.get("/inbound-events?status=nope"), 400, "invalid")


def test_agents_may_not_read_the_journal(workspace, api_channel):
    failed = journal.record(api_channel, b"{broken", {}, content_type="application/json")
    agent = factories.ApiClient(factories.agent(workspace))
    assert_error(agent.get("/inbound-events"), 403, "forbidden")
    assert_error(agent.get(f"/inbound-events/{failed.event_id}"), 403, "forbidden")
    assert_error(agent.post(f"/inbound-events/{failed.event_id}/replay"), 403, "forbidden")
