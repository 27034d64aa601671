"""The live-chat widget's emoji picker in real Chromium: a visitor opens it from the composer,
moves through it with the keyboard, closes it with Escape (focus back on its button), inserts an
emoji where the caret is, and sends it; the agent sees it. And the rating card reaches a visitor
whose websocket a proxy blocks (long-poll)."""

from __future__ import annotations

from playwright.sync_api import expect

from loket.inbox.models import Conversation
from tests.browser.test_inbox_live import LIVE
from tests.browser.test_livechat import host_site, live_chat, open_widget, snippet
from tests.processes import wait_until


def test_a_visitor_sends_an_emoji_from_the_picker_and_the_agent_sees_it(
    agent_app, browser_pages, chromium, screenshot
):
    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    (agent,) = browser_pages("agent-a", goto="/w/acme/")
    with host_site(snippet(agent_app, channel)) as site:
        context, visitor, widget = open_widget(chromium, site)
        textarea = widget.locator(".lk-composer textarea")
        toggle = widget.get_by_role("button", name="Insert an emoji")
        picker = widget.get_by_role("group", name="Insert an emoji")
        expect(toggle).to_have_attribute("aria-expanded", "false", timeout=LIVE)

        # Opened with the keyboard, the first emoji has focus; Escape closes only the picker.
        toggle.focus()
        toggle.press("Enter")
        expect(picker).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(picker.get_by_role("button", name="😀")).to_be_focused()
        picker.get_by_role("button", name="😀").press("ArrowRight")
        expect(picker.get_by_role("button", name="😃")).to_be_focused()
        visitor.keyboard.press("Escape")
        expect(picker).to_be_hidden()
        expect(toggle).to_be_focused()
        expect(widget.locator(".lk-panel")).to_be_visible()  # the chat itself stays open

        # An emoji goes where the caret is.
        textarea.fill("Thanks a lot")
        textarea.evaluate("el => el.setSelectionRange(6, 6)")
        toggle.click()
        expect(picker).to_be_visible()
        screenshot(visitor, "livechat-emoji-picker")
        visitor.keyboard.press("ArrowDown")  # 8 on a row: the fourth row starts with 👍
        visitor.keyboard.press("ArrowDown")
        visitor.keyboard.press("ArrowDown")
        expect(picker.get_by_role("button", name="👍")).to_be_focused()
        visitor.keyboard.press("Enter")
        expect(picker).to_be_hidden()
        expect(textarea).to_have_value("Thanks👍 a lot")
        expect(textarea).to_be_focused()
        assert textarea.evaluate("el => el.selectionStart") == len("Thanks👍") + 1  # UTF-16
        # A click elsewhere closes it too.
        toggle.click()
        expect(picker).to_be_visible()
        widget.locator(".lk-log").click()
        expect(picker).to_be_hidden()

        textarea.press("End")
        textarea.press("Enter")
        expect(widget.locator(".lk-log")).to_contain_text("Thanks👍 a lot", timeout=LIVE)
        conversation = wait_until(
            lambda: Conversation.objects.filter(channel=channel).first(), timeout=LIVE / 1000
        )
        assert conversation.messages.get().text == "Thanks👍 a lot"
        expect(agent.locator("#conv-list a.conv-link").first).to_be_visible(timeout=LIVE)
        agent.locator("#conv-list a.conv-link").first.click()
        expect(agent.locator("#timeline")).to_contain_text("Thanks👍 a lot", timeout=LIVE)
        context.close()


def test_a_long_polling_visitor_gets_the_rating_card(agent_app, chromium):
    from loket.inbox.models import SatisfactionRating

    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    with host_site(snippet(agent_app, channel)) as site:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        # No websockets at all: the widget long-polls from the start. (A routed socket that is
        # closed at once may first count as opened, and the widget then keeps retrying it.)
        context.add_init_script("delete window.WebSocket")
        page = context.new_page()
        page.goto(site)
        widget = page.frame_locator("iframe[title='Chat']")
        widget.locator(".lk-launcher").click()
        widget.locator(".lk-composer textarea").fill("Polling, and done")
        widget.locator(".lk-composer textarea").press("Enter")
        conversation = wait_until(
            lambda: Conversation.objects.filter(channel=channel).first(), timeout=LIVE / 1000
        )
        answer = agent_app.api.patch(
            f"/conversations/{conversation.pk}", json={"status": "resolved"}
        )
        assert answer.status_code == 200, answer.text
        # No socket event and no new session call: the poll's answer carries the prompt.
        form = widget.get_by_role("group", name="How did we do?")
        expect(form).to_be_visible(timeout=LIVE * 3)
        form.get_by_role("button", name="5 of 5").click()
        form.get_by_role("button", name="Send rating").click()
        expect(widget.locator(".lk-log")).to_contain_text("Thank you for your rating!")
        assert SatisfactionRating.objects.get(conversation=conversation).rating == 5
        context.close()
