"""Fixtures for the REST API tests: Bearer clients and a second workspace to keep apart."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django_tasks_db.models import DBTaskResult

from loket.automation import canned, macros, sla
from loket.automation.models import CannedReply, Macro, Rule, SlaPolicy
from loket.automation.rules import service as rule_service
from loket.bots import services as flow_services
from loket.bots.models import Flow
from loket.connectors.registry import get_connector
from loket.inbox.models import Channel, Contact, Conversation, InboundEvent, Message
from loket.inbox.services import journal, outbound
from loket.inbox.services.channels import create_channel
from loket.tenancy.models import Membership, Team, Workspace
from loket.tenancy.services import create_team
from tests import factories

SEND_TASK = "loket.inbox.tasks.send_message"


def call(api_client: factories.ApiClient, method: str, path: str, body=None):
    """Any HTTP method on /api/v1<path>, JSON body when given; multipart when the body holds a
    file (each call sends the file from its start)."""
    kwargs = {}
    files = [value for value in (body or {}).values() if hasattr(value, "seek")]
    if files:
        for file in files:
            file.seek(0)
        kwargs = {"data": body}
    elif body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(api_client.client, method.lower())(f"/api/v1{path}", **kwargs)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is a JSON error ``{"error": {"code", "message"}}`` with this status."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return error


def send_tasks(message_id: int | None = None) -> list[DBTaskResult]:
    tasks = [t for t in DBTaskResult.objects.filter(task_path=SEND_TASK)]
    if message_id is None:
        return tasks
    return [t for t in tasks if message_id in t.args_kwargs.get("args", [])]


@dataclass
class World:
    """One workspace with one of everything the API can address."""

    workspace: Workspace
    owner: Membership
    agent: Membership
    team: Team
    channel: Channel
    contact: Contact
    conversation: Conversation
    message: Message  # a failed reply, so a leaked retry would visibly change it
    event: InboundEvent  # a failed delivery, so a leaked replay would visibly change it
    canned_reply: CannedReply  # shared, so every member of the workspace may read it
    sla_policy: SlaPolicy
    macro: Macro  # shared, so every member of the workspace may run it
    rule: Rule
    flow: Flow  # published, with a draft the test panel can run
    marker: str  # text that appears in this workspace's data and nowhere else


def build_world(slug: str, marker: str) -> World:
    ws = factories.workspace(slug)
    owner = factories.owner_of(ws)
    agent = factories.agent(ws, f"agent@{slug}.example")
    team = create_team(ws, f"{marker} team", [agent])
    channel, _ = create_channel(
        ws,
        get_connector("api"),
        name=f"{marker} channel",
        config={"outbound_url": "https://example.com/out"},
        default_team=team,
    )
    result = factories.inbound(
        channel,
        f"{marker} hello",
        contact_id=f"{marker}-contact",
        name=f"{marker} Person",
        email=f"{marker.lower()}@example.com",
    )
    conversation = Conversation.objects.get(pk=result.conversation_id)
    reply = outbound.reply(conversation, author=owner, text=f"{marker} reply")
    outbound.mark_failed(reply.pk, "provider said no")
    reply.refresh_from_db()
    outcome = journal.record(channel, b"{not json", {}, content_type="application/json")
    canned_reply = canned.create_canned_reply(
        owner,
        shortcut=marker.lower(),
        title=f"{marker} canned",
        body=f"{marker} says hi {{{{contact.first_name}}}}",
        shared=True,
    )
    sla_policy = sla.create_policy(
        ws, name=f"{marker} SLA", targets={"0": {"first_response": 60}}, channels=[channel]
    )
    macro = macros.create_macro(
        owner,
        name=f"{marker} macro",
        shared=True,
        actions=[{"type": "add_labels", "labels": [f"{marker}-macro"]}],
    )
    rule = rule_service.create_rule(
        ws,
        name=f"{marker} rule",
        trigger="conversation_updated",
        actions=[{"type": "add_labels", "labels": [f"{marker}-rule"]}],
    )
    flow = flow_services.create_flow(
        ws,
        name=f"{marker} flow",
        draft={
            "start": "hi",
            "steps": {"hi": {"type": "message", "text": f"{marker} bot says hi"}},
        },
        channel_ids=[channel.pk],
    )
    flow_services.publish(flow)
    return World(
        workspace=ws,
        owner=owner,
        agent=agent,
        team=team,
        channel=channel,
        contact=conversation.contact,
        conversation=conversation,
        message=reply,
        event=InboundEvent.objects.get(pk=outcome.event_id),
        canned_reply=canned_reply,
        sla_policy=sla_policy,
        macro=macro,
        rule=rule,
        flow=flow,
        marker=marker,
    )


@pytest.fixture
def world_a(db) -> World:
    return build_world("alpha", "Alphaonly")


@pytest.fixture
def world_b(db) -> World:
    return build_world("bravo", "Bravoonly")


@pytest.fixture
def api_a(world_a) -> factories.ApiClient:
    return factories.ApiClient(world_a.owner)
