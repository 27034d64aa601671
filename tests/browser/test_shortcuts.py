"""The inbox's keyboard shortcuts in a real browser (issue 3, build 9), beyond j/k/?/e (driven in
test_inbox_live.py): ``n`` and ``r`` switch the composer between note and reply with the caret in
it, ``a`` and ``l`` open the assign and label menus with focus in them (and Escape closes them),
and ``/`` goes to search and focuses its box. Every step is done with the keyboard alone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from loket.inbox.models import Conversation, Label, Message, MessageKind

LIVE = 10_000  # ms: a bound on how long a live update may take, not a speed claim

FOCUSED = "() => { const el = document.activeElement; return el && (el.id || el.tagName); }"


def focus_is_in(page, selector: str) -> bool:
    return page.evaluate("(selector) => !!document.activeElement?.closest(selector)", selector)


def test_shortcuts_reply_note_assign_label_and_search(agent_app, browser_pages):
    Label.objects.create(workspace=agent_app.workspace, name="refund", color="#b42318")
    agent_app.ingest("I want my money back for order 4411")
    conversation = Conversation.objects.get(workspace=agent_app.workspace)
    [page] = browser_pages("agent-a", goto=f"/w/acme/inbox/{conversation.number}/")
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    composer = page.locator("#composer")
    box = page.locator("#composer-text")
    reply_tab = page.get_by_role("button", name="Reply", exact=True)
    note_tab = page.get_by_role("button", name="Internal note")
    page.locator("#conv-head h1").click()  # focus on the page, not in a field

    # n: a note, caret in the box; what is typed then is the note, not more shortcuts.
    page.keyboard.press("n")
    expect(composer).to_have_class(re.compile(r"\bnote-mode\b"))
    expect(note_tab).to_have_attribute("aria-pressed", "true")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("placeholder", "Write an internal note…")
    page.keyboard.type("a note, not a shortcut")
    expect(page.locator("#assign-menu")).not_to_have_attribute("open", "")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#timeline .msg.note")).to_contain_text("a note, not a shortcut")
    assert Message.objects.filter(kind=MessageKind.NOTE, text="a note, not a shortcut").exists()

    # Escape leaves the box; r: back to a reply, caret in the box.
    page.keyboard.press("Escape")
    expect(box).not_to_be_focused()
    page.keyboard.press("r")
    expect(composer).not_to_have_class(re.compile(r"\bnote-mode\b"))
    expect(reply_tab).to_have_attribute("aria-pressed", "true")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("placeholder", "Write a reply…")
    page.keyboard.press("Escape")

    # a: the assign menu opens with focus on its first choice; Escape closes it again.
    assign = page.locator("#assign-menu")
    page.keyboard.press("a")
    expect(assign).to_have_attribute("open", "")
    assert focus_is_in(page, "#assign-menu .menu"), page.evaluate(FOCUSED)
    page.keyboard.press("Escape")
    expect(assign).not_to_have_attribute("open", "")
    expect(assign.locator("summary")).to_be_focused()
    # ...and once more, this time choosing Bram with the keyboard.
    page.keyboard.press("a")
    expect(assign).to_have_attribute("open", "")
    bram = assign.get_by_role("button", name="Bram Agent")
    for _ in range(10):
        if focus_is_in(page, f"#assign-menu button[value='{agent_app.agent_b.membership.pk}']"):
            break
        page.keyboard.press("Tab")
    expect(bram).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#conv-assignee")).to_have_text("Assigned to Bram Agent", timeout=LIVE)

    # l: the label menu opens with focus on the first label; Space ticks it, Tab, Enter applies.
    page.locator("#conv-head h1").click()
    labels = page.locator("#label-menu")
    page.keyboard.press("l")
    expect(labels).to_have_attribute("open", "")
    expect(labels.get_by_label("refund")).to_be_focused()
    page.keyboard.press("Space")
    expect(labels.get_by_label("refund")).to_be_checked()
    page.keyboard.press("Tab")
    expect(labels.get_by_role("button", name="Apply")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#conv-labels")).to_contain_text("refund", timeout=LIVE)
    conversation.refresh_from_db()
    assert conversation.assignee_id == agent_app.agent_b.membership.pk
    assert [label.name for label in conversation.labels.all()] == ["refund"]

    # /: from the inbox to the search page, its box focused; there, / focuses the box again.
    page.locator("#conv-head h1").click()
    page.keyboard.press("/")
    page.wait_for_url(re.compile(r"/w/acme/search/"))
    search = page.locator("#search-input")
    expect(search).to_be_focused()
    page.keyboard.press("Escape")
    expect(search).not_to_be_focused()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    expect(search).to_have_value("")  # the "/" was not typed into it
    page.keyboard.type("money back")
    expect(page.locator("#search-results")).to_contain_text("Noor de Vries", timeout=LIVE)
