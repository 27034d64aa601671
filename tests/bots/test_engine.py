"""The flow bot's engine on every step kind: messages, choices (answered by tap, number or
title), validated input with retries and a max-attempts path, conditions, setting fields, HTTP
lookups (success, failure, timeout) against a local server, FAQ, hand-off with its note, close,
hand-off words, an agent taking over, timeouts on a controllable clock, a restart in the middle,
a retried job, versions, and what starts a flow."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time

import pytest
from django.utils import timezone

from loket.automation import clock
from loket.bots import definition as flow_definition
from loket.bots import engine, services
from loket.bots.models import BotSession, SessionState
from loket.inbox.models import Conversation, Message, MessageKind
from loket.inbox.services import outbound
from loket.tenancy.services import create_team
from tests import factories
from tests.connectors.providers import run_tasks


class Bookings(http.server.BaseHTTPRequestHandler):
    """The business's own API: GET /bookings/<code>."""

    delay = 0.0
    seen: list = []

    def do_GET(self):
        type(self).seen.append((self.path, dict(self.headers)))
        time.sleep(type(self).delay)
        code = self.path.rsplit("/", 1)[-1]
        if code == "AB123456":
            body = json.dumps({"booking": {"departure": "14:30", "ship": "MS Texel"}}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bookings():
    Bookings.delay, Bookings.seen = 0.0, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bookings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def ferry_flow(api: str, team_id: int | None = None) -> dict:
    return {
        "start": "welcome",
        "language": "en",
        "timeout": {"minutes": 30, "next": "still_there"},
        "steps": {
            "welcome": {
                "type": "message",
                "next": "need",
                "text": {
                    "en": "Hi {{contact.first_name|there}}! I am the ferry helper.",
                    "nl": "Hoi {{contact.first_name|daar}}! Ik ben de veerhulp.",
                },
            },
            "need": {
                "type": "choice",
                "save_as": "need",
                "fail": "human",
                "text": {"en": "What do you need?", "nl": "Waarmee kan ik helpen?"},
                "retry_text": "Please pick one of the options.",
                "options": [
                    {
                        "id": "change",
                        "title": {"en": "Change booking", "nl": "Boeking wijzigen"},
                        "next": "code",
                    },
                    {
                        "id": "refund",
                        "title": {"en": "Refund", "nl": "Terugbetaling"},
                        "next": "code",
                    },
                    {
                        "id": "other",
                        "title": {"en": "Something else", "nl": "Iets anders"},
                        "next": "human",
                    },
                ],
            },
            "code": {
                "type": "input",
                "validate": "regex",
                "pattern": r"^[A-Z]{2}\d{6}$",
                "save_as": "booking_code",
                "max_attempts": 3,
                "next": "lookup",
                "fail": "human",
                "text": "What is your booking code? (two letters, six digits)",
                "retry_text": "That is not a booking code, like AB123456. Try again?",
            },
            "lookup": {
                "type": "http",
                "url": api + "/bookings/{{booking_code}}",
                "timeout": 2,
                "headers": {"X-Asked-By": "{{contact.first_name}}"},
                "map": {"departure": "booking.departure", "ship": "booking.ship"},
                "next": "answer",
                "fail": "not_found",
            },
            "answer": {
                "type": "message",
                "next": "more",
                "text": "Booking {{booking_code}}: the {{ship}} leaves at {{departure}}.",
            },
            "not_found": {
                "type": "message",
                "next": "human",
                "text": "I could not find booking {{booking_code}}.",
            },
            "more": {
                "type": "choice",
                "save_as": "more",
                "text": "Anything else?",
                "options": [
                    {"id": "no", "title": "No, thanks", "next": "bye"},
                    {"id": "yes", "title": "Talk to a person", "next": "human"},
                ],
            },
            "bye": {"type": "close", "text": "Have a good crossing!"},
            "human": {
                "type": "handoff",
                "team_id": team_id,
                "text": "I will get a colleague for you.",
            },
            "still_there": {"type": "message", "text": "Are you still there?", "next": "human"},
        },
    }


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


def published(workspace, draft, **settings):
    flow = services.create_flow(
        workspace, name=settings.pop("name", "Ferry helper"), draft=draft, **settings
    )
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    return flow


def says(channel, text, *, contact_id="cust-1", name="Sanne de Vries", **kw):
    result = factories.inbound(channel, text, contact_id=contact_id, name=name, **kw)
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def bot_lines(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, author_type="bot", kind="message")
        .order_by("created_at", "pk")
        .values_list("text", flat=True)
    )


