"""Settings → Bot flows: the list with its figures, new / import / export / delete, the editor's
round trip of the draft as JSON (stored however unfinished, its errors shown at their step),
publishing, the test panel on the draft in the page, and that agents and other workspaces cannot
reach any of it."""

from __future__ import annotations

import io
import json

from loket.bots import services
from loket.bots.models import BotSession, Flow, SessionState
from loket.inbox.models import Conversation
from tests import factories
from tests.workspace_settings.conftest import url


def small_flow() -> dict:
    return {
        "start": "need",
        "language": "en",
        "steps": {
            "need": {
                "type": "choice",
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
                "next": "thanks",
            },
            "thanks": {"type": "close", "text": "Thanks, {{booking_code}} it is."},
            "human": {"type": "handoff", "text": "A colleague will help you."},
        },
    }


def editor_fields(flow: Flow, **extra) -> dict:
    return {
        "name": flow.name,
        "trigger": flow.trigger,
        "keywords": "",
        "handoff_words": "agent, medewerker",
        "draft": json.dumps(flow.draft),
        **extra,
    }


def test_new_flow_opens_the_editor_and_is_listed(owner_client, workspace):
    response = owner_client.post(url("flows", workspace), {"name": "Ferry helper"})
    flow = Flow.objects.get(workspace=workspace, name="Ferry helper")
    assert response.status_code == 302
    assert response["Location"] == url("flow-edit", workspace, flow.pk)
    assert flow.draft["start"] == "welcome" and not flow.enabled

    page = owner_client.get(url("flow-edit", workspace, flow.pk))
    assert page.status_code == 200
    state = page.context["editor_state"]
    assert state["draft"]["steps"]["welcome"]["type"] == "message"
    assert page.context["errors"] == []

    listing = owner_client.get(url("flows", workspace)).content.decode()
    assert "Ferry helper" in listing
    assert "All channels" in listing


def test_list_shows_figures_and_published_version(owner_client, workspace):
    channel = factories.api_channel(workspace)
    flow = services.create_flow(
        workspace, name="Counted", draft=small_flow(), channel_ids=[channel.pk]
    )
    version = services.publish(flow)
    result = factories.inbound(channel, "hello")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    for state in (SessionState.COMPLETED, SessionState.DROPPED, SessionState.DROPPED):
        BotSession.objects.create(
            workspace=workspace, conversation=conversation, flow=flow, version=version,
            step="code", path=["need", "code"], state=state,
        )  # fmt: skip
    page = owner_client.get(url("flows", workspace))
    row = next(r for r in page.context["rows"] if r["flow"] == flow)
    assert row["figures"] == {"started": 3, "completed": 1, "dropped": 2}
    assert row["channels"] == channel.name
    html = page.content.decode()
    assert "version 1" in html

    editor = owner_client.get(url("flow-edit", workspace, flow.pk))
    assert {"step": "code", "reached": 3, "dropped": 2} in editor.context["step_figures"]
    figures = {str(f["label"]): f["value"] for f in editor.context["figures"]}
    assert figures["Started"] == 3 and figures["Dropped"] == 2


def test_save_keeps_an_unfinished_draft_and_shows_errors_at_their_step(owner_client, workspace):
    flow = services.create_flow(workspace, name="Helper", draft=small_flow())
    broken = small_flow()
    broken["steps"]["code"]["next"] = "nowhere"
    broken["steps"]["lost"] = {"type": "message", "text": "Nobody comes here"}
    response = owner_client.post(
        url("flow-edit", workspace, flow.pk),
        editor_fields(flow, draft=json.dumps(broken), name="Helper 2", keywords="help, hulp"),
    )
    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.name == "Helper 2" and flow.keywords == ["help", "hulp"]
    assert flow.handoff_words == ["agent", "medewerker"]
    assert flow.draft["steps"]["code"]["next"] == "nowhere"

    page = owner_client.get(url("flow-edit", workspace, flow.pk))
    problems = page.context["editor_state"]["problems"]
    assert problems["code"]["errors"] == ["goes to “nowhere”, which is not a step"]
    dutch = owner_client.get(url("flow-edit", workspace, flow.pk), HTTP_ACCEPT_LANGUAGE="nl")
    assert dutch.context["editor_state"]["problems"]["code"]["errors"] == [
        "gaat naar “nowhere”, maar dat is geen stap"
    ]
    assert 'id="flow-publish" disabled' in page.content.decode()

    # Publishing is refused while the draft has errors.
    owner_client.post(url("flow-publish", workspace, flow.pk))
    flow.refresh_from_db()
    assert flow.published is None

    broken["steps"]["code"]["next"] = "thanks"
    owner_client.post(
        url("flow-edit", workspace, flow.pk), editor_fields(flow, draft=json.dumps(broken))
    )
    page = owner_client.get(url("flow-edit", workspace, flow.pk))
    assert page.context["errors"] == []
    assert page.context["editor_state"]["problems"] == {
        "lost": {"errors": [], "warnings": ["nothing leads to this step"]}
    }
    owner_client.post(url("flow-publish", workspace, flow.pk))
    flow.refresh_from_db()
    assert flow.published.number == 1

    # "Publish" in the editor saves what is in the page first, then publishes it, if it can.
    broken["steps"]["thanks"]["text"] = "Thank you!"
    owner_client.post(
        url("flow-edit", workspace, flow.pk),
        editor_fields(flow, draft=json.dumps(broken), publish="1"),
    )
    flow.refresh_from_db()
    assert flow.published.number == 2
    assert flow.published.definition["steps"]["thanks"]["text"] == "Thank you!"
    broken["steps"]["thanks"]["next"] = "nowhere"
    owner_client.post(
        url("flow-edit", workspace, flow.pk),
        editor_fields(flow, draft=json.dumps(broken), publish="1"),
    )
    flow.refresh_from_db()
    assert flow.published.number == 2 and "nowhere" in json.dumps(flow.draft)
    broken["steps"]["thanks"].pop("next")
    owner_client.post(
        url("flow-edit", workspace, flow.pk), editor_fields(flow, draft=json.dumps(broken))
    )

    # Switched on from the editor, now that there is a version.
    owner_client.post(url("flow-edit", workspace, flow.pk), editor_fields(flow, enabled="on"))
    flow.refresh_from_db()
    assert flow.enabled


