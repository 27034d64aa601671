"""The demo workspace's "Ferry booking helper": the demo look-up endpoint, what ``loket demo``
seeds (and keeps on a second run), and whole conversations in English and Dutch against the
endpoint on a live server, through the SSRF-guarded client with private addresses refused."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from django.core.management import call_command

from loket import http
from loket.automation import clock
from loket.bots import engine
from loket.bots.models import BotSession, Flow, SessionState
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Channel, Conversation, Message, MessageKind
from loket.inbox.services.ingest import receive
from loket.tenancy.models import Team
from tests.connectors.providers import run_tasks

URL = "/w/demo/demo/ferry/bookings/{}"
_seq = itertools.count(1)


def demo(*args) -> str:
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_on(settings):
    settings.LOKET_DEMO_ENDPOINTS = True
    return settings


def test_the_endpoint_answers_bookings_of_the_fixed_table(db, client, demo_on):
    demo()
    answer = client.get(URL.format("FB123456"))
    assert answer.status_code == 200
    assert answer.json() == {
        "booking": {
            "code": "FB123456",
            "route": "Den Helder → Texel",
            "departure": "14:30",
            "ship": "MS Texel",
            "date": "2026-06-12",
            "passengers": 2,
        }
    }
    missing = client.get(URL.format("ZZ999999"))
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    assert client.post(URL.format("FB123456")).status_code == 405


def test_the_endpoint_is_not_there_when_off_or_outside_the_demo(db, client, settings):
    settings.LOKET_DEMO_ENDPOINTS = True
    assert client.get(URL.format("FB123456")).status_code == 404  # no demo workspace yet
    demo()
    assert client.get("/w/acme/demo/ferry/bookings/FB123456").status_code == 404
    settings.LOKET_DEMO_ENDPOINTS = False
    assert client.get(URL.format("FB123456")).status_code == 404


def test_demo_seeds_the_bot_on_a_live_chat_once(db, settings):
    settings.LOKET_PUBLIC_URL = "http://127.0.0.1:8000"
    out = demo()
    assert "'Ferry booking helper' answers new chats on 'Website chat'" in out
    website = Channel.objects.get(workspace__slug="demo", kind="livechat")
    assert f"/widget/{website.uuid}.js" in out
    flow = Flow.objects.get(workspace__slug="demo")
    assert flow.enabled and flow.published is not None
    assert [c.pk for c in flow.channels.all()] == [website.pk]
    steps = flow.published.definition["steps"]
    assert steps["lookup"]["url"] == (
        "http://127.0.0.1:8000/w/demo/demo/ferry/bookings/{{booking_code}}"
    )
    assert steps["human"]["team_id"] == Team.objects.get(workspace__slug="demo").pk
    assert steps["welcome"]["text"]["nl"].startswith("Hoi")

    demo("--base-url", "http://other.example")  # kept as it is: no second flow, no new version
    assert Flow.objects.filter(workspace__slug="demo").count() == 1
    assert Channel.objects.filter(workspace__slug="demo", kind="livechat").count() == 1
    assert Flow.objects.get(pk=flow.pk).published_id == flow.published_id
    # The example knowledge base and its help center, seeded once.
    assert "Help center: http://127.0.0.1:8000/help/demo/ (45 articles" in out
    from loket.knowledge.models import Article, HelpCenter

    assert Article.objects.filter(workspace__slug="demo").count() == 45
    assert HelpCenter.objects.get(workspace__slug="demo").enabled


def test_the_guard_lets_only_the_own_origin_through_while_demo_endpoints_are_on(settings):
    settings.LOKET_PUBLIC_URL = "https://support.example.com"
    settings.LOKET_DEMO_ENDPOINTS = False
    assert http.own_origins() == frozenset()
    settings.LOKET_DEMO_ENDPOINTS = True
    assert http.own_origins() == {("support.example.com", 443)}
    settings.LOKET_PUBLIC_URL = "http://127.0.0.1:8000"
    assert http.own_origins() == {("127.0.0.1", 8000)}


# -- whole conversations on the seeded demo, against a live server -------------------------------
@pytest.fixture
def seeded(live_server, settings):
    """``loket demo`` with the server at live_server; private addresses refused by the guard,
    so the look-up goes through only because it is Loket's own origin."""
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    settings.LOKET_DEMO_ENDPOINTS = True
    settings.LOKET_PUBLIC_URL = live_server.url
    demo()
    return Channel.objects.get(workspace__slug="demo", kind="livechat")


def says(channel, text, *, visitor="v-1", name="Sanne de Vries", locale="en", choice=None):
    result = receive(
        channel,
        InboundMessage(
            external_id=f"ferry-{next(_seq)}",
            contact=InboundContact(visitor, name=name, locale=locale),
            text=text,
            data={"choice": choice} if choice else {},
        ),
    )
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def bot_lines(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, author_type="bot", kind="message")
        .order_by("pk")
        .values_list("text", flat=True)
    )


