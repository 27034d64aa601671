"""An automated accessibility check of the agent app's main pages (issue 3, build 11: "accessible:
labels, focus order, contrast"): axe-core runs in Chromium on the inbox list, a conversation
(with its menus closed and open, in reply and in note mode), the contacts list and a contact,
the search page and the settings pages, and any violation of a WCAG 2.0/2.1 A or AA rule with
impact "serious" or "critical" fails the test, with every offending element listed.

axe-core comes from the PyPI package ``axe-playwright-python`` (the dev extra), which ships
axe-core's ``axe.min.js``; it is injected into the page by Playwright, so the product itself
has no Node build step. No rule is excluded: ``EXCLUDED`` is where one would go, with the reason
it is a false positive here.
"""

from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from loket.inbox.models import Conversation, Label, MessageKind
from loket.inbox.services import outbound
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.notifications import mention_token
from tests.browser import harness

LIVE = 10_000  # ms: a bound on how long the server may take, not a speed claim

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]  # WCAG 2.0-2.2, A and AA
FAILING_IMPACTS = {"serious", "critical"}
EXCLUDED: dict[str, str] = {}  # axe rule id → why it is a false positive on our pages

AXE = Axe()


def violations(page, within: str | None = None) -> list[str]:
    """The serious and critical WCAG A/AA violations axe-core finds on ``page`` as it is now (in
    the element ``within`` selects, if given), one line per element: rule, impact, what to fix,
    where."""
    options = {
        "runOnly": {"type": "tag", "values": WCAG_A_AA},
        "resultTypes": ["violations"],
        "rules": {rule: {"enabled": False} for rule in EXCLUDED},
    }
    results = AXE.run(page, context=within, options=options).response
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            found.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} — "
                f"{' '.join(map(str, node['target']))} {node['html'][:160]!r} — {summary[:300]}"
            )
    return found


def check(page, where: str, report: dict[str, list[str]], within: str | None = None) -> None:
    found = violations(page, within)
    if found:
        report[where] = found


def assert_clean(report: dict[str, list[str]]) -> None:
    lines = [f"{where}:\n  " + "\n  ".join(found) for where, found in report.items()]
    assert not report, "axe-core found accessibility violations:\n" + "\n".join(lines)


def a11y_world(agent_app) -> Conversation:
    """Two customers; the first conversation assigned, labelled, urgent, answered and with a
    note mentioning agent A (so its timeline has every kind of entry)."""
    first = agent_app.ingest(
        "Hello, my order 4411 has not arrived yet. Could you check where the parcel is?",
        contact={"id": "cust-noor", "name": "Noor de Vries", "email": "noor@example.org"},
    )
    agent_app.ingest(
        "Can I cancel my subscription from next month?",
        contact={"id": "cust-daan", "name": "Daan Jansen", "phone": "+31612345678"},
    )
    owner, a, b = (agent_app.owner.membership, agent_app.agent_a.membership,
                   agent_app.agent_b.membership)  # fmt: skip
    conversation = Conversation.objects.get(pk=first.conversation_id)
    label = Label.objects.create(workspace=agent_app.workspace, name="delivery", color="#1f5fd1")
    Label.objects.create(workspace=agent_app.workspace, name="refund", color="#b42318")
    update_conversation(conversation, actor=owner, assignee=a, priority=4, labels=[label])
    outbound.reply(conversation, author=a, text="Hi Noor, your parcel is on its way.")
    outbound.reply(
        conversation,
        author=b,
        text=f"{mention_token(a)} this customer called yesterday too.",
        kind=MessageKind.NOTE,
    )
    conversation.refresh_from_db()
    return conversation