def session_of(conversation) -> BotSession:
    return BotSession.objects.filter(conversation=conversation).latest("started_at")


def test_the_ferry_helper_from_greeting_to_closing(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    assert bot_lines(conversation) == [
        "Hi Sanne! I am the ferry helper.",
        "What do you need?",
    ]
    ask = Message.objects.filter(conversation=conversation, author_type="bot").last()
    assert [i["id"] for i in ask.data["choices"]["items"]] == ["change", "refund", "other"]

    says(shop, "2")  # by number
    assert session_of(conversation).variables["need"] == "refund"
    says(shop, "my code is abc")  # wrong: asked again
    says(shop, "ab 123456")  # spaces and small letters are forgiven
    lines = bot_lines(conversation)
    assert lines[-4:] == [
        "What is your booking code? (two letters, six digits)",
        "That is not a booking code, like AB123456. Try again?",
        "Booking AB123456: the MS Texel leaves at 14:30.",
        "Anything else?",
    ]
    assert Bookings.seen[0][0] == "/bookings/AB123456"
    assert Bookings.seen[0][1]["X-Asked-By"] == "Sanne"
    says(shop, "no, thanks")  # by title, any case
    conversation.refresh_from_db()
    assert bot_lines(conversation)[-1] == "Have a good crossing!"
    assert conversation.status == "resolved"
    session = session_of(conversation)
    assert session.state == SessionState.COMPLETED
    assert session.path == ["welcome", "need", "code", "lookup", "answer", "more", "bye"]


def test_dutch_customers_get_the_dutch_texts(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    first = factories.inbound(shop, "Hallo", contact_id="nl-1", name="Daan Jansen")
    Conversation.objects.filter(pk=first.conversation_id).update(language="nl")
    run_tasks()
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert bot_lines(conversation)[:2] == [
        "Hoi Daan! Ik ben de veerhulp.",
        "Waarmee kan ik helpen?",
    ]
    says(shop, "boeking wijzigen", contact_id="nl-1")
    assert session_of(conversation).variables["need_title"] == "Boeking wijzigen"


def test_a_lookup_that_finds_nothing_fails_over_and_hands_off_with_a_note(
    shop, workspace, bookings
):
    team = create_team(workspace, "Ferry desk")
    published(workspace, ferry_flow(bookings, team.pk))
    conversation = says(shop, "Hello")
    says(shop, "change booking")
    says(shop, "ZZ999999")
    conversation.refresh_from_db()
    assert bot_lines(conversation)[-2:] == [
        "I could not find booking ZZ999999.",
        "I will get a colleague for you.",
    ]
    assert conversation.team_id == team.pk
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert "Bot “Ferry helper” handed this conversation over." in note.text
    assert "- need: change" in note.text and "- booking_code: ZZ999999" in note.text
    assert "Lookup failed: HTTP 404" in note.text
    assert "welcome → need → code → lookup → not_found → human" in note.text
    assert session_of(conversation).state == SessionState.HANDED_OFF
    says(shop, "hello?")  # the bot has handed off: it stays quiet
    assert bot_lines(conversation)[-1] == "I will get a colleague for you."


def test_a_lookup_that_times_out_takes_the_failure_path(shop, workspace, bookings):
    Bookings.delay = 3.0  # the step allows 2 seconds
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    says(shop, "refund")
    says(shop, "AB123456")
    assert "timed out" in session_of(conversation).variables["http_error"].lower()
    assert bot_lines(conversation)[-2] == "I could not find booking AB123456."


def test_three_wrong_answers_take_the_max_attempts_path(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    for answer in ("banana", "7", "what?"):
        says(shop, answer)
    lines = bot_lines(conversation)
    assert lines.count("Please pick one of the options.") == 2
    assert lines[-1] == "I will get a colleague for you."
    assert session_of(conversation).state == SessionState.HANDED_OFF


@pytest.mark.parametrize("word", ["agent", "Medewerker please", "HUMAN!"])
def test_the_customer_can_always_ask_for_a_person(shop, workspace, bookings, word):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    says(shop, word)
    assert session_of(conversation).state == SessionState.HANDED_OFF
    assert Message.objects.filter(conversation=conversation, kind=MessageKind.NOTE).exists()
    # through the flow's own hand-off step: its words and its team
    assert bot_lines(conversation)[-1] == "I will get a colleague for you."


def test_a_tapped_option_is_never_taken_for_a_hand_off_word(shop, workspace, bookings):
    draft = ferry_flow(bookings)
    draft["steps"]["need"]["options"][2]["title"] = "Talk to an agent"
    draft["steps"]["need"]["options"][2]["next"] = "code"
    published(workspace, draft)
    conversation = says(shop, "Hello")
    says(shop, "Talk to an agent", data={"choice": {"id": "other", "title": "Talk to an agent"}})
    session = session_of(conversation)
    assert session.state == SessionState.ACTIVE and session.variables["need"] == "other"


def test_an_agent_reply_takes_over(shop, workspace, bookings, agent):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    outbound.reply(conversation, author=agent, text="Hi, Anna here, I can help.")
    run_tasks()
    assert session_of(conversation).state == SessionState.STOPPED
    says(shop, "refund")
    assert bot_lines(conversation)[-1] == "What do you need?"  # the bot said nothing more


def test_a_quiet_customer_follows_the_timeout_path_then_is_dropped(shop, workspace, bookings):
    flow = ferry_flow(bookings)
    published(workspace, flow)
    conversation = says(shop, "Hello")
    session = session_of(conversation)
    later = session.timeout_at + dt.timedelta(seconds=1)
    with clock.frozen(later - dt.timedelta(minutes=1)):
        assert engine.run_timeouts() == 0
    with clock.frozen(later):
        assert engine.run_timeouts() == 1
    # "Are you still there?" then the hand-off step
    assert bot_lines(conversation)[-2:] == [
        "Are you still there?",
        "I will get a colleague for you.",
    ]


def test_without_a_timeout_path_a_quiet_customer_is_dropped(shop, workspace, bookings, settings):
    flow = ferry_flow(bookings)
    del flow["timeout"]
    published(workspace, flow)
    conversation = says(shop, "Hello")
    session = session_of(conversation)
    assert session.timeout_at is not None
    with clock.frozen(session.timeout_at + dt.timedelta(seconds=1)):
        engine.run_timeouts()
    session.refresh_from_db()
    assert session.state == SessionState.DROPPED and session.step == "need"
    numbers = services.metrics(session.flow)
    assert numbers["started"] == 1 and numbers["dropped"] == 1
    assert numbers["steps"]["need"] == {"reached": 1, "dropped": 1}


def test_a_restart_in_the_middle_resumes_and_a_retried_job_does_not_answer_twice(
    shop, workspace, bookings
):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    says(shop, "change booking")
    engine._enabled.clear()  # a new process: nothing in memory but the database
    message = factories.inbound(shop, "AB123456", contact_id="cust-1", name="Sanne de Vries")
    session = engine.turn(message.message_id)  # the job, run by a fresh worker
    # It stopped before the lookup (no transaction is held while the business's API answers)
    # and left that to its own job.
    assert session.fetching and session.step == "lookup"
    count = len(bot_lines(conversation))
    assert engine.turn(message.message_id) == session  # the same message again: handled already
    assert len(bot_lines(conversation)) == count
    run_tasks()  # the lookup's job, then the queued turn job for the same message
    lines = bot_lines(conversation)
    assert lines[count:] == ["Booking AB123456: the MS Texel leaves at 14:30.", "Anything else?"]
    assert not session_of(conversation).fetching


def test_a_lookup_runs_outside_the_turns_transaction_and_a_lost_job_is_picked_up(
    shop, workspace, bookings, monkeypatch
):
    from django.db import connection

    from loket.bots.models import BotSession

    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    says(shop, "change booking")
    message = factories.inbound(shop, "AB123456", contact_id="cust-1", name="Sanne de Vries")
    session = engine.turn(message.message_id)
    assert session.fetching
    depth = []
    real_lookup = engine._lookup

    def lookup_noting_the_transaction(turn, step):
        depth.append(len(connection.savepoint_ids))
        return real_lookup(turn, step)

    monkeypatch.setattr(engine, "_lookup", lookup_noting_the_transaction)
    # The worker that took the lookup's job died: nothing happens until the grace is over.
    assert engine.run_timeouts() == 0
    BotSession.objects.filter(pk=session.pk).update(timeout_at=timezone.now())
    assert engine.run_timeouts() == 1
    monkeypatch.undo()
    # The test's own transaction aside, no savepoint (atomic block) was open during the call.
    assert depth == [0]
    assert bot_lines(conversation)[-2:] == [
        "Booking AB123456: the MS Texel leaves at 14:30.",
        "Anything else?",
    ]
    assert engine.go_on_after_fetch(session.pk) is None  # moved on: its own job does nothing
    run_tasks()
    assert bot_lines(conversation).count("Anything else?") == 1


def test_a_new_version_leaves_running_conversations_on_theirs(shop, workspace, bookings):
    draft = ferry_flow(bookings)
    flow = published(workspace, draft)
    first = says(shop, "Hello")
    draft["steps"]["need"]["text"] = "How can I help?"
    services.update_flow(flow, draft=draft)
    services.publish(flow)
    second = says(shop, "Hello", contact_id="cust-2")
    assert bot_lines(second)[-1] == "How can I help?"
    says(shop, "3")  # first customer: "Something else" on version 1
    assert session_of(first).version.number == 1
    assert session_of(first).state == SessionState.HANDED_OFF


def test_conditions_set_and_faq(shop, workspace):
    draft = {
        "start": "route",
        "steps": {
            "route": {
                "type": "condition",
                "else": "faq",
                "branches": [
                    {
                        "if": {
                            "match": "all",
                            "conditions": [
                                {"field": "message.text", "operator": "contains", "value": "vip"}
                            ],
                        },
                        "next": "mark",
                    }
                ],
            },
            "mark": {
                "type": "set",
                "contact": {"tier": "gold"},
                "conversation": {"via": "bot"},
                "labels": ["vip"],
                "priority": 3,
                "next": "faq",
            },
            "faq": {
                "type": "faq",
                "text": "Ask me anything.",
                "next": "done",
                "miss": "sorry",
                "items": [
                    {
                        "question": "How much luggage can I take?",
                        "keywords": ["luggage", "bagage"],
                        "answer": "Two bags of up to 20 kg each.",
                    },
                    {"question": "Can I bring my dog?", "answer": "Dogs travel free on a lead."},
                ],
            },
            "sorry": {"type": "message", "text": "I do not know that one."},
            "done": {
                "type": "condition",
                "else": None,
                "branches": [
                    {
                        "if": {
                            "match": "all",
                            "conditions": [
                                {"field": "variable", "key": "asked", "operator": "is_empty"}
                            ],
                        },
                        "next": None,
                    }
                ],
            },
        },
    }
    published(workspace, draft)
    vip = says(shop, "Hello, VIP here")
    assert vip.priority == 3
    assert sorted(vip.labels.values_list("name", flat=True)) == ["vip"]
    assert vip.contact.attributes["tier"] == "gold" and vip.custom_attributes["via"] == "bot"
    says(shop, "what about my bagage?")
    assert bot_lines(vip)[-1] == "Two bags of up to 20 kg each."
    other = says(shop, "hi", contact_id="cust-2")
    assert other.priority == 0
    says(shop, "can i bring my dog", contact_id="cust-2")
    assert bot_lines(other)[-1] == "Dogs travel free on a lead."
    third = says(shop, "hi", contact_id="cust-3")
    says(shop, "opening hours of the harbour office?", contact_id="cust-3")
    assert bot_lines(third)[-1] == "I do not know that one."


def test_what_starts_a_flow(shop, workspace, bookings, agent):
    other_channel = factories.api_channel(workspace, name="Other")
    published(
        workspace,
        ferry_flow(bookings),
        trigger="keyword",
        keywords=["ferry", "veerboot"],
        channel_ids=[shop.pk],
    )
    quiet = says(shop, "Hello")
    assert bot_lines(quiet) == []
    says(shop, "about my ferry")
    assert bot_lines(quiet)[-1] == "What do you need?"
    elsewhere = says(other_channel, "ferry question", contact_id="cust-9")
    assert bot_lines(elsewhere) == []
    human = says(shop, "Hi", contact_id="cust-7")
    outbound.reply(human, author=agent, text="Hello!")
    says(shop, "ferry?", contact_id="cust-7")
    assert bot_lines(human) == []  # a person is already talking with this customer


def test_an_auto_assigned_conversation_waits_for_the_bot_then_is_assigned(
    shop, workspace, bookings, agent
):
    from loket.automation.assignment import configure_team
    from loket.tenancy.models import Availability

    team = create_team(workspace, "Ferry desk", [agent])
    shop.default_team = team
    shop.save()
    agent.availability = Availability.ONLINE
    agent.save()
    configure_team(team, auto_assign="balanced")
    published(workspace, ferry_flow(bookings, team.pk))
    conversation = says(shop, "Hello")
    conversation.refresh_from_db()
    assert conversation.assignee_id is None  # the bot talks first
    assert not Message.objects.filter(conversation=conversation, data__action="assigned").exists()
    says(shop, "something else")  # → hand-off
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent.pk


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d.update(start="nowhere"), "first step “nowhere” is not a step"),
        (lambda d: d["steps"]["need"].update(type="teleport"), "unknown type “teleport”"),
        (lambda d: d["steps"]["code"].update(pattern="(["), "pattern is not valid"),
        (lambda d: d["steps"]["answer"].update(next="void"), "goes to “void”"),
        (lambda d: d["steps"]["need"]["options"].pop(), None),
        (lambda d: d["steps"]["lookup"].update(url="ftp://x"), "URL starts with https://"),
        (lambda d: d["steps"]["need"].update(colour="red"), "choice step has no “colour”"),
    ],
)
def test_a_definition_that_cannot_run_is_refused(change, error):
    draft = ferry_flow("https://api.example")
    change(draft)
    if error is None:  # two options are enough
        flow_definition.clean(draft)
        return
    with pytest.raises(flow_definition.InvalidFlow, match=error):
        flow_definition.clean(draft)


