"""Choices in the live-chat widget in real Chromium: a question's options show as buttons under
it; tapping one sends the visitor's answer with the choice, and the buttons go away."""

from __future__ import annotations

from playwright.sync_api import expect

from loket.inbox.models import Conversation, Direction, Message
from loket.inbox.services import choices, outbound
from tests.browser.test_inbox_live import LIVE
from tests.browser.test_livechat import host_site, live_chat, open_widget, snippet
from tests.processes import wait_until


def test_the_visitor_taps_a_choice(agent_app, chromium, screenshot):
    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    with host_site(snippet(agent_app, channel)) as site:
        context, visitor, widget = open_widget(chromium, site)
        widget.locator(".lk-composer textarea").fill("I need help with my booking")
        widget.locator(".lk-composer textarea").press("Enter")
        conversation = wait_until(
            lambda: Conversation.objects.filter(channel=channel).first(), timeout=LIVE / 1000
        )
        text, data = choices.prepare(
            conversation,
            "What can we do?",
            [{"id": "change", "title": "Change booking"}, {"id": "refund", "title": "Refund"}],
        )
        question = outbound.reply(conversation, author=None, text=text, data=data)
        buttons = widget.get_by_role("group").filter(has_text="Change booking")
        expect(buttons).to_be_visible(timeout=LIVE)
        screenshot(visitor, "livechat-choices")
        buttons.get_by_role("button", name="Refund").click()
        expect(buttons).to_be_hidden()
        answer = wait_until(
            lambda: Message.objects.filter(
                conversation=conversation, direction=Direction.INBOUND, data__choice__id="refund"
            ).first(),
            timeout=LIVE / 1000,
        )
        assert answer.text == "Refund"
        assert choices.match(answer, question.data["choices"])["id"] == "refund"
        expect(widget.locator(".lk-log")).to_contain_text("Refund")
        visitor.reload()  # a reload shows the answered question without buttons
        widget = visitor.frame_locator("iframe[title='Chat']")
        widget.locator(".lk-launcher").click()
        expect(widget.locator(".lk-log")).to_contain_text("What can we do?", timeout=LIVE)
        expect(widget.locator(".lk-choices")).to_be_hidden()
        context.close()
