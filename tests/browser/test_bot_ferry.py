"""The demo's "Ferry booking helper" through the live-chat widget in real Chromium: ``loket demo``
seeds the bot on the demo workspace's "Website chat"; a visitor on another site opens the widget,
is greeted, taps "Change booking", types a wrong booking code and then a right one, gets the
departure time from the demo look-up on the same server and asks for a person; the demo's owner
sees the conversation in the agent app with the bot's hand-off note. A Dutch browser gets the
Dutch flow."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from loket.inbox.models import Channel, Conversation, MessageKind
from loket.tenancy.models import Membership
from loket.web.management.commands.demo import DEMO_PASSWORD
from tests.browser import harness
from tests.browser.test_inbox_live import LIVE
from tests.browser.test_livechat import host_site
from tests.processes import wait_until


@pytest.fixture
def demo(agent_app):
    """``loket demo`` against the running server; the demo's live-chat channel."""
    call_command("demo", "--base-url", agent_app.server.base_url, stdout=io.StringIO())
    return Channel.objects.get(workspace__slug="demo", kind="livechat")


def demo_owner() -> harness.Person:
    membership = Membership.objects.get(workspace__slug="demo", user__email="owner@example.com")
    return harness.Person(
        "demo-owner", "owner@example.com", "Olivia Owner", DEMO_PASSWORD, membership
    )


def open_widget(chromium, site: str, locale: str):
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = context.new_page()
    page.goto(site)
    widget = page.frame_locator("iframe[title='Chat']")
    widget.locator(".lk-launcher").click()
    return context, page, widget


def write(widget, text: str) -> None:
    widget.locator(".lk-composer textarea").fill(text)
    widget.locator(".lk-composer textarea").press("Enter")


def choices(widget, option: str):
    """The (last) question's option buttons that include ``option``."""
    return widget.get_by_role("group").filter(has_text=option).last


def snippet(agent_app, channel) -> str:
    return f'<script src="{agent_app.url(f"/widget/{channel.uuid}.js")}" async></script>'


def test_a_visitor_gets_the_departure_time_then_a_person(
    agent_app, demo, chromium, browser_pages, screenshot
):
    with host_site(snippet(agent_app, demo)) as site:
        context, visitor, widget = open_widget(chromium, site, "en-GB")
        log = widget.locator(".lk-log")
        write(widget, "Hello, I have a question about my ferry booking")
        expect(log).to_contain_text("I'm the ferry booking helper", timeout=LIVE)
        expect(log).to_contain_text("What can I help you with?", timeout=LIVE)
        need = choices(widget, "Change booking")
        expect(need).to_be_visible(timeout=LIVE)
        expect(need.get_by_role("button")).to_have_text(
            ["Change booking", "Refund", "Something else"]
        )
        screenshot(visitor, "bot-ferry-choices")
        need.get_by_role("button", name="Change booking").click()
        expect(need).to_be_hidden(timeout=LIVE)
        expect(log).to_contain_text("What is your booking code?", timeout=LIVE)

        write(widget, "12345")
        expect(log).to_contain_text("That doesn't look like a booking code", timeout=LIVE)
        write(widget, "FB123456")
        expect(log).to_contain_text("The MS Texel departs at 14:30.", timeout=LIVE)
        expect(log).to_contain_text("Den Helder → Texel")
        more = choices(widget, "Yes, please")
        expect(more).to_be_visible(timeout=LIVE)
        screenshot(visitor, "bot-ferry-departure")
        more.get_by_role("button", name="Yes, please").click()
        expect(log).to_contain_text("I'm passing you to a colleague", timeout=LIVE)
        # The internal note never reaches the visitor.
        expect(log).not_to_contain_text("handed this conversation over")

        conversation = wait_until(
            lambda: Conversation.objects.filter(channel=demo, team__name="Support").first(),
            timeout=LIVE / 1000,
        )
        note = conversation.messages.get(kind=MessageKind.NOTE)
        assert "- need: change" in note.text and "- booking_code: FB123456" in note.text

        (owner,) = browser_pages(demo_owner())
        owner.goto(agent_app.url(f"/w/demo/inbox/{conversation.number}/"))
        timeline = owner.locator("#timeline")
        expect(timeline).to_contain_text("What is your booking code?", timeout=LIVE)
        expect(timeline).to_contain_text("FB123456")
        expect(timeline).to_contain_text("Bot “Ferry booking helper” handed this conversation over")
        expect(timeline).to_contain_text("booking_code: FB123456")
        screenshot(owner, "bot-ferry-handoff-note")
        context.close()


def test_a_dutch_browser_gets_the_dutch_flow(agent_app, demo, chromium):
    with host_site(snippet(agent_app, demo)) as site:
        context, _visitor, widget = open_widget(chromium, site, "nl-NL")
        log = widget.locator(".lk-log")
        write(widget, "Hallo, ik heb een vraag over mijn boeking")
        expect(log).to_contain_text("Ik ben de boekingshulp", timeout=LIVE)
        expect(log).to_contain_text("Waarmee kan ik je helpen?", timeout=LIVE)
        need = choices(widget, "Boeking wijzigen")
        expect(need.get_by_role("button")).to_have_text(
            ["Boeking wijzigen", "Terugbetaling", "Iets anders"], timeout=LIVE
        )
        need.get_by_role("button", name="Boeking wijzigen").click()
        expect(log).to_contain_text("Wat is je boekingscode?", timeout=LIVE)
        write(widget, "fb 654321")
        expect(log).to_contain_text("De MS Dokter Wagemaker vertrekt om 09:30.", timeout=LIVE)
        context.close()
