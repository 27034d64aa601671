"""Bot flows over the API: create, read, change the draft, check, publish (400 listing every
error), export / import, metrics, and a test turn on the draft; members read, admins write."""

from __future__ import annotations

from loket.bots import services
from loket.bots.models import BotSession, Flow, FlowVersion, SessionState
from tests import factories
from tests.api.conftest import assert_error, call


def small_flow() -> dict:
    return {
        "start": "need",
        "language": "en",
        "steps": {
            "need": {
                "type": "choice",
                "save_as": "need",
                "text": {"en": "What do you need?", "nl": "Waarmee kan ik helpen?"},
                "options": [
                    {"id": "code", "title": "Give a code", "next": "code"},
                    {"id": "other", "title": "Something else", "next": "human"},
                ],
            },
            "code": {
                "type": "input",
                "validate": "regex",
                "pattern": r"^[A-Z]{2}\d{6}$",
                "save_as": "booking_code",
                "text": "Your booking code?",
                "retry_text": "Like AB123456, please.",
                "next": "thanks",
            },
            "thanks": {"type": "close", "text": "Thanks, {{booking_code}} it is."},
            "human": {"type": "handoff", "text": "A colleague will help you."},
        },
    }


def test_create_read_update_and_list(world_a, api_a):
    response = call(
        api_a,
        "POST",
        "/flows",
        {"name": "Helper", "trigger": "keyword", "keywords": ["help"], "draft": small_flow(),
         "channel_ids": [world_a.channel.pk], "handoff_words": ["agent"]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Helper"
    assert body["channel_ids"] == [world_a.channel.pk]
    assert body["published_version"] is None and body["enabled"] is False
    flow_id = body["id"]

    response = call(api_a, "GET", f"/flows/{flow_id}")
    assert response.json()["draft"]["start"] == "need"
    names = [f["name"] for f in call(api_a, "GET", "/flows").json()]
    assert "Helper" in names and "Alphaonly flow" in names

    # An unfinished draft is stored as given; /check says what is wrong.
    broken = small_flow()
    broken["steps"]["code"]["next"] = "nowhere"
    broken["steps"]["lost"] = {"type": "message", "text": "Nobody gets here"}
    response = call(api_a, "PATCH", f"/flows/{flow_id}", {"draft": broken, "name": "Helper 2"})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Helper 2"
    check = call(api_a, "GET", f"/flows/{flow_id}/check").json()
    assert check["errors"] == ["step “code”: goes to “nowhere”, which is not a step"]
    assert check["problems"] == [
        {"level": "error", "step": "code", "message": "goes to “nowhere”, which is not a step"}
    ]

    # Publishing it is refused with the list of errors; switching on needs a published version.
    error = assert_error(call(api_a, "POST", f"/flows/{flow_id}/publish"), 400, "invalid")
    assert error["errors"] == check["errors"]
    assert error["problems"] == check["problems"]
    assert_error(call(api_a, "PATCH", f"/flows/{flow_id}", {"enabled": True}), 400, "invalid")

    broken["steps"]["code"]["next"] = "thanks"
    call(api_a, "PATCH", f"/flows/{flow_id}", {"draft": broken})
    check = call(api_a, "GET", f"/flows/{flow_id}/check").json()
    assert check["errors"] == []
    assert check["warnings"] == ["step “lost”: nothing leads to this step"]
    response = call(api_a, "POST", f"/flows/{flow_id}/publish")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "version": 1,
        "warnings": ["step “lost”: nothing leads to this step"],
    }
    response = call(api_a, "PATCH", f"/flows/{flow_id}", {"enabled": True})
    assert response.json()["enabled"] is True
    assert response.json()["published_version"] == 1
    assert response.json()["published"]["steps"]["code"]["next"] == "thanks"

    assert call(api_a, "DELETE", f"/flows/{flow_id}").status_code == 204
    assert not Flow.objects.filter(pk=flow_id).exists()
    assert_error(call(api_a, "GET", f"/flows/{flow_id}"), 404, "not_found")


def test_bad_settings_and_definitions_are_400(world_a, world_b, api_a):
    before = Flow.objects.count()
    error = assert_error(
        call(api_a, "POST", "/flows", {"name": "X", "channel_ids": [world_b.channel.pk]}),
        400,
        "invalid",
    )
    assert "channel" in error["message"]
    assert_error(call(api_a, "POST", "/flows", {"name": "X", "trigger": "sometimes"}), 400)
    assert_error(call(api_a, "POST", "/flows", {"name": " "}), 400)
    bad = small_flow()
    bad["steps"]["need"]["options"] = []
    error = assert_error(call(api_a, "POST", "/flows", {"name": "X", "draft": bad}), 400)
    assert "step “need”: a choice has 2 to 10 options" in error["errors"]
    assert Flow.objects.count() == before

    flow = world_a.flow
    response = call(api_a, "PATCH", f"/flows/{flow.pk}", {"channel_ids": [world_b.channel.pk]})
    assert_error(response, 400, "invalid")
    assert list(flow.channels.values_list("pk", flat=True)) == [world_a.channel.pk]


def test_export_then_import(world_a, api_a):
    flow = world_a.flow
    services.update_flow(flow, draft=small_flow(), keywords=["help"], trigger="keyword")
    exported = call(api_a, "GET", f"/flows/{flow.pk}/export").json()
    assert exported["format"] == "loket.flow/1"
    assert exported["definition"]["start"] == "need"

    response = call(api_a, "POST", "/flows/import", exported)
    assert response.status_code == 201, response.content
    copy = response.json()
    assert copy["id"] != flow.pk
    assert copy["draft"] == small_flow()
    assert copy["trigger"] == "keyword" and copy["keywords"] == ["help"]
    assert copy["enabled"] is False and copy["published_version"] is None

    assert_error(call(api_a, "POST", "/flows/import", {"name": "nope"}), 400, "invalid")
    exported["definition"]["steps"]["need"]["type"] = "dance"
    error = assert_error(call(api_a, "POST", "/flows/import", exported), 400, "invalid")
    assert any("unknown type “dance”" in e for e in error["errors"])


def test_the_test_panel_talks_with_the_draft_and_keeps_nothing(world_a, api_a):
    flow = world_a.flow
    services.update_flow(flow, draft=small_flow())  # the draft; the published one says hi
    counts = (BotSession.objects.count(), FlowVersion.objects.count(), Flow.objects.count())

    first = call(api_a, "POST", f"/flows/{flow.pk}/test", {"language": "nl"})
    assert first.status_code == 200, first.content
    turn = first.json()
    assert turn["done"] == ""
    assert turn["replies"][0]["text"] == "Waarmee kan ik helpen?"
    assert [c["id"] for c in turn["replies"][0]["choices"]] == ["code", "other"]

    turn = call(
        api_a, "POST", f"/flows/{flow.pk}/test", {"state": turn["state"], "choice_id": "code"}
    ).json()
    assert turn["replies"][0]["text"] == "Your booking code?"
    turn = call(
        api_a, "POST", f"/flows/{flow.pk}/test", {"state": turn["state"], "text": "nope"}
    ).json()
    assert turn["replies"][0]["text"] == "Like AB123456, please."
    turn = call(
        api_a, "POST", f"/flows/{flow.pk}/test", {"state": turn["state"], "text": "AB123456"}
    ).json()
    assert turn["replies"][0]["text"] == "Thanks, AB123456 it is."
    assert turn["done"] == SessionState.COMPLETED
    assert counts == (BotSession.objects.count(), FlowVersion.objects.count(), Flow.objects.count())

    services.update_flow(flow, draft={"start": "x", "steps": {"y": {"type": "close"}}})
    error = assert_error(call(api_a, "POST", f"/flows/{flow.pk}/test", {}), 400, "invalid")
    assert "the first step “x” is not a step" in error["errors"]


def test_metrics(world_a, api_a):
    flow = world_a.flow
    response = call(api_a, "GET", f"/flows/{flow.pk}/metrics")
    assert response.status_code == 200
    figures = response.json()
    assert figures["started"] == 0 and figures["dropped"] == 0 and figures["steps"] == {}
    BotSession.objects.create(
        workspace=flow.workspace, conversation=world_a.conversation, flow=flow,
        version=flow.published, step="hi", path=["hi"], state=SessionState.DROPPED,
    )  # fmt: skip
    figures = call(api_a, "GET", f"/flows/{flow.pk}/metrics").json()
    assert figures["started"] == 1 and figures["dropped"] == 1
    assert figures["steps"] == {"hi": {"reached": 1, "dropped": 1}}


def test_members_read_and_admins_write(world_a):
    agent = factories.ApiClient(world_a.agent)
    flow = world_a.flow
    assert call(agent, "GET", "/flows").status_code == 200
    assert call(agent, "GET", f"/flows/{flow.pk}").status_code == 200
    assert call(agent, "GET", f"/flows/{flow.pk}/check").status_code == 200
    assert call(agent, "GET", f"/flows/{flow.pk}/metrics").status_code == 200
    assert call(agent, "GET", f"/flows/{flow.pk}/export").status_code == 200
    assert call(agent, "POST", f"/flows/{flow.pk}/test", {}).status_code == 200
    assert_error(call(agent, "POST", "/flows", {"name": "Mine"}), 403, "forbidden")
    assert_error(call(agent, "PATCH", f"/flows/{flow.pk}", {"name": "Mine"}), 403, "forbidden")
    assert_error(call(agent, "POST", f"/flows/{flow.pk}/publish"), 403, "forbidden")
    assert_error(call(agent, "DELETE", f"/flows/{flow.pk}"), 403, "forbidden")
    exported = services.export_flow(flow)
    assert_error(call(agent, "POST", "/flows/import", exported), 403, "forbidden")
    flow.refresh_from_db()
    assert flow.name == "Alphaonly flow"