def test_bad_settings_are_not_saved(owner_client, workspace, other_workspace):
    flow = services.create_flow(workspace, name="Helper", draft=small_flow())
    foreign = factories.api_channel(other_workspace)
    response = owner_client.post(
        url("flow-edit", workspace, flow.pk),
        editor_fields(flow, channels=[str(foreign.pk)], name="Changed"),
    )
    assert response.status_code == 400
    flow.refresh_from_db()
    assert flow.name == "Helper" and not flow.channels.exists()
    response = owner_client.post(
        url("flow-edit", workspace, flow.pk), editor_fields(flow, draft="{not json")
    )
    assert response.status_code == 400
    # Switching on an unpublished flow is refused; the draft is still saved.
    owner_client.post(
        url("flow-edit", workspace, flow.pk), editor_fields(flow, enabled="on", name="Saved")
    )
    flow.refresh_from_db()
    assert flow.name == "Saved" and not flow.enabled


def test_export_import_and_delete(owner_client, workspace):
    flow = services.create_flow(workspace, name="Helper", draft=small_flow())
    response = owner_client.get(url("flow-export", workspace, flow.pk))
    assert response["Content-Disposition"] == 'attachment; filename="helper.json"'
    exported = json.loads(response.content)
    assert exported["definition"] == small_flow()

    upload = io.BytesIO(json.dumps({**exported, "name": "Copy"}).encode())
    upload.name = "helper.json"
    response = owner_client.post(url("flow-import", workspace), {"file": upload})
    copy = Flow.objects.get(workspace=workspace, name="Copy")
    assert response["Location"] == url("flow-edit", workspace, copy.pk)
    assert copy.draft == small_flow() and copy.published is None

    bad = io.BytesIO(b'{"format": "something else"}')
    bad.name = "x.json"
    response = owner_client.post(url("flow-import", workspace), {"file": bad}, follow=True)
    assert "not a Loket flow export" in response.content.decode()
    assert Flow.objects.filter(workspace=workspace).count() == 2

    owner_client.post(url("flow-delete", workspace, copy.pk))
    assert not Flow.objects.filter(pk=copy.pk).exists()


def test_the_test_panel_runs_the_draft_in_the_page(owner_client, workspace):
    flow = services.create_flow(workspace, name="Helper", draft=small_flow())
    draft = small_flow()
    draft["steps"]["thanks"]["text"] = "Unsaved: {{booking_code}}."
    endpoint = url("flow-test", workspace, flow.pk)

    turn = owner_client.post(endpoint, {"draft": json.dumps(draft), "language": "nl"}).json()
    assert turn["replies"][0]["text"] == "Waarmee kan ik helpen?"
    assert [c["id"] for c in turn["replies"][0]["choices"]] == ["code", "other"]
    turn = owner_client.post(
        endpoint,
        {"draft": json.dumps(draft), "state": json.dumps(turn["state"]), "choice_id": "code"},
    ).json()
    assert turn["replies"][0]["text"] == "Your booking code?"
    turn = owner_client.post(
        endpoint,
        {"draft": json.dumps(draft), "state": json.dumps(turn["state"]), "text": "AB123456"},
    ).json()
    assert turn["replies"][0]["text"] == "Unsaved: AB123456."
    assert turn["done"] == "completed"
    assert not BotSession.objects.exists()

    draft["steps"]["code"]["next"] = "nowhere"
    response = owner_client.post(endpoint, {"draft": json.dumps(draft)})
    assert response.status_code == 400
    assert response.json()["errors"] == ["step “code”: goes to “nowhere”, which is not a step"]


def test_agents_and_other_workspaces_are_kept_out(
    agent_client, owner_client, workspace, other_workspace
):
    flow = services.create_flow(workspace, name="Helper", draft=small_flow())
    assert agent_client.get(url("flows", workspace)).status_code == 403
    assert agent_client.get(url("flow-edit", workspace, flow.pk)).status_code == 403
    assert agent_client.post(url("flow-test", workspace, flow.pk)).status_code == 403

    theirs = services.create_flow(other_workspace, name="Theirs", draft=small_flow())
    for name in ("flow-edit", "flow-export"):
        assert owner_client.get(url(name, workspace, theirs.pk)).status_code == 404
    for name in ("flow-delete", "flow-publish", "flow-enabled", "flow-test"):
        assert owner_client.post(url(name, workspace, theirs.pk)).status_code == 404
    assert Flow.objects.filter(pk=theirs.pk).exists()
    assert "Theirs" not in owner_client.get(url("flows", workspace)).content.decode()
