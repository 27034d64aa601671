"""The composer and reply windows in the agent app: on WhatsApp after 24 hours the composer says
so before the agent types and offers only templates; a free-text send is refused with that
reason and nothing is queued; a template with its variables is sent; on Messenger a reply after
24 hours goes out as a human agent's, and after 7 days the composer says no reply is possible."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Conversation, Message, MessageTemplate
from loket.inbox.services import templates, windows
from loket.inbox.services.ingest import receive
from tests.connectors.providers import Answer, running
from tests.connectors.whatsapp import support

pytestmark = pytest.mark.django_db


@pytest.fixture
def whatsapp(workspace, settings):
    with running() as graph:
        settings.LOKET_META_GRAPH_URL = graph.url
        graph.route(
            "GET", r"/v21\.0/\d+/message_templates", Answer(200, {"data": support.TEMPLATES})
        )
        yield support.make_channel(workspace)


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner.user)
    return client


def conversation_on(channel, hours_ago: float) -> Conversation:
    receive(
        channel,
        InboundMessage("wamid.1", InboundContact("31612345678", name="Sanne"), text="Hoi"),
    )
    conversation = Conversation.objects.get(channel=channel)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=hours_ago)
    )
    conversation.refresh_from_db()
    return conversation


def pane(client, conversation) -> str:
    slug = conversation.workspace.slug
    return client.get(f"/w/{slug}/inbox/{conversation.number}/pane/").content.decode()


def test_inside_the_window_the_composer_is_free(whatsapp, agent_client):
    conversation = conversation_on(whatsapp, hours_ago=2)
    window = windows.reply_window(conversation)
    assert window.free_text and window.limited and not window.notice
    html = pane(agent_client, conversation)
    assert 'id="reply-window"' not in html
    assert 'id="use-template"' in html  # templates are there when wanted
    assert "order_update (nl)" in html


def test_after_24_hours_only_templates_and_the_composer_says_so(whatsapp, agent_client):
    conversation = conversation_on(whatsapp, hours_ago=25)
    html = pane(agent_client, conversation)
    assert 'id="reply-window"' in html
    assert "only an approved message template can be sent" in html
    assert 'data-templates-only="1"' in html

    slug = conversation.workspace.slug
    refused = agent_client.post(
        f"/w/{slug}/inbox/{conversation.number}/send/",
        {"text": "Hoi Sanne!", "kind": "message", "confirmed": "1"},
    )
    assert refused.status_code == 400
    assert "only an approved message template" in refused.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_a_template_is_sent_with_its_variables(whatsapp, agent_client):
    conversation = conversation_on(whatsapp, hours_ago=30)
    template = MessageTemplate.objects.get(channel=whatsapp, name="order_update")
    slug = conversation.workspace.slug
    url = f"/w/{slug}/inbox/{conversation.number}/send/"
    missing = agent_client.post(
        url, {"template_id": template.pk, "template_header": "#10452", "template_body": "Sanne"}
    )
    assert missing.status_code == 400
    assert "Fill in all 2 variables" in missing.content.decode()

    sent = agent_client.post(
        url,
        {
            "template_id": template.pk,
            "template_header": "#10452",
            "template_body": ["Sanne", "onderweg"],
            "confirmed": "1",
        },
    )
    assert sent.status_code == 200
    message = Message.objects.get(direction="out")
    assert message.text == "Bestelling #10452\n\nHoi Sanne, je bestelling is onderweg.\n\nTeam Acme"
    assert message.status == "queued"
    assert message.data["template"] == {
        "id": template.pk,
        "name": "order_update",
        "language": "nl",
        "header": ["#10452"],
        "body": ["Sanne", "onderweg"],
    }


def test_another_channels_template_is_refused(whatsapp, workspace, agent_client, settings):
    conversation = conversation_on(whatsapp, hours_ago=30)
    with running() as graph:
        settings.LOKET_META_GRAPH_URL = graph.url
        graph.route("GET", r"/v21\.0/\d+/message_templates", Answer(200, {"data": []}))
        other = support.make_channel(workspace, phone_number_id="999000111")
    foreign = MessageTemplate.objects.create(
        workspace=workspace, channel=other, name="x", language="nl", status="APPROVED"
    )
    slug = conversation.workspace.slug
    answer = agent_client.post(
        f"/w/{slug}/inbox/{conversation.number}/send/", {"template_id": foreign.pk}
    )
    assert answer.status_code == 400
    assert "not available on this channel" in answer.content.decode()


def test_unapproved_templates_are_not_offered_or_sent(whatsapp):
    template = MessageTemplate.objects.get(channel=whatsapp, name="welcome_back")
    template.status = "PAUSED"
    template.save()
    assert template not in templates.approved(whatsapp)
    with pytest.raises(ValueError, match="not approved"):
        templates.fill(template)


def test_notes_are_never_limited_by_the_window(whatsapp, owner):
    from loket.inbox.services import outbound

    conversation = conversation_on(whatsapp, hours_ago=100)
    note = outbound.reply(conversation, author=owner, text="Called her instead", kind="note")
    assert note.kind == "note"


@pytest.fixture
def messenger(workspace, settings):
    from tests.connectors.messenger import support as messenger_support

    with running() as graph:
        settings.LOKET_META_GRAPH_URL = graph.url
        messenger_support.graph_fake(graph)
        channel, _shown = messenger_support.make_channel(workspace, "messenger")
        yield channel


def test_messenger_after_24_hours_replies_as_a_human_agent_and_after_7_days_not_at_all(
    messenger, agent_client, owner
):
    from loket.inbox.services import outbound

    conversation = conversation_on(messenger, hours_ago=30)
    window = windows.reply_window(conversation)
    assert window.free_text and window.tag == windows.HUMAN_AGENT_TAG
    html = pane(agent_client, conversation)
    assert "your reply is sent as a personal answer from a team member" in html
    assert 'id="template-picker"' not in html
    outbound.reply(conversation, author=owner, text="Sorry for the wait!")

    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(days=8)
    )
    conversation.refresh_from_db()
    html = pane(agent_client, conversation)
    assert "this channel allows no reply until they write again" in html
    assert 'data-window-closed="1"' in html
    with pytest.raises(ValueError, match="allows no reply"):
        outbound.reply(conversation, author=owner, text="Still there?")


def test_template_variables_with_line_breaks_are_refused(whatsapp):
    template = MessageTemplate.objects.get(channel=whatsapp, name="order_update")
    with pytest.raises(ValueError, match="line breaks"):
        templates.fill(template, header=["#1"], body=["Sanne", "on\nits way"])
    with pytest.raises(ValueError, match="line breaks"):
        templates.fill(template, header=["#1"], body=["Sanne", "on      its way"])
    filled = templates.fill(template, header=["#1"], body=["Sanne", "on its way"])
    assert "Hoi Sanne, je bestelling is on its way." in filled.text


def test_a_zero_placeholder_is_not_a_variable(whatsapp):
    template = MessageTemplate.objects.get(channel=whatsapp, name="welcome_back")
    template.components = [{"type": "BODY", "text": "Code {{0}} stays as it is"}]
    assert templates.variables_needed(template) == {"header": 0, "body": 0}
    assert templates.fill(template).text == "Code {{0}} stays as it is"
