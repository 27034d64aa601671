"""An agent taking over from the flow bot (``services.take_over``): the session stops, an activity
line names who took over, the agents' screens hear of it, the bot stays quiet afterwards; a second
take-over does nothing; a member of another workspace cannot."""

from __future__ import annotations

import pytest

from loket.bots import services
from loket.bots.models import BotSession, SessionState
from loket.inbox.models import Conversation, Message, MessageKind
from loket.inbox.services.conversations import InvalidChange
from loket.web.inbox import timeline
from tests import factories
from tests.connectors.providers import run_tasks

FLOW = {
    "start": "welcome",
    "language": "en",
    "steps": {
        "welcome": {"type": "message", "text": "Hi! I am the ferry helper.", "next": "need"},
        "need": {
            "type": "choice",
            "title": "What they need",
            "text": "What do you need?",
            "options": [
                {"id": "change", "title": "Change booking", "next": "bye"},
                {"id": "refund", "title": "Refund", "next": "bye"},
            ],
        },
        "bye": {"type": "message", "text": "Noted, thank you!"},
    },
}


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


@pytest.fixture
def talking(shop, workspace):
    """A conversation the "Ferry booking helper" is talking in, waiting at its choice."""
    flow = services.create_flow(workspace, name="Ferry booking helper", draft=FLOW)
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    return says(shop, "Hello")


def says(channel, text):
    result = factories.inbound(channel, text, contact_id="cust-1", name="Sanne de Vries")
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def bot_lines(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, author_type="bot", kind="message")
        .order_by("created_at", "pk")
        .values_list("text", flat=True)
    )


def test_taking_over_stops_the_bot_and_says_who_did(talking, shop, agent, captured_events):
    session = BotSession.objects.get(conversation=talking)
    assert (session.state, session.step, session.waiting) == (SessionState.ACTIVE, "need", True)

    stopped = services.take_over(talking, agent)

    session.refresh_from_db()
    assert stopped.pk == session.pk
    assert session.state == SessionState.STOPPED
    assert session.ended_at is not None and session.timeout_at is None
    line = Message.objects.get(
        conversation=talking, kind=MessageKind.ACTIVITY, text="bot_taken_over"
    )
    assert line.author_member_id == agent.pk
    assert line.data["flow_name"] == "Ferry booking helper" and line.data["step"] == "need"
    assert timeline.entry(line).sentence == "Abe Agent took over from bot “Ferry booking helper”"
    updated = [e for e in captured_events if e.name == "conversation.updated"]
    assert [(e.conversation_id, e.changes, e.actor.id) for e in updated] == [
        (talking.pk, {"bot_session": "stopped"}, agent.pk)
    ]

    says(shop, "Refund")  # the customer answers the bot's question: the bot stays quiet
    assert bot_lines(talking) == ["Hi! I am the ferry helper.", "What do you need?"]
    assert not BotSession.objects.filter(conversation=talking, state=SessionState.ACTIVE).exists()


def test_a_second_take_over_does_nothing(talking, agent, owner):
    assert services.take_over(talking, agent) is not None
    assert services.take_over(talking, owner) is None
    assert Message.objects.filter(conversation=talking, text="bot_taken_over").count() == 1


def test_with_no_bot_talking_nothing_happens(shop, agent):
    conversation = says(shop, "Hello")  # no flow in this workspace
    assert services.take_over(conversation, agent) is None
    assert not Message.objects.filter(conversation=conversation, kind=MessageKind.ACTIVITY).exists()


def test_a_member_of_another_workspace_cannot_take_over(talking):
    stranger = factories.owner_of(factories.workspace("other"))
    with pytest.raises(InvalidChange):
        services.take_over(talking, stranger)
    assert BotSession.objects.get(conversation=talking).state == SessionState.ACTIVE


_seen: list = []


def remember(event) -> None:
    _seen.append(event)


@pytest.fixture
def captured_events(settings):
    """The events delivered after commit, through the real subscriber list."""
    from loket import events

    settings.LOKET_EVENT_SUBSCRIBERS = [*settings.LOKET_EVENT_SUBSCRIBERS, f"{__name__}.remember"]
    events._subscribers.cache_clear()  # the list is read once per process
    _seen.clear()
    yield _seen
    events._subscribers.cache_clear()


def test_after_a_take_over_a_keyword_does_not_start_the_bot_again(shop, workspace, agent):
    flow = services.create_flow(
        workspace, name="Ferry booking helper", draft=FLOW, trigger="keyword", keywords=["ferry"]
    )
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    conversation = says(shop, "A question about my ferry")
    assert bot_lines(conversation) == ["Hi! I am the ferry helper.", "What do you need?"]
    services.take_over(conversation, agent)
    says(shop, "ferry ferry ferry")  # before the agent has written anything
    assert bot_lines(conversation) == ["Hi! I am the ferry helper.", "What do you need?"]
    assert not BotSession.objects.filter(
        conversation=conversation, state=SessionState.ACTIVE
    ).exists()
