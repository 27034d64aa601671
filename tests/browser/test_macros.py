"""An agent builds a personal macro in Settings → Macros (the rules' action editor) and runs it
from the conversation header's "Macros" menu: the header shows the changes at once and the
timeline names the macro."""

from __future__ import annotations

from playwright.sync_api import expect

from loket.automation.models import Macro
from loket.inbox.models import Conversation, ConversationStatus, Message


def test_an_agent_builds_a_macro_and_runs_it_on_a_conversation(
    agent_app, browser_pages, screenshot
):
    message = agent_app.ingest("Cheap watches, click here")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    [anna] = browser_pages("agent-a")

    anna.goto(agent_app.url("/w/acme/settings/macros/"))
    anna.get_by_role("link", name="New macro").click()
    anna.wait_for_function("() => !!document.querySelector('form[x-data]')?._x_dataStack")
    anna.get_by_label("Name").fill("Close as spam")
    for _ in range(2):
        anna.get_by_role("button", name="Add action").click()
    actions = anna.get_by_test_id("action")
    actions.nth(0).get_by_label("Action", exact=True).select_option("add_labels")
    actions.nth(0).get_by_label("Labels").fill("spam")
    actions.nth(1).get_by_label("Action", exact=True).select_option("set_status")
    actions.nth(1).get_by_label("Action value").select_option("resolved")
    anna.get_by_role("button", name="Create macro").click()
    expect(anna.locator("#macros")).to_contain_text("Close as spam")
    macro = Macro.objects.get(name="Close as spam")
    assert macro.actions == [
        {"type": "add_labels", "labels": ["spam"]},
        {"type": "set_status", "status": "resolved"},
    ]
    assert macro.owner_id == agent_app.person("agent-a").membership.pk

    anna.goto(agent_app.url(f"/w/acme/inbox/{conversation.number}/"))
    anna.locator("#macro-menu summary").click()
    menu_item = anna.locator("#macro-menu").get_by_role("button", name="Close as spam")
    expect(menu_item).to_be_visible()
    screenshot(anna, "macros-menu")
    menu_item.click()
    expect(anna.locator("#conv-status")).to_have_attribute("data-status", "resolved")
    expect(anna.locator("#conv-labels")).to_contain_text("spam")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    assert Message.objects.filter(conversation=conversation, data__action="macro_ran").exists()


def test_the_timeline_names_the_macro(agent_app, browser_pages):
    message = agent_app.ingest("Please call me back")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    from loket.automation import macros

    macros.create_macro(
        agent_app.owner.membership,
        name="Call back",
        shared=True,
        actions=[{"type": "add_note", "text": "Call {{contact.first_name}} back today"}],
    )
    [anna] = browser_pages("agent-a")
    anna.goto(agent_app.url(f"/w/acme/inbox/{conversation.number}/"))
    anna.locator("#macro-menu summary").click()
    anna.locator("#macro-menu").get_by_role("button", name="Call back").click()
    expect(anna.get_by_text("Anna Agent ran macro “Call back”")).to_be_visible()
    expect(anna.get_by_text("back today")).to_be_visible()


def test_an_admin_sets_the_closing_message_and_a_channels_hours(
    agent_app, browser_pages, screenshot
):
    from loket.automation.models import AutoReply
    from loket.inbox.models import Channel

    [olga] = browser_pages("owner")
    olga.goto(agent_app.url("/w/acme/settings/auto-replies/"))
    closing = olga.locator("#auto-reply-closing")
    closing.get_by_label("On", exact=True).check()
    closing.get_by_label("Text").fill("We are closing this; just reply to reopen it.")
    closing.get_by_label("Resolve after (days pending)").fill("7")
    screenshot(olga, "auto-replies")
    closing.get_by_role("button", name="Save").click()
    expect(olga.get_by_text("saved.")).to_be_visible()
    row = AutoReply.objects.get(kind="closing", channel__isnull=True)
    assert row.days == 7 and row.enabled

    channel = Channel.objects.get(name="Webshop")
    olga.goto(agent_app.url(f"/w/acme/settings/channels/{channel.pk}/"))
    hours = olga.locator("#channel-hours")
    expect(hours).to_be_visible()
    hours.get_by_label("Hours of its own").check()
    hours.get_by_label("Monday").fill("09:00-17:00")
    hours.get_by_label("Time zone").select_option("Europe/Amsterdam")
    screenshot(olga, "channel-hours")
    hours.get_by_role("button", name="Save business hours").click()
    expect(olga.get_by_text("Business hours of “Webshop” saved.")).to_be_visible()
    channel.refresh_from_db()
    assert channel.business_hours == {
        "hours": {"mon": [["09:00", "17:00"]]},
        "time_zone": "Europe/Amsterdam",
    }


def test_a_macro_that_could_do_nothing_says_so(agent_app, browser_pages):
    from loket.automation import macros
    from loket.tenancy.services import create_team

    message = agent_app.ingest("Hello?")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    gone = create_team(agent_app.workspace, "Gone")
    macros.create_macro(
        agent_app.owner.membership,
        name="To Gone",
        shared=True,
        actions=[{"type": "assign_team", "team_id": gone.pk}],
    )
    gone.delete()
    [anna] = browser_pages("agent-a")
    anna.goto(agent_app.url(f"/w/acme/inbox/{conversation.number}/"))
    anna.locator("#macro-menu summary").click()
    anna.locator("#macro-menu").get_by_role("button", name="To Gone").click()
    expect(anna.get_by_text("Assign to team: that team was deleted")).to_be_visible()
    expect(anna.get_by_text("Anna Agent ran macro “To Gone” (1 action failed)")).to_be_visible()