def test_the_inbox_and_a_conversation_pass_axe(agent_app, browser_pages):
    conversation = a11y_world(agent_app)
    [page] = browser_pages("agent-a", goto="/w/acme/")
    report: dict[str, list[str]] = {}
    expect(page.locator("#conv-list .conv-item")).to_have_count(2, timeout=LIVE)
    check(page, "inbox list", report)

    page.locator("#list-pane").get_by_text("Select all").click()
    expect(page.locator("form.bulk")).to_be_visible()
    check(page, "inbox list with the bulk actions", report)

    page.goto(agent_app.url(f"/w/acme/inbox/{conversation.number}/"))
    harness.wait_connected(page)
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    expect(page.locator("#timeline .msg.note")).to_contain_text("called yesterday")
    check(page, "conversation", report)

    page.get_by_role("button", name="Internal note").click()
    expect(page.locator("#composer")).to_have_class(re.compile("note-mode"))
    check(page, "conversation, note mode", report)

    # Open menus are checked on their own, not with the page under them: a menu covers part of
    # the buttons below it (axe's target-size would call those too small), and the page itself
    # was checked above.
    page.locator("#composer-text").press_sequentially("@Bra", delay=20)
    expect(page.get_by_role("listbox", name="Mention")).to_be_visible()
    check(page, "conversation, the mention menu", report, within="#composer [role=listbox]")
    page.locator("#composer-text").fill("")
    for menu in ("assign-menu", "label-menu", "snooze-menu"):
        page.locator(f"#{menu} summary").click()
        expect(page.locator(f"#{menu} .menu").first).to_be_visible()
        check(page, f"conversation, #{menu} open", report, within=f"#{menu}")
        page.locator(f"#{menu} summary").click()
    page.keyboard.press("?")
    expect(page.locator("#shortcut-sheet")).to_be_visible()
    check(page, "shortcut sheet", report)
    page.keyboard.press("Escape")

    # On a phone: one pane at a time, the rail across the top.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    check(page, "conversation on a phone", report)
    page.get_by_role("link", name="Conversations", exact=True).click()
    expect(page.locator("#list-pane")).to_be_visible()
    check(page, "inbox list on a phone", report)
    assert_clean(report)


def test_the_composer_is_usable_by_keyboard(agent_app, browser_pages):
    """What axe cannot see: every control of the composer is reached with Tab (the Attach button
    is a label around a file input, which must stay focusable), and shows where focus is."""
    number = agent_app.ingest("Where is my parcel?").conversation.number
    [page] = browser_pages("agent-a", goto=f"/w/acme/inbox/{number}/")
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    page.locator("#composer-text").focus()
    reached = []
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                """() => {
                  const el = document.activeElement;
                  const outline = getComputedStyle(el.closest("label.btn") || el).outlineStyle;
                  return {name: el.name || el.textContent.trim() || el.getAttribute("aria-label"),
                          tag: el.tagName, outline: outline};
                }"""
            )
        )
    names = [item["name"] for item in reached]
    assert "attachments" in names, reached
    attach = next(item for item in reached if item["name"] == "attachments")
    assert attach["outline"] != "none", reached  # the Attach button shows the focus
    assert "Emoji" in names and "Send" in names, reached


def test_contacts_search_and_settings_pass_axe(agent_app, browser_pages):
    conversation = a11y_world(agent_app)
    [page] = browser_pages("owner")  # an admin: the settings pages too
    report: dict[str, list[str]] = {}
    pages = {
        "contacts": "/w/acme/contacts/",
        "contact": f"/w/acme/contacts/{conversation.contact_id}/",
        "contact edit": f"/w/acme/contacts/{conversation.contact_id}/edit/",
        "search": "/w/acme/search/?q=parcel",
        "notifications": "/w/acme/notifications/",
        "preferences": "/w/acme/me/",
        "settings": "/w/acme/settings/",
        "settings: members": "/w/acme/settings/members/",
        "settings: teams": "/w/acme/settings/teams/",
        "settings: labels": "/w/acme/settings/labels/",
        "settings: channels": "/w/acme/settings/channels/",
        "settings: a channel": f"/w/acme/settings/channels/{agent_app.channel.pk}/",
    }
    for where, path in pages.items():
        response = page.goto(agent_app.url(path))
        assert response is not None and response.status == 200, (where, path, response)
        check(page, where, report)
    assert_clean(report)


def test_the_check_finds_what_it_should(chromium):
    """The check itself: on a page with a nameless button, an image without alt text, faint text
    and a nameless form field, ``violations`` reports each (so a clean page is not an axe-core
    that never ran)."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_content(
            '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
            "<h1>Check</h1><button></button><img src='data:,'>"
            '<p style="color: #bbb; background: #fff">faint text</p><input type="text">'
            "</main></body></html>"
        )
        rules = {line.split(" ", 1)[0] for line in violations(page)}
        assert {"button-name", "image-alt", "color-contrast", "label"} <= rules, rules
    finally:
        context.close()