def test_unreachable_steps_are_warned_about():
    draft = ferry_flow("https://api.example")
    draft["steps"]["orphan"] = {"type": "message", "text": "nobody sees me"}
    _clean, warnings = flow_definition.clean(draft)
    assert warnings == ["step “orphan”: nothing leads to this step"]


def test_timeouts_use_the_database_clock(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    moment = timezone.now() + dt.timedelta(days=1)
    with clock.frozen(moment):
        conversation = says(shop, "Hello")
    assert session_of(conversation).timeout_at == moment + dt.timedelta(minutes=30)


def test_the_test_panel_talks_with_a_draft_and_leaves_no_trace(
    workspace, bookings, transactional_db
):
    draft = ferry_flow(bookings)
    counts = (Conversation.objects.count(), Message.objects.count(), BotSession.objects.count())
    first = engine.simulate(workspace, draft)
    assert [r["text"] for r in first["replies"]] == [
        "Hi Test! I am the ferry helper.",
        "What do you need?",
    ]
    assert [c["id"] for c in first["replies"][1]["choices"]] == ["change", "refund", "other"]
    assert first["done"] == "" and first["state"]["step"] == "need"
    second = engine.simulate(workspace, draft, state=first["state"], choice_id="refund")
    assert [r["text"] for r in second["replies"]][-1].startswith("What is your booking code?")
    third = engine.simulate(workspace, draft, state=second["state"], text="AB123456")
    assert "the MS Texel leaves at 14:30" in " ".join(r["text"] for r in third["replies"])
    fourth = engine.simulate(workspace, draft, state=third["state"], text="medewerker")
    assert fourth["done"] == "handed_off"
    assert any(r["note"] and "booking_code: AB123456" in r["text"] for r in fourth["replies"])
    dutch = engine.simulate(workspace, draft, language="nl", contact_name="Daan Jansen")
    assert dutch["replies"][0]["text"] == "Hoi Daan! Ik ben de veerhulp."
    after = (Conversation.objects.count(), Message.objects.count(), BotSession.objects.count())
    assert after == counts


OUT_OF_OFFICE = {"auto_submitted": True, "email": {"auto_reason": "Auto-Submitted: auto-replied"}}


def test_automatic_mail_starts_no_bot_and_a_persons_message_does(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "I am out of office until Monday.", data=dict(OUT_OF_OFFICE))
    assert bot_lines(conversation) == []
    assert not BotSession.objects.filter(conversation=conversation).exists()
    # The person's first own message is the conversation's first: the bot greets.
    says(shop, "Hello, back now. About my booking?")
    assert bot_lines(conversation) == ["Hi Sanne! I am the ferry helper.", "What do you need?"]
    # A WhatsApp system message (a changed number) starts no bot either.
    system = {"provider": {"system": {"type": "customer_changed_number"}}}
    other = says(shop, "Bram changed his number", contact_id="cust-2", data=system)
    assert bot_lines(other) == [] and not BotSession.objects.filter(conversation=other).exists()


def test_automatic_mail_is_no_answer_to_the_bots_question(shop, workspace, bookings):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    assert bot_lines(conversation)[-1] == "What do you need?"
    says(shop, "Automatic reply: I am away", data=dict(OUT_OF_OFFICE))
    session = session_of(conversation)
    assert session.step == "need" and "need" not in session.variables
    assert bot_lines(conversation)[-1] == "What do you need?"  # no retry text either
    # An out-of-office and the person's answer handled in one turn: only the answer counts.
    factories.inbound(shop, "Out of office", contact_id="cust-1", data=dict(OUT_OF_OFFICE))
    answer = factories.inbound(shop, "2", contact_id="cust-1", name="Sanne de Vries")
    engine.turn(answer.message_id)
    run_tasks()
    assert session_of(conversation).variables["need"] == "refund"
    assert bot_lines(conversation)[-1] == "What is your booking code? (two letters, six digits)"


def test_a_rule_starts_no_bot_for_automatic_mail(shop, workspace, bookings):
    from loket.automation.models import RuleRun
    from loket.automation.rules import service as rule_service

    flow = published(workspace, ferry_flow(bookings), trigger="manual")
    rule_service.create_rule(
        workspace,
        name="Everything to the bot",
        trigger="message_received",
        actions=[{"type": "start_bot", "flow_id": flow.pk}],
    )
    ooo = says(shop, "Out of office", data=dict(OUT_OF_OFFICE))
    assert bot_lines(ooo) == [] and not BotSession.objects.filter(conversation=ooo).exists()
    [run] = RuleRun.objects.filter(conversation=ooo)
    assert run.done[0]["type"] == "start_bot" and run.done[0]["ok"] is False
    person = says(shop, "Hello", contact_id="cust-2")
    assert bot_lines(person)[-1] == "What do you need?"


def test_a_rule_starts_a_manual_flow_and_the_timeline_names_the_bot(shop, workspace, bookings):
    from django.test import Client
    from django.urls import reverse

    from loket.automation.rules import service as rule_service
    from tests.factories import owner_of

    flow = published(workspace, ferry_flow(bookings), trigger="manual")
    conversation = says(shop, "Hello")
    assert bot_lines(conversation) == []  # manual: nothing starts it on its own
    rule_service.create_rule(
        workspace,
        name="Ferry questions to the bot",
        trigger="message_received",
        conditions={
            "match": "all",
            "conditions": [{"field": "message.text", "operator": "contains", "value": "ferry"}],
        },
        actions=[{"type": "start_bot", "flow_id": flow.pk}],
    )
    says(shop, "A ferry question")
    assert bot_lines(conversation)[-1] == "What do you need?"
    client = Client()
    client.force_login(owner_of(workspace).user)
    html = client.get(reverse("inbox:pane", args=[workspace.slug, conversation.number])).content
    assert "Bot “Ferry helper”".encode() in html


def test_two_quick_messages_are_answered_in_order_whichever_job_runs_first(
    shop, workspace, bookings
):
    published(workspace, ferry_flow(bookings))
    conversation = says(shop, "Hello")
    first = factories.inbound(shop, "refund", contact_id="cust-1", name="Sanne de Vries")
    second = factories.inbound(shop, "AB123456", contact_id="cust-1", name="Sanne de Vries")
    engine.turn(second.message_id)  # the later message's job first
    engine.turn(first.message_id)  # then the earlier one's: already handled with it
    run_tasks()
    session = session_of(conversation)
    assert session.variables["need"] == "refund"
    assert session.variables["booking_code"] == "AB123456"
    assert bot_lines(conversation)[-1] == "Anything else?"


def test_the_editors_order_of_steps_is_kept_and_checked(workspace):
    draft = ferry_flow("https://api.example")
    draft["order"] = list(reversed(draft["steps"]))
    flow = services.create_flow(workspace, name="Ordered", draft=draft)
    flow.refresh_from_db()  # PostgreSQL sorts an object's keys; a list keeps its order
    assert flow.draft["order"] == list(reversed(ferry_flow("x")["steps"]))
    draft["order"] = ["welcome", "nowhere"]
    with pytest.raises(flow_definition.InvalidFlow, match="order lists step ids"):
        flow_definition.clean(draft)


class Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/timetable.png"):
            body = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
        else:
            body = b"gone"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def files():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_message_step_sends_a_file_and_falls_back_to_its_link(shop, workspace, files):
    from loket.inbox.models import Attachment

    draft = {
        "start": "timetable",
        "steps": {
            "timetable": {
                "type": "message",
                "text": "Here is the timetable.",
                "next": "missing",
                "media": {"url": files + "/timetable.png", "filename": "Timetable.png"},
            },
            "missing": {"type": "message", "media": {"url": files + "/old.pdf"}},
        },
    }
    published(workspace, draft)
    conversation = says(shop, "Hello")
    sent = Message.objects.filter(conversation=conversation, author_type="bot").order_by("pk")
    first, second = list(sent)
    assert first.text == "Here is the timetable."
    [attachment] = Attachment.objects.filter(message=first)
    assert attachment.filename == "Timetable.png" and attachment.content_type == "image/png"
    assert second.text == files + "/old.pdf"  # could not be fetched: the link instead
    assert not Attachment.objects.filter(message=second).exists()
    assert session_of(conversation).variables["media_error"] == "HTTP 404"


def test_a_message_needs_a_text_or_media():
    with pytest.raises(flow_definition.InvalidFlow, match="needs a text or media"):
        flow_definition.clean({"start": "a", "steps": {"a": {"type": "message"}}})
    with pytest.raises(flow_definition.InvalidFlow, match="media is a link"):
        flow_definition.clean(
            {"start": "a", "steps": {"a": {"type": "message", "media": {"url": "file:///etc"}}}}
        )


def test_problems_are_said_in_the_readers_language_at_their_step():
    from django.utils import translation

    draft = ferry_flow("https://api.example")
    draft["steps"]["answer"]["next"] = "void"
    draft["steps"]["code"].update(max_attempts=0)
    with pytest.raises(flow_definition.InvalidFlow) as caught:
        flow_definition.clean(draft)
    by_step = {(problem.step, problem.text()) for problem in caught.value.errors}
    assert ("answer", "goes to “void”, which is not a step") in by_step
    assert ("code", "the number of attempts is 1 to 10") in by_step
    with translation.override("nl"):
        assert "stap “answer”: gaat naar “void”, maar dat is geen stap" in str(caught.value)
        assert "het aantal pogingen is 1 tot 10" in [p.text() for p in caught.value.errors]
    assert "step “answer”: goes to “void”" in str(caught.value)  # read again, in English
