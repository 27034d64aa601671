"""The rules engine: every trigger, condition kind and action, the loop guards, the run log,
time-based rules on a controllable clock, trying a rule, and what saving refuses."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading

import pytest
from django.db import transaction
from django.utils import timezone

from loket import events
from loket.automation import clock
from loket.automation.canned import create_canned_reply
from loket.automation.models import Rule, RuleRun, RuleTrigger
from loket.automation.rules import engine, service
from loket.automation.rules.actions import webhook_secret
from loket.inbox.models import Conversation, ConversationStatus, Message, MessageKind, Priority
from loket.inbox.services import outbound
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.tenancy.services import create_team
from tests import factories
from tests.connectors.providers import run_tasks


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


@pytest.fixture
def billing(workspace):
    return create_team(workspace, "Billing")


def customer_writes(channel, text="Hi", *, contact_id="cust-1", name="Sanne de Vries", **kw):
    result = factories.inbound(channel, text, contact_id=contact_id, name=name, **kw)
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def rule(workspace, trigger=RuleTrigger.MESSAGE_RECEIVED, *, actions, conditions=None, **kw):
    return service.create_rule(
        workspace,
        name=kw.pop("name", "A rule"),
        trigger=trigger,
        actions=actions,
        conditions=conditions,
        **kw,
    )


def when(*conditions, match="all"):
    return {"match": match, "conditions": list(conditions)}


def text_has(word):
    return {"field": "message.text", "operator": "contains", "value": word}


def labels_of(conversation):
    return sorted(conversation.labels.values_list("name", flat=True))


# -- the example from the issue --
def test_refund_message_goes_to_billing_with_high_priority_and_a_canned_reply(
    shop, workspace, owner, billing
):
    canned = create_canned_reply(
        owner,
        shortcut="refund",
        title="Refunds",
        shared=True,
        body="Hi {{contact.first_name}}, we will look at your refund today.",
    )
    refunds = rule(
        workspace,
        name="Refunds",
        conditions=when(text_has("refund")),
        actions=[
            {"type": "assign_team", "team_id": billing.pk},
            {"type": "set_priority", "priority": Priority.HIGH},
            {"type": "send_canned_reply", "canned_reply_id": canned.pk},
        ],
    )
    conversation = customer_writes(shop, "I want a REFUND for order 1042")
    assert conversation.team_id == billing.pk
    assert conversation.priority == Priority.HIGH
    reply = Message.objects.get(conversation=conversation, kind="message", data__rule_id=refunds.pk)
    assert reply.text == "Hi Sanne, we will look at your refund today."
    assert reply.kind == MessageKind.MESSAGE and reply.author_type == "system"
    [run] = RuleRun.objects.filter(rule=refunds)
    assert run.outcome == "done" and [d["type"] for d in run.done] == [
        "assign_team",
        "set_priority",
        "send_canned_reply",
    ]
    assert run.matched[0]["field"] == "message.text" and "REFUND" in run.matched[0]["actual"]
    ran = Message.objects.get(conversation=conversation, data__action="rule_ran")
    assert ran.data["rule_name"] == "Refunds"
    team_line = Message.objects.get(conversation=conversation, data__action="team_changed")
    assert team_line.data["via"] == "rule" and team_line.data["rule_name"] == "Refunds"

    other = customer_writes(shop, "Where is my parcel?", contact_id="cust-2")
    assert other.team_id is None and not RuleRun.objects.filter(conversation=other).exists()


# -- triggers --
def test_conversation_created_runs_once_per_conversation(shop, workspace):
    rule(
        workspace,
        RuleTrigger.CONVERSATION_CREATED,
        actions=[{"type": "add_labels", "labels": ["new"]}],
    )
    conversation = customer_writes(shop, "one")
    customer_writes(shop, "two")
    assert labels_of(conversation) == ["new"]
    assert RuleRun.objects.filter(conversation=conversation).count() == 1


def test_message_sent_is_triggered_by_an_agent_reply_not_by_the_customer(shop, workspace, agent):
    rule(workspace, RuleTrigger.MESSAGE_SENT, actions=[{"type": "set_status", "status": "pending"}])
    conversation = customer_writes(shop, "Hello")
    assert conversation.status == ConversationStatus.OPEN
    outbound.reply(conversation, author=agent, text="Can you send the order number?")
    run_tasks()
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.PENDING


def test_conversation_updated_with_what_changed(shop, workspace, agent):
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        conditions=when(
            {"field": "update.changed", "operator": "includes_any", "value": ["priority"]},
            {"field": "conversation.priority", "operator": "at_least", "value": Priority.URGENT},
        ),
        actions=[{"type": "add_labels", "labels": ["escalated"]}],
    )
    conversation = customer_writes(shop, "Hello")
    update_conversation(conversation, actor=agent, status=ConversationStatus.PENDING)
    run_tasks()
    assert labels_of(conversation) == []
    update_conversation(conversation, actor=agent, priority=Priority.URGENT)
    run_tasks()
    assert labels_of(conversation) == ["escalated"]


@pytest.mark.parametrize("state", ["at_risk", "breached"])
def test_sla_events_trigger_their_rules(shop, workspace, agent, state):
    trigger = RuleTrigger.SLA_AT_RISK if state == "at_risk" else RuleTrigger.SLA_BREACHED
    rule(
        workspace,
        trigger,
        conditions=when({"field": "sla.target", "operator": "is", "value": ["first_response"]}),
        actions=[
            {"type": "set_priority", "priority": Priority.URGENT},
            {"type": "notify", "recipients": [agent.pk], "text": "SLA {{conversation.number}}"},
        ],
    )
    conversation = customer_writes(shop, "Hello")
    _emit(
        events.SlaChanged(
            workspace.pk,
            events.Actor.system(),
            conversation.pk,
            "resolution",
            state,
            timezone.now().isoformat(),
        )
    )
    run_tasks()
    conversation.refresh_from_db()
    assert conversation.priority == Priority.NONE  # another target: no match
    _emit(
        events.SlaChanged(
            workspace.pk,
            events.Actor.system(),
            conversation.pk,
            "first_response",
            state,
            timezone.now().isoformat(),
        )
    )
    run_tasks()
    conversation.refresh_from_db()
    assert conversation.priority == Priority.URGENT
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert f"(member:{agent.pk})" in note.text and f"SLA {conversation.number}" in note.text
    from loket.inbox.models import Notification

    assert Notification.objects.filter(recipient=agent, conversation=conversation).exists()


def _emit(event):
    with transaction.atomic():
        events.emit(event)


# -- time-based triggers on the database clock --
def test_unanswered_for_acts_once_per_wait_and_again_after_the_next_question(
    shop, workspace, agent
):
    urgent = rule(
        workspace,
        RuleTrigger.UNANSWERED_FOR,
        minutes=30,
        actions=[{"type": "add_labels", "labels": ["waiting"]}],
    )
    start = timezone.now()
    with clock.frozen(start):
        conversation = customer_writes(shop, "Hello?")
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=start)
    with clock.frozen(start + dt.timedelta(minutes=29)):
        assert engine.run_timed() == 0
    with clock.frozen(start + dt.timedelta(minutes=31)):
        assert engine.run_timed() == 1
        assert engine.run_timed() == 0  # once per episode
    assert labels_of(conversation) == ["waiting"]
    # answered, then a new question: a new episode
    update_conversation(conversation, actor=agent, labels=[])
    later = start + dt.timedelta(hours=2)
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=later)
    with clock.frozen(later + dt.timedelta(minutes=31)):
        assert engine.run_timed() == 1
    assert RuleRun.objects.filter(rule=urgent, conversation=conversation).count() == 2


def test_pending_for_and_no_customer_reply_for(shop, workspace, agent):
    nudge = rule(
        workspace,
        RuleTrigger.NO_CUSTOMER_REPLY_FOR,
        minutes=60 * 24,
        actions=[{"type": "add_note", "text": "No answer for a day"}],
    )
    close = rule(
        workspace,
        RuleTrigger.PENDING_FOR,
        minutes=60 * 24 * 3,
        actions=[{"type": "set_status", "status": "resolved"}],
    )
    conversation = customer_writes(shop, "Hello")
    outbound.reply(conversation, author=agent, text="Which order?")
    update_conversation(conversation, actor=agent, status=ConversationStatus.PENDING)
    now = timezone.now()
    with clock.frozen(now + dt.timedelta(hours=23)):
        assert engine.run_timed() == 0
    with clock.frozen(now + dt.timedelta(hours=25)):
        assert engine.run_timed() == 1
    assert RuleRun.objects.filter(rule=nudge).count() == 1
    with clock.frozen(now + dt.timedelta(days=3, minutes=1)):
        assert engine.run_timed() == 1
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    assert RuleRun.objects.filter(rule=close).count() == 1


def test_a_customer_reply_ends_the_no_reply_wait(shop, workspace, agent):
    rule(
        workspace,
        RuleTrigger.NO_CUSTOMER_REPLY_FOR,
        minutes=60,
        actions=[{"type": "add_labels", "labels": ["chase"]}],
    )
    conversation = customer_writes(shop, "Hello")
    outbound.reply(conversation, author=agent, text="Which order?")
    customer_writes(shop, "1042")
    with clock.frozen(timezone.now() + dt.timedelta(hours=2)):
        assert engine.run_timed() == 0


# -- conditions --
@pytest.mark.parametrize(
    ("condition", "text", "expected"),
    [
        ({"field": "message.text", "operator": "contains", "value": "Refund"}, "a refund?", True),
        ({"field": "message.text", "operator": "not_contains", "value": "refund"}, "hi", True),
        ({"field": "message.text", "operator": "equals", "value": "hi"}, " Hi ", True),
        (
            {"field": "message.text", "operator": "starts_with", "value": "urgent"},
            "URGENT: x",
            True,
        ),
        ({"field": "message.text", "operator": "ends_with", "value": "?"}, "where?", True),
        (
            {"field": "message.text", "operator": "matches", "value": r"order\s*#?\d{4}"},
            "my Order #1042",
            True,
        ),
        ({"field": "message.text", "operator": "matches", "value": r"^\d+$"}, "12a", False),
        ({"field": "message.is_first", "operator": "is_true"}, "x", True),
        ({"field": "message.has_attachments", "operator": "is_true"}, "x", False),
        ({"field": "contact.name", "operator": "starts_with", "value": "sanne"}, "x", True),
        ({"field": "contact.email", "operator": "is_empty"}, "x", True),
        ({"field": "contact.previous_conversations", "operator": "equals", "value": 0}, "x", True),
        ({"field": "conversation.status", "operator": "is", "value": ["open"]}, "x", True),
        ({"field": "conversation.priority", "operator": "at_most", "value": 0}, "x", True),
        ({"field": "conversation.assignee", "operator": "is_empty"}, "x", True),
        ({"field": "conversation.team", "operator": "is_not_empty"}, "x", False),
        (
            {"field": "conversation.labels", "operator": "includes_none", "value": ["vip"]},
            "x",
            True,
        ),
        ({"field": "business_hours.inside", "operator": "is_true"}, "x", True),
    ],
)
def test_each_condition_kind(shop, workspace, condition, text, expected):
    rule(workspace, conditions=when(condition), actions=[{"type": "add_labels", "labels": ["hit"]}])
    conversation = customer_writes(shop, text)
    assert (labels_of(conversation) == ["hit"]) is expected


def test_subject_language_phone_and_conversation_fields(shop, workspace):
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        conditions=when(
            {"field": "conversation.subject", "operator": "contains", "value": "invoice"},
            {"field": "conversation.language", "operator": "equals", "value": "nl"},
            {"field": "contact.phone", "operator": "starts_with", "value": "+31"},
            {
                "field": "conversation.custom",
                "key": "order",
                "operator": "matches",
                "value": r"^\d{4}$",
            },
        ),
        actions=[{"type": "add_labels", "labels": ["dutch-invoice"]}],
    )
    conversation = customer_writes(shop, "Hallo")
    contact = conversation.contact
    contact.phone = "+31612345678"
    contact.save()
    Conversation.objects.filter(pk=conversation.pk).update(
        subject="Invoice 2024-118", language="nl", custom_attributes={"order": "4411"}
    )
    update_conversation(conversation, actor=None, priority=Priority.LOW)
    run_tasks()
    assert labels_of(conversation) == ["dutch-invoice"]
    Conversation.objects.filter(pk=conversation.pk).update(custom_attributes={"order": "x1"})
    update_conversation(conversation, actor=None, labels=[])
    run_tasks()
    assert labels_of(conversation) == []


def test_a_catastrophic_pattern_times_out_instead_of_hanging(shop, workspace):
    rule(
        workspace,
        conditions=when({"field": "message.text", "operator": "matches", "value": r"^(a|aa)+$"}),
        actions=[{"type": "add_labels", "labels": ["hit"]}],
    )
    # Without the time limit this pattern backtracks for ages over 5,000 characters.
    conversation = customer_writes(shop, "a" * 5000 + "!")
    assert labels_of(conversation) == []
    assert not RuleRun.objects.filter(conversation=conversation).exists()


def test_channel_attributes_labels_language_and_any_groups(shop, workspace):
    other = factories.api_channel(workspace, name="Other")
    rule(
        workspace,
        conditions=when(
            {"field": "channel", "operator": "is", "value": [shop.pk]},
            {"field": "channel.kind", "operator": "is", "value": ["api"]},
            {
                "match": "any",
                "conditions": [
                    {
                        "field": "contact.attribute",
                        "key": "plan",
                        "operator": "equals",
                        "value": "gold",
                    },
                    text_has("urgent"),
                ],
            },
        ),
        actions=[{"type": "add_labels", "labels": ["priority-queue"]}],
    )
    assert labels_of(customer_writes(shop, "urgent please", contact_id="a")) == ["priority-queue"]
    assert labels_of(customer_writes(shop, "hello", contact_id="b")) == []
    assert labels_of(customer_writes(other, "urgent please", contact_id="c")) == []
    gold = customer_writes(shop, "hello", contact_id="d")
    gold.contact.attributes = {"plan": "gold"}
    gold.contact.save()
    update_conversation(gold, actor=None, status=ConversationStatus.RESOLVED)
    assert labels_of(customer_writes(shop, "hello again", contact_id="d")) == ["priority-queue"]


def test_first_message_labels_and_earlier_conversations_on_a_later_message(shop, workspace):
    rule(
        workspace,
        conditions=when(
            {"field": "message.is_first", "operator": "is_false"},
            {"field": "conversation.labels", "operator": "includes_all", "value": ["a", "b"]},
            {"field": "contact.previous_conversations", "operator": "equals", "value": 1},
        ),
        actions=[{"type": "add_labels", "labels": ["hit"]}],
    )
    first = customer_writes(shop, "one")
    update_conversation(first, actor=None, status=ConversationStatus.CLOSED)
    second = customer_writes(shop, "two")
    assert second.pk != first.pk
    update_conversation(second, actor=None, labels=ensure_labels(workspace.pk, ["a", "b"]))
    customer_writes(shop, "three")  # not the first message; labels a and b; one earlier
    assert labels_of(second) == ["a", "b", "hit"]
    assert labels_of(first) == []
    update_conversation(second, actor=None, labels=ensure_labels(workspace.pk, ["a"]))
    customer_writes(shop, "four")
    assert labels_of(second) == ["a"]


def test_returning_customers_and_outside_business_hours(shop, workspace):
    workspace.business_hours = {"mon": [["00:00", "00:01"]]}  # closed "now"
    workspace.save()
    rule(
        workspace,
        RuleTrigger.CONVERSATION_CREATED,
        conditions=when(
            {"field": "contact.previous_conversations", "operator": "greater_than", "value": 0},
            {"field": "business_hours.inside", "operator": "is_false"},
        ),
        actions=[{"type": "add_labels", "labels": ["returning-after-hours"]}],
    )
    first = customer_writes(shop, "one")
    assert labels_of(first) == []
    update_conversation(first, actor=None, status=ConversationStatus.CLOSED)
    second = customer_writes(shop, "two")
    assert second.pk != first.pk and labels_of(second) == ["returning-after-hours"]


# -- actions --
def test_assign_agent_unassign_remove_labels_snooze(shop, workspace, agent):
    rule(
        workspace,
        conditions=when(text_has("anna")),
        actions=[{"type": "assign_agent", "member_id": agent.pk}],
    )
    rule(workspace, conditions=when(text_has("nobody")), actions=[{"type": "unassign"}])
    rule(
        workspace,
        conditions=when(text_has("tidy")),
        actions=[{"type": "remove_labels", "labels": ["Old"]}],
    )
    rule(workspace, conditions=when(text_has("later")), actions=[{"type": "snooze", "minutes": 90}])
    conversation = customer_writes(shop, "for anna")
    assert conversation.assignee_id == agent.pk
    assert customer_writes(shop, "nobody please").assignee_id is None
    update_conversation(
        conversation, actor=None, labels=ensure_labels(workspace.pk, ["old", "keep"])
    )
    customer_writes(shop, "tidy up")
    assert labels_of(conversation) == ["keep"]
    frozen_at = timezone.now()
    with clock.frozen(frozen_at):
        snoozed = customer_writes(shop, "later")
    assert snoozed.status == ConversationStatus.SNOOZED
    assert snoozed.snoozed_until == frozen_at + dt.timedelta(minutes=90)


def test_hand_to_the_auto_assigner(shop, workspace, billing, agent):
    from loket.automation.assignment import configure_team
    from loket.tenancy.models import Availability

    billing.members.add(agent)
    agent.availability = Availability.ONLINE
    agent.save()
    configure_team(billing, auto_assign="balanced")
    rule(
        workspace,
        RuleTrigger.CONVERSATION_CREATED,
        actions=[{"type": "assign_team", "team_id": billing.pk}, {"type": "auto_assign"}],
    )
    conversation = customer_writes(shop, "hello")
    assert conversation.team_id == billing.pk
    assert conversation.assignee_id == agent.pk


def test_a_failing_action_is_recorded_and_the_others_still_happen(shop, workspace, billing):
    canned_team = rule(
        workspace,
        actions=[
            {"type": "assign_team", "team_id": billing.pk},
            {"type": "add_labels", "labels": ["seen"]},
        ],
    )
    billing.delete()
    conversation = customer_writes(shop, "hello")
    [run] = RuleRun.objects.filter(rule=canned_team)
    assert run.outcome == "partly"
    assert run.done[0] == {
        "type": "assign_team",
        "ok": False,
        "detail": "that team was deleted",
        "said": {"message": "that team was deleted", "values": {}},
    }
    assert labels_of(conversation) == ["seen"]


# -- automatic mail: a rule never answers a machine --
OUT_OF_OFFICE = {
    "auto_submitted": True,
    "email": {"auto_reason": "Auto-Submitted: auto-replied"},
}


def _canned(owner):
    return create_canned_reply(
        owner, shortcut="thanks", title="Thanks", shared=True, body="Thanks, we are on it."
    )


def rule_replies(conversation) -> list[str]:
    return list(
        Message.objects.filter(
            conversation=conversation, kind=MessageKind.MESSAGE, data__has_key="rule_id"
        ).values_list("text", flat=True)
    )


def test_a_rule_does_not_reply_to_automatic_mail_but_does_its_other_actions(shop, workspace, owner):
    answer = rule(
        workspace,
        name="Answer everything",
        actions=[
            {"type": "add_labels", "labels": ["seen"]},
            {"type": "send_canned_reply", "canned_reply_id": _canned(owner).pk},
        ],
    )
    ooo = customer_writes(shop, "I am out of office until Monday.", data=dict(OUT_OF_OFFICE))
    assert rule_replies(ooo) == []
    assert labels_of(ooo) == ["seen"]  # only the reply is skipped
    [run] = RuleRun.objects.filter(rule=answer, conversation=ooo)
    assert run.outcome == "done"  # skipping the answer is right, not a failure
    skipped = run.done[1]
    assert skipped["type"] == "send_canned_reply" and skipped["skipped"] is True
    assert skipped["said"] == {
        "message": "no answer to an automatic message (%(reason)s)",
        "values": {"reason": "Auto-Submitted: auto-replied"},
    }
    # The admin sees why on the conversation's timeline too.
    line = Message.objects.get(conversation=ooo, data__action="rule_ran")
    assert line.data["skipped"] == [skipped] and line.data["failed"] == []
    from loket.automation.rules.actions import described_detail
    from loket.web.inbox.timeline import activity_sentence

    assert "Auto-Submitted: auto-replied" in described_detail(skipped)
    said = activity_sentence(line, "Rule")
    assert "1 action skipped: no answer to an automatic message" in said

    # A person's mail gets the rule's reply as before.
    person = customer_writes(shop, "Where is my parcel?", contact_id="cust-2")
    assert rule_replies(person) == ["Thanks, we are on it."]
    assert RuleRun.objects.get(rule=answer, conversation=person).outcome == "done"


def test_whatsapp_system_messages_count_as_automatic(shop, workspace, owner):
    rule(workspace, actions=[{"type": "send_canned_reply", "canned_reply_id": _canned(owner).pk}])
    system = {"provider": {"system": {"type": "customer_changed_number"}}}
    conversation = customer_writes(shop, "Sanne changed her number", data=system)
    assert rule_replies(conversation) == []
    [run] = RuleRun.objects.filter(conversation=conversation)
    assert run.outcome == "done" and run.done[0]["skipped"] is True
    assert run.done[0]["said"]["values"] == {"reason": "WhatsApp system message"}


def test_other_triggers_do_not_answer_a_conversation_that_waits_on_automatic_mail(
    shop, workspace, owner, agent
):
    canned = _canned(owner)
    rule(
        workspace,
        RuleTrigger.CONVERSATION_CREATED,
        name="Greet",
        actions=[{"type": "send_canned_reply", "canned_reply_id": canned.pk}],
    )
    rule(
        workspace,
        RuleTrigger.UNANSWERED_FOR,
        name="Still busy",
        minutes=30,
        actions=[{"type": "send_canned_reply", "canned_reply_id": canned.pk}],
    )
    nudge = rule(
        workspace,
        RuleTrigger.NO_CUSTOMER_REPLY_FOR,
        name="Nudge",
        minutes=60,
        actions=[{"type": "send_canned_reply", "canned_reply_id": canned.pk}],
    )
    start = timezone.now()
    with clock.frozen(start):
        conversation = customer_writes(shop, "Delivery failed", data=dict(OUT_OF_OFFICE))
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=start)
    with clock.frozen(start + dt.timedelta(minutes=31)):
        assert engine.run_timed() == 1  # it ran, and skipped its reply
    assert rule_replies(conversation) == []
    assert {r.rule.name: r.outcome for r in RuleRun.objects.filter(conversation=conversation)} == {
        "Greet": "done",  # each skipped its reply
        "Still busy": "done",
    }
    # After the team's own reply, a reminder answers that reply, not the out-of-office.
    outbound.reply(conversation, author=agent, text="Could you send the order number?")
    with clock.frozen(timezone.now() + dt.timedelta(minutes=61)):
        assert engine.run_timed() == 1
    assert rule_replies(conversation) == ["Thanks, we are on it."]
    assert RuleRun.objects.get(rule=nudge).outcome == "done"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    _Receiver.status = 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_webhook_is_signed_and_retried_on_a_server_error(shop, workspace, receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    rule(workspace, name="Tell the CRM", actions=[{"type": "webhook", "url": url}])
    _Receiver.status = 503
    conversation = customer_writes(shop, "hello")
    assert len(_Receiver.received) == 1
    _Receiver.status = 200
    run_tasks(retries_due=True)
    assert len(_Receiver.received) == 2
    headers, body = _Receiver.received[-1]
    payload = json.loads(body)
    assert payload["rule"]["name"] == "Tell the CRM"
    assert payload["conversation"]["number"] == conversation.number
    assert payload["conversation"]["contact"]["name"] == "Sanne de Vries"
    stamp, mac = dict(p.split("=", 1) for p in headers["X-Loket-Signature"].split(",")).values()
    expected = hmac.new(
        webhook_secret(workspace.pk).encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert mac == expected


def test_webhook_to_a_private_address_is_refused_by_the_guard(shop, workspace, receiver, settings):
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    rule(
        workspace, actions=[{"type": "webhook", "url": f"http://127.0.0.1:{receiver.server_port}/"}]
    )
    customer_writes(shop, "hello")
    run_tasks(retries_due=True)
    assert _Receiver.received == []


def test_a_failed_action_is_told_on_the_conversation(shop, workspace, billing):
    rule(workspace, name="Route", actions=[{"type": "assign_team", "team_id": billing.pk}])
    billing.delete()
    conversation = customer_writes(shop, "hello")
    line = Message.objects.get(conversation=conversation, data__action="rule_ran")
    assert line.data["failed"] == [
        {
            "type": "assign_team",
            "ok": False,
            "detail": "that team was deleted",
            "said": {"message": "that team was deleted", "values": {}},
        }
    ]
    from django.utils import translation

    from loket.automation.rules.actions import described_detail
    from loket.web.inbox.timeline import activity_sentence

    with translation.override("nl"):
        assert described_detail(line.data["failed"][0]) == "dat team is verwijderd"
        assert "dat team is verwijderd" in activity_sentence(line, "Route")


def test_what_is_wrong_with_a_rule_is_said_in_the_readers_language(workspace):
    from django.utils import translation

    with pytest.raises(service.InvalidRule) as caught:
        service.create_rule(
            workspace,
            name="R",
            trigger="message_received",
            conditions=when({"field": "message.text", "operator": "contains", "value": " "}),
            actions=[{"type": "add_labels", "labels": ["x"]}],
        )
    assert str(caught.value) == "condition 1: message.text needs a text"
    with translation.override("nl"):
        assert str(caught.value) == "voorwaarde 1: message.text heeft een tekst nodig"
    with pytest.raises(service.InvalidRule) as caught:
        service.create_rule(
            workspace, name="R", trigger="message_received", actions=[{"type": "snooze"}]
        )
    with translation.override("nl"):
        assert str(caught.value) == (
            "actie 1 (Sluimeren): laat een heel aantal minuten sluimeren, minstens 1"
        )


def test_a_rule_applies_an_sla_policy_by_label(shop, workspace):
    from loket.automation import sla

    vip = sla.create_policy(
        workspace, name="VIP", business_hours=False, targets={"0": {"first_response": 15}}
    )
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        conditions=when(
            {"field": "conversation.labels", "operator": "includes_any", "value": ["vip"]}
        ),
        actions=[{"type": "apply_sla_policy", "policy_id": vip.pk}],
    )
    conversation = customer_writes(shop, "hello")
    assert conversation.sla_policy_id != vip.pk
    update_conversation(conversation, actor=None, labels=ensure_labels(workspace.pk, ["VIP"]))
    run_tasks()
    conversation.refresh_from_db()
    assert conversation.sla_policy_id == vip.pk
    assert conversation.first_response_due_at is not None


# -- loop guards --
def test_a_rule_does_not_trigger_itself(shop, workspace):
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        actions=[{"type": "add_labels", "labels": ["touched"]}],
    )
    conversation = customer_writes(shop, "hello")
    update_conversation(conversation, actor=None, priority=Priority.LOW)
    run_tasks()
    assert labels_of(conversation) == ["touched"]
    assert RuleRun.objects.filter(conversation=conversation).count() == 1


def test_two_rules_undoing_each_other_stop_at_the_guard_and_say_so(shop, workspace, settings):
    settings.LOKET_RULE_RUNS_PER_CONVERSATION = 6
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        name="Add X",
        conditions=when(
            {"field": "conversation.labels", "operator": "includes_none", "value": ["x"]}
        ),
        actions=[{"type": "add_labels", "labels": ["x"]}],
    )
    rule(
        workspace,
        RuleTrigger.CONVERSATION_UPDATED,
        name="Remove X",
        conditions=when(
            {"field": "conversation.labels", "operator": "includes_any", "value": ["x"]}
        ),
        actions=[{"type": "remove_labels", "labels": ["x"]}],
    )
    conversation = customer_writes(shop, "hello")
    update_conversation(conversation, actor=None, priority=Priority.LOW)
    run_tasks(rounds=50)
    runs = RuleRun.objects.filter(conversation=conversation)
    assert runs.exclude(outcome="stopped").count() == 6
    [stopped] = runs.filter(outcome="stopped")
    line = Message.objects.get(conversation=conversation, data__action="rules_stopped")
    assert line.data["limit"] == 6 and line.data["rules"] == ["Add X", "Remove X"]
    assert stopped.done[0]["detail"] == "6 runs within an hour"


# -- trying and saving --
def test_trying_a_rule_explains_every_condition_and_changes_nothing(shop, workspace, billing):
    conversation = customer_writes(shop, "refund please")
    conditions = {
        "match": "all",
        "conditions": [text_has("refund"), {"field": "conversation.team", "operator": "is_empty"}],
    }
    trial = engine.try_rule(
        conditions, [{"type": "assign_team", "team_id": billing.pk}], conversation
    )
    assert trial.matched and [c["held"] for c in trial.checked] == [True, True]
    assert trial.would_do == [{"type": "assign_team", "team_id": billing.pk}]
    conversation.refresh_from_db()
    assert conversation.team_id is None and not RuleRun.objects.exists()
    failing = {"match": "all", "conditions": [text_has("invoice"), text_has("refund")]}
    trial = engine.try_rule(failing, [], conversation)
    assert not trial.matched and [c["held"] for c in trial.checked] == [False, True]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"trigger": "whenever"}, "unknown trigger"),
        ({"actions": []}, "at least one action"),
        ({"actions": [{"type": "format_disk"}]}, "unknown type"),
        ({"actions": [{"type": "set_priority", "priority": 9}]}, "unknown priority"),
        ({"actions": [{"type": "webhook", "url": "ftp://x"}]}, "https://"),
        ({"actions": [{"type": "webhook", "url": "https://u:p@x.example"}]}, "no user name"),
        (
            {"conditions": when({"field": "contact.password", "operator": "equals", "value": "x"})},
            "unknown field",
        ),
        (
            {"conditions": when({"field": "message.text", "operator": "__regex", "value": "x"})},
            "no operator",
        ),
        (
            {
                "conditions": when(
                    {"field": "message.text", "operator": "matches", "value": "(unclosed"}
                )
            },
            "pattern is not valid",
        ),
        (
            {
                "conditions": when(
                    {"field": "contact.attribute", "operator": "equals", "value": "x"}
                )
            },
            "needs a key",
        ),
        (
            {
                "conditions": when(
                    {"match": "any", "conditions": [{"match": "all", "conditions": []}]}
                )
            },
            "one level deep",
        ),
        ({"trigger": "unanswered_for"}, "number of minutes"),
        ({"name": " "}, "needs a name"),
    ],
)
def test_saving_refuses_what_it_cannot_run(workspace, fields, error):
    base = {
        "name": "R",
        "trigger": "message_received",
        "actions": [{"type": "add_labels", "labels": ["x"]}],
    }
    with pytest.raises(service.InvalidRule, match=error):
        service.create_rule(workspace, **{**base, **fields})
    assert not Rule.objects.exists()


def test_another_workspaces_team_member_or_channel_cannot_be_used(workspace):
    other = factories.workspace("other")
    team = create_team(other, "Theirs")
    channel = factories.api_channel(other)
    with pytest.raises(service.InvalidRule, match="no team"):
        service.create_rule(
            workspace,
            name="R",
            trigger="message_received",
            actions=[{"type": "assign_team", "team_id": team.pk}],
        )
    with pytest.raises(service.InvalidRule, match="no value"):
        service.create_rule(
            workspace,
            name="R",
            trigger="message_received",
            conditions=when({"field": "channel", "operator": "is", "value": [channel.pk]}),
            actions=[{"type": "unassign"}],
        )


def test_only_admins_change_rules_and_the_order_is_kept(workspace, agent, owner):
    from loket.tenancy.services import NotAllowed

    with pytest.raises(NotAllowed):
        service.create_rule(
            workspace,
            name="R",
            trigger="message_received",
            actions=[{"type": "unassign"}],
            actor=agent,
        )
    _a, b, c = (
        service.create_rule(
            workspace,
            name=n,
            trigger="message_received",
            actions=[{"type": "unassign"}],
            actor=owner,
        )
        for n in "abc"
    )
    service.move_rule(c, -1, actor=owner)
    assert [r.name for r in service.rules_of(workspace.pk)] == ["a", "c", "b"]
    service.reorder_rules(workspace, [b.pk], actor=owner)
    assert [r.name for r in service.rules_of(workspace.pk)] == ["b", "a", "c"]
