"""Issue 7's must-show: an admin creates a rule in the UI ("message contains 'refund' → team
Billing, priority high, canned reply"); a matching inbound message gets all three, and the
conversation shows the rule's activity line."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from loket.automation.canned import create_canned_reply
from loket.automation.models import Rule, RuleRun
from loket.inbox.models import Conversation, Message, MessageKind, Priority
from loket.tenancy.services import create_team

LIVE = 10_000  # ms: a bound on how long a live update may take, not a speed claim


def wait_for(check, seconds: float = LIVE / 1000):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the rule to run")


def test_admin_builds_a_refund_rule_and_a_customer_message_gets_all_three(
    agent_app, browser_pages, screenshot
):
    billing = create_team(agent_app.workspace, "Billing")
    canned = create_canned_reply(
        agent_app.owner.membership,
        shortcut="refund",
        title="Refund received",
        body="Hi {{contact.first_name|there}}, Billing will sort out your refund today.",
        shared=True,
    )
    [admin] = browser_pages("owner")
    admin.goto(agent_app.url("/w/acme/settings/rules/"))
    admin.get_by_role("link", name="New rule").click()
    admin.wait_for_function("() => !!document.querySelector('.rule-editor')?._x_dataStack")

    admin.get_by_label("Name").fill("Refunds")
    expect(admin.get_by_label("Trigger")).to_have_value("message_received")
    admin.get_by_role("button", name="Add condition").click()
    condition = admin.get_by_test_id("condition")
    expect(condition.get_by_label("Field")).to_have_value("message.text")
    condition.get_by_label("Operator").select_option("contains")
    condition.get_by_label("Value").fill("refund")

    for _ in range(3):
        admin.get_by_role("button", name="Add action").click()
    actions = admin.get_by_test_id("action")
    actions.nth(0).get_by_label("Action", exact=True).select_option("assign_team")
    actions.nth(0).get_by_label("Action value").select_option(label="Billing")
    actions.nth(1).get_by_label("Action", exact=True).select_option("set_priority")
    actions.nth(1).get_by_label("Action value").select_option(label="High")
    actions.nth(2).get_by_label("Action", exact=True).select_option("send_canned_reply")
    actions.nth(2).get_by_label("Action value").select_option(value=str(canned.pk))
    screenshot(admin, "rule-editor")
    admin.get_by_role("button", name="Create rule").click()

    expect(admin.locator("#rules")).to_contain_text("Refunds")
    expect(admin.locator("#rules")).to_contain_text(
        "Assign to team, Set priority, Send a canned reply"
    )
    rule = Rule.objects.get(name="Refunds")
    assert rule.conditions == {
        "match": "all",
        "conditions": [{"field": "message.text", "operator": "contains", "value": "refund"}],
    }

    message = agent_app.ingest("Hi, I would like a Refund for order 5512 please")
    wait_for(lambda: RuleRun.objects.filter(rule=rule).first())
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.team_id == billing.pk
    assert conversation.priority == Priority.HIGH
    reply = wait_for(
        lambda: Message.objects.filter(
            conversation=conversation, kind=MessageKind.MESSAGE, data__rule_id=rule.pk
        ).first()
    )
    assert reply.text == "Hi Noor, Billing will sort out your refund today."

    admin.goto(agent_app.url(f"/w/acme/inbox/{conversation.number}/"))
    timeline = admin.locator("#timeline")
    expect(timeline).to_contain_text("Rule “Refunds” ran (1 condition held)", timeout=LIVE)
    expect(timeline).to_contain_text("Rule “Refunds” moved this to team Billing")
    expect(timeline).to_contain_text("Rule “Refunds” set the priority to High")
    expect(timeline).to_contain_text("Billing will sort out your refund today.")
    screenshot(admin, "rule-activity")

    # "Test this rule" on the same conversation: it explains and changes nothing.
    admin.goto(agent_app.url(f"/w/acme/settings/rules/{rule.pk}/"))
    admin.wait_for_function("() => !!document.querySelector('.rule-editor')?._x_dataStack")
    admin.get_by_label("Conversation number").fill(str(conversation.number))
    admin.get_by_role("button", name="Test", exact=True).click()
    expect(admin.get_by_test_id("trial-verdict")).to_contain_text(
        f"The rule would act on #{conversation.number}."
    )
    expect(admin.locator(".rule-runs")).to_contain_text(f"#{conversation.number}")
    assert RuleRun.objects.filter(rule=rule).count() == 1
