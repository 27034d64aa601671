"""The flow bot in the agent app, in two real browsers: a bot that starts in an open conversation
shows in its header live ("Bot … is talking" with "Take over"); Anna takes over, the line goes
for both agents without a reload and the timeline says who took over."""

from __future__ import annotations

from playwright.sync_api import expect

from loket.bots import services
from loket.bots.models import BotSession, SessionState
from tests.browser.test_inbox_live import LIVE, open_conversation

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


def test_the_bot_shows_live_and_anna_takes_over(agent_app, browser_pages, screenshot):
    flow = services.create_flow(
        agent_app.workspace, name="Ferry booking helper", draft=FLOW, trigger="keyword",
        keywords=["ferry"],
    )  # fmt: skip
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    a, b = browser_pages("agent-a", "agent-b", goto="/w/acme/")
    agent_app.ingest("Good morning")  # no keyword: no bot yet
    for page in (a, b):
        expect(page.locator("#conv-list")).to_contain_text("Noor de Vries", timeout=LIVE)
        open_conversation(page, "Noor de Vries")
        expect(page.locator("#conv-head")).not_to_contain_text("is talking")

    agent_app.ingest("I have a question about my ferry booking")  # the bot starts
    for page in (a, b):
        expect(page.locator("#timeline")).to_contain_text("What do you need?", timeout=LIVE)
        line = page.locator("#conv-bot")
        expect(line).to_contain_text("Bot “Ferry booking helper” is talking", timeout=LIVE)
        expect(line).to_contain_text("waiting for the customer's answer at “What they need”")
    screenshot(a, "bot-talking-en")

    a.locator("#conv-bot").get_by_role("button", name="Take over").click()
    for page in (a, b):
        expect(page.locator("#conv-head")).not_to_contain_text("is talking", timeout=LIVE)
        expect(page.locator("#timeline")).to_contain_text(
            "Anna Agent took over from bot “Ferry booking helper”", timeout=LIVE
        )
    session = BotSession.objects.get(flow=flow)
    assert session.state == SessionState.STOPPED
