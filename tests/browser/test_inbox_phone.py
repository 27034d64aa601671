"""The inbox on a phone (issue 3, build 11: "usable on a phone for quick replies"): at 390x844 an
agent sees the conversation list alone, opens a conversation (the list gives way to it), replies,
and goes back to the list; at no step does the page scroll sideways. Leaves the screenshots
``inbox-phone-en`` and ``conversation-phone-en`` under ``var/screenshots/``."""

from __future__ import annotations

from playwright.sync_api import expect

from loket.inbox.models import Message
from tests.browser import harness

LIVE = 10_000  # ms: a bound on how long the server may take, not a speed claim
PHONE = {"width": 390, "height": 844}

# How far the page reaches past the window's right edge, and the widest elements that do it.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 0.5 && getComputedStyle(el).visibility !== "hidden") {
      const name = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
      wide.push(`${name} right=${Math.round(box.right)}`);
    }
  }
  const scrollWidth = document.documentElement.scrollWidth;
  return {scrollWidth: scrollWidth, innerWidth: width, wide: wide.slice(0, 8)};
}"""


def assert_no_sideways_scroll(page, where: str) -> None:
    found = page.evaluate(OVERFLOW)
    assert found["scrollWidth"] <= found["innerWidth"], f"{where} scrolls sideways: {found}"


def test_an_agent_replies_from_a_phone(agent_app, browser_pages, screenshot):
    agent_app.ingest(
        "Hoi! Mijn pakket met ordernummer 4411 is nog steeds niet aangekomen, kunnen jullie even "
        "kijken waar het blijft? Bedankt alvast.",
        contact={"id": "cust-noor", "name": "Noor de Vries", "email": "noor@example.org"},
    )
    agent_app.ingest("Is the shop open on Sunday?", contact={"id": "c2", "name": "Daan Jansen"})
    [page] = browser_pages("agent-a", is_mobile=True, has_touch=True)
    # browser_pages sets a desktop viewport of its own (and will not take another): resize first.
    page.set_viewport_size(PHONE)
    page.goto(agent_app.url("/w/acme/"))
    harness.wait_connected(page)

    # The list alone: no views column, no conversation pane.
    items = page.locator("#conv-list .conv-item")
    expect(items).to_have_count(2, timeout=LIVE)
    expect(page.locator("#list-pane")).to_be_visible()
    expect(page.locator("#views")).to_be_hidden()
    expect(page.locator(".placeholder-pane")).to_be_hidden()
    assert_no_sideways_scroll(page, "the inbox list")
    screenshot(page, "inbox-phone-en")

    # Open a conversation: it takes the whole screen, the list gives way.
    page.locator("#conv-list a.conv-link", has_text="Noor de Vries").tap()
    expect(page.locator("#conv-pane h1")).to_contain_text("Noor de Vries", timeout=LIVE)
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    expect(page.locator("#list-pane")).to_be_hidden()
    expect(page.locator("#timeline")).to_contain_text("ordernummer 4411")
    composer = page.locator("#composer-text")
    expect(composer).to_be_in_viewport()
    assert_no_sideways_scroll(page, "the conversation")

    # A quick reply with the Send button (no keyboard shortcut on a phone).
    composer.tap()
    composer.fill("Dag Noor, je pakket is onderweg en komt morgen aan.")
    send = page.locator("#composer button[type=submit]")
    expect(send).to_be_in_viewport()
    send.tap()
    expect(page.locator("#timeline .msg.out")).to_contain_text("komt morgen aan", timeout=LIVE)
    expect(composer).to_have_value("")
    assert Message.objects.filter(text__startswith="Dag Noor", direction="out").exists()
    assert_no_sideways_scroll(page, "the conversation after the reply")
    screenshot(page, "conversation-phone-en")

    # The menus of the header open within the screen too.
    page.locator("#assign-menu summary").tap()
    expect(page.locator("#assign-menu .menu")).to_be_visible()
    assert_no_sideways_scroll(page, "the conversation with the assign menu open")
    page.locator("#assign-menu summary").tap()

    # The contact details slide over the conversation, and close again.
    page.get_by_role("button", name="Details").tap()
    sidebar = page.locator("#conv-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar).to_contain_text("noor@example.org")
    assert_no_sideways_scroll(page, "the conversation with the contact details open")
    sidebar.get_by_role("button", name="Close").tap()
    expect(sidebar).to_be_hidden()

    # Back to the list: one pane again, the other conversation still there to pick.
    page.get_by_role("link", name="Conversations", exact=True).tap()
    expect(page.locator("#list-pane")).to_be_visible(timeout=LIVE)
    expect(page.locator("#conv-pane")).to_be_hidden()
    expect(items).to_have_count(2)
    harness.wait_connected(page)
    assert_no_sideways_scroll(page, "the inbox list again")
    page.locator("#conv-list a.conv-link", has_text="Daan Jansen").tap()
    expect(page.locator("#conv-pane h1")).to_contain_text("Daan Jansen", timeout=LIVE)
