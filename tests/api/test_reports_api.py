"""The reports over the API: the same figures as the pages, for supervisors and up, with the
previous period, a series, per-agent figures and the busiest hours; bad ranges are 400s."""

from __future__ import annotations

import pytest

from loket.reports import rollups
from tests import factories
from tests.api.conftest import assert_error
from tests.reports.test_rollups import conversation_with
from tests.web.test_reports_pages import at

pytestmark = pytest.mark.django_db

RANGE = "from=2026-11-09&to=2026-11-15"


@pytest.fixture
def data(workspace, owner, agent, api_channel):
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save(update_fields=["time_zone"])
    conversation_with(api_channel, owner, [at(10, 9), at(10, 9, 30)], resolve_at=at(10, 11))
    conversation_with(api_channel, agent, [at(11, 14), at(11, 14, 10)], contact="c-2")
    conversation_with(api_channel, owner, [at(3, 9), at(3, 10)], contact="c-3")
    rollups.catch_up()


def test_overview_agents_and_hours(supervisor, owner, agent, data):
    api = factories.ApiClient(supervisor)
    body = api.get(f"/reports/overview?{RANGE}").json()
    assert (body["from"], body["to"], body["by"]) == ("2026-11-09", "2026-11-15", "day")
    assert body["totals"]["created"] == 2 and body["totals"]["first_response_seconds"] == 1200
    assert body["previous"]["first_response_seconds"] == 3600
    assert [p["created"] for p in body["series"]] == [0, 1, 1, 0, 0, 0, 0]
    weeks = api.get("/reports/overview?from=2026-01-01&to=2026-12-31").json()
    assert weeks["by"] == "week" and sum(p["created"] for p in weeks["series"]) == 3

    agents = {row["member_id"]: row for row in api.get(f"/reports/agents?{RANGE}").json()["items"]}
    assert agents[owner.pk]["first_response_seconds"] == 1800
    assert agents[agent.pk]["first_response_seconds"] == 600
    only = api.get(f"/reports/overview?{RANGE}&member_id={agent.pk}").json()
    assert only["totals"]["first_responses"] == 1

    hours = api.get(f"/reports/busiest-hours?{RANGE}").json()["weekdays"]
    assert len(hours) == 7 and all(len(day) == 24 for day in hours)
    assert hours[1][9] == 1 and hours[2][14] == 1 and sum(map(sum, hours)) == 2


def test_who_and_what_is_refused(owner, agent, data):
    assert_error(factories.ApiClient(agent).get(f"/reports/overview?{RANGE}"), 403, "forbidden")
    api = factories.ApiClient(owner)
    assert_error(api.get("/reports/overview?from=2026-11-15&to=2026-11-09"), 400, "invalid")
    assert_error(api.get("/reports/agents?from=2024-01-01&to=2026-11-09"), 400, "invalid")
    response = api.get("/reports/overview?from=yesterday")
    assert response.status_code in (400, 422)


def test_channels_teams_and_labels(workspace, supervisor, owner, api_channel, data):
    from loket.inbox.models import Conversation, Label
    from loket.inbox.services.conversations import update_conversation
    from loket.tenancy.models import Team

    support = Team.objects.create(workspace=workspace, name="Support")
    billing = Label.objects.create(workspace=workspace, name="Billing")
    first = Conversation.objects.get(workspace=workspace, number=1)
    update_conversation(first, actor=owner, team=support, labels=[billing])
    rollups.rebuild(workspace.pk)
    api = factories.ApiClient(supervisor)

    def items(path: str, key: str) -> dict:
        return {i[key]: i for i in api.get(f"/reports/{path}?{RANGE}").json()["items"]}

    assert {k: v["created"] for k, v in items("channels", "channel_id").items()} == {
        api_channel.pk: 2
    }
    teams = items("teams", "team_id")
    assert {k: v["created"] for k, v in teams.items()} == {support.pk: 1, None: 1}
    assert teams[support.pk]["first_response_seconds"] == 1800
    labels = items("labels", "label_id")
    assert {k: v["created"] for k, v in labels.items()} == {billing.pk: 1, None: 1}
    only = api.get(f"/reports/overview?{RANGE}&label_id={billing.pk}").json()["totals"]
    assert only == {k: v for k, v in labels[billing.pk].items() if k != "label_id"}
    assert_error(
        factories.ApiClient(factories.agent(workspace)).get("/reports/teams"), 403, "forbidden"
    )