def test_change_booking_wrong_code_right_code_departure_then_a_person(seeded):
    conversation = says(seeded, "Hello")
    lines = bot_lines(conversation)
    assert lines[0].startswith("Hi Sanne! I'm the ferry booking helper")
    assert lines[1].startswith("What can I help you with?")
    question = Message.objects.filter(conversation=conversation, author_type="bot").last()
    assert [i["id"] for i in question.data["choices"]["items"]] == ["change", "refund", "other"]

    says(seeded, "Change booking", choice={"id": "change", "title": "Change booking"})
    says(seeded, "my code is 12")
    says(seeded, "fb 123456")
    lines = bot_lines(conversation)
    assert lines[-4].startswith("What is your booking code?")
    assert lines[-3].startswith("That doesn't look like a booking code")
    assert lines[-2] == (
        "I found booking FB123456: Den Helder → Texel on 2026-06-12. The MS Texel departs at 14:30."
    )
    assert lines[-1].startswith("Shall I pass this on to a colleague")

    says(seeded, "Yes, please")
    conversation.refresh_from_db()
    assert bot_lines(conversation)[-1].startswith("I'm passing you to a colleague")
    assert conversation.team.name == "Support"
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert "Bot “Ferry booking helper” handed this conversation over." in note.text
    assert "- need: change" in note.text
    assert "- booking_code: FB123456" in note.text
    assert "- departure: 14:30" in note.text
    session = BotSession.objects.get(conversation=conversation)
    assert session.state == SessionState.HANDED_OFF
    assert session.path == ["welcome", "need", "code", "lookup", "answer", "more", "human"]


def test_an_unknown_booking_goes_to_a_colleague(seeded):
    conversation = says(seeded, "Hi", visitor="v-2")
    says(seeded, "refund", visitor="v-2")
    says(seeded, "TX999999", visitor="v-2")
    assert bot_lines(conversation)[-2:] == [
        "I couldn't find booking TX999999. A colleague will look into it.",
        "I'm passing you to a colleague, who can see what you told me. One moment please.",
    ]
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert "Lookup failed: HTTP 404" in note.text


def test_dutch_visitors_get_dutch_and_the_faq_answers(seeded):
    conversation = says(seeded, "Hallo", visitor="v-nl", name="Daan Jansen", locale="nl-NL")
    lines = bot_lines(conversation)
    assert lines[0].startswith("Hoi Daan! Ik ben de boekingshulp")
    assert lines[1].startswith("Waarmee kan ik je helpen?")
    says(seeded, "3", visitor="v-nl", locale="nl-NL")  # by number: "Iets anders"
    says(seeded, "Mag mijn hond mee op de boot?", visitor="v-nl", locale="nl-NL")
    lines = bot_lines(conversation)
    # Answered from the demo's knowledge base (its help center is on): the Dutch article's
    # passage, its title and its link.
    answer = lines[-2]
    assert "hond" in answer.lower()
    assert "/help/demo/nl/a/" in answer
    assert lines[-1] == "Heb ik je vraag zo beantwoord?"
    says(seeded, "ja, bedankt", visitor="v-nl", locale="nl-NL")
    conversation.refresh_from_db()
    assert bot_lines(conversation)[-1] == "Goede overtocht!"
    assert conversation.status == "resolved"


def test_without_demo_endpoints_the_guard_refuses_the_loopback_look_up(seeded, settings):
    settings.LOKET_DEMO_ENDPOINTS = False
    conversation = says(seeded, "Hi", visitor="v-3")
    says(seeded, "change booking", visitor="v-3")
    says(seeded, "FB123456", visitor="v-3")
    session = BotSession.objects.get(conversation=conversation)
    assert "private or reserved address" in session.variables["http_error"]
    assert session.state == SessionState.HANDED_OFF


def test_a_quiet_visitor_gets_the_timeout_path_to_a_colleague(seeded):
    conversation = says(seeded, "Hi", visitor="v-4")
    says(seeded, "change booking", visitor="v-4")
    session = BotSession.objects.get(conversation=conversation)
    assert session.step == "code" and session.waiting
    with clock.frozen(session.timeout_at + dt.timedelta(seconds=1)):
        assert engine.run_timeouts() == 1
    run_tasks()
    assert bot_lines(conversation)[-2:] == [
        "Are you still there? I'll ask a colleague to get back to you.",
        "I'm passing you to a colleague, who can see what you told me. One moment please.",
    ]
    session.refresh_from_db()
    assert session.state == SessionState.HANDED_OFF
    assert session.path[-2:] == ["still_there", "human"]
