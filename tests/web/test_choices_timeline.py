"""The agent timeline shows the choices an outbound message offered, and the customer's pick."""

from __future__ import annotations

import pytest

from loket.inbox.models import Conversation
from loket.inbox.services import choices, outbound
from tests import factories

pytestmark = pytest.mark.django_db

ITEMS = [{"id": "change", "title": "Change booking"}, {"id": "refund", "title": "Refund <b>"}]


@pytest.fixture
def agent_client(client, workspace, owner):
    client.force_login(owner.user)
    return client


def test_offered_choices_show_as_chips_under_the_message(agent_client, owner, api_channel):
    result = factories.inbound(api_channel, "Hi", contact_id="c-1")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    text, data = choices.prepare(conversation, "What can we do?", ITEMS)
    outbound.reply(conversation, author=owner, text=text, data=data)
    factories.inbound(
        api_channel,
        "Refund",
        contact_id="c-1",
        data={"choice": {"id": "refund", "title": "Refund"}},
    )
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert '<span class="chip">Change booking</span>' in pane
    assert '<span class="chip">Refund &lt;b&gt;</span>' in pane
    assert "Chose “Refund”" in pane
