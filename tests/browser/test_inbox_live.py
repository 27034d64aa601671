"""The inbox in two real browsers (issue 3's must-shows): a message ingested through the API
channel appears for both agents live; A's reply reaches B without a reload; B sees A typing; B
is asked to review when A replied while B was writing; a note mentioning B notifies B; the
conversation actions work and reach the other agent live; a dropped socket catches up."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from loket.inbox.models import Conversation, Label, Message, Notification
from tests.browser import harness

LIVE = 10_000  # ms: a bound on how long a live update may take, not a speed claim


def open_conversation(page, contact_name: str) -> None:
    page.locator("#conv-list a.conv-link", has_text=contact_name).first.click()
    expect(page.locator("#conv-pane h1")).to_contain_text(contact_name, timeout=LIVE)
    # The pane's live handlers attach once Alpine has initialised it.
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")


def test_two_agents_work_one_conversation_live(agent_app, browser_pages, screenshot):
    a, b = browser_pages("agent-a", "agent-b", goto="/w/acme/")
    question = "Hallo, waar is mijn bestelling? Ordernummer 4411."
    agent_app.ingest(question)
    for page in (a, b):  # no reload: the list refreshes on the live event
        expect(page.locator("#conv-list")).to_contain_text("Noor de Vries", timeout=LIVE)
    open_conversation(a, "Noor de Vries")
    open_conversation(b, "Noor de Vries")
    expect(a.locator("#timeline")).to_contain_text(question)
    expect(a.locator("#presence")).to_contain_text("Bram Agent is viewing", timeout=LIVE)

    # B starts writing first; then A types and B sees it.
    b.locator("#composer-text").fill("Ik kijk het even na")
    b.locator("#composer-text").press("End")  # an input event: B's writing has begun
    a.locator("#composer-text").press_sequentially("Je pakket is onderweg", delay=20)
    expect(b.locator("#presence")).to_contain_text("Anna Agent is typing", timeout=LIVE)
    screenshot(a, "conversation-en")

    # A sends with Ctrl+Enter; B sees the reply without a reload.
    a.locator("#composer-text").press("Control+Enter")
    expect(a.locator("#timeline")).to_contain_text("Je pakket is onderweg", timeout=LIVE)
    expect(a.locator("#composer-text")).to_have_value("")
    expect(b.locator("#timeline")).to_contain_text("Je pakket is onderweg", timeout=LIVE)

    # B sends what B started before A's reply: asked to review first, nothing sent yet.
    b.locator("#composer button[type=submit]").click()
    warning = b.locator("#composer-alert .collision")
    expect(warning).to_contain_text("while you were writing", timeout=LIVE)
    expect(warning).to_contain_text("Je pakket is onderweg")
    assert not Message.objects.filter(text="Ik kijk het even na").exists()
    b.get_by_role("button", name="Send anyway").click()
    expect(b.locator("#timeline")).to_contain_text("Ik kijk het even na", timeout=LIVE)
    expect(a.locator("#timeline")).to_contain_text("Ik kijk het even na", timeout=LIVE)

    # The in-process worker sends A's reply to the channel; the tick follows live.
    reply = Message.objects.get(text="Je pakket is onderweg")
    expect(a.locator(f"#m{reply.pk} .ticks")).to_have_attribute(
        "data-status", re.compile("sent|delivered|read"), timeout=LIVE
    )
    screenshot(b, "inbox-en")


def test_a_note_mentioning_b_notifies_b(agent_app, browser_pages):
    agent_app.ingest("Can someone check my refund?")
    a, b = browser_pages("agent-a", "agent-b", goto="/w/acme/")
    open_conversation(a, "Noor de Vries")
    a.get_by_role("button", name="Internal note").click()
    box = a.locator("#composer-text")
    box.press_sequentially("@Bra", delay=20)
    menu = a.get_by_role("listbox", name="Mention")
    expect(menu).to_contain_text("Bram Agent")
    box.press("Enter")  # picks the highlighted teammate
    box.press_sequentially("could you look at this refund?", delay=5)
    box.press("Control+Enter")
    expect(a.locator("#timeline .msg.note")).to_contain_text("could you look", timeout=LIVE)

    badge = b.locator("#unread-badge")
    expect(badge).to_be_visible(timeout=LIVE)
    expect(badge).to_have_text("1")
    expect(b.locator("#toasts")).to_contain_text("could you look at this refund")
    notification = Notification.objects.get(recipient=agent_app.agent_b.membership)
    assert notification.kind == "mention"
    assert not Notification.objects.filter(recipient=agent_app.agent_a.membership).exists()


def test_assign_label_snooze_resolve_reopen_reach_the_other_agent(agent_app, browser_pages):
    Label.objects.create(workspace=agent_app.workspace, name="refund", color="#b42318")
    agent_app.ingest("I want my money back")
    a, b = browser_pages("agent-a", "agent-b", goto="/w/acme/")
    open_conversation(a, "Noor de Vries")
    open_conversation(b, "Noor de Vries")
    conversation = Conversation.objects.get(workspace=agent_app.workspace)

    a.locator("#assign-menu summary").click()
    a.locator("#assign-menu").get_by_role("button", name="Bram Agent").click()
    expect(a.locator("#conv-assignee")).to_have_text("Assigned to Bram Agent", timeout=LIVE)
    expect(b.locator("#conv-assignee")).to_have_text("Assigned to Bram Agent", timeout=LIVE)
    expect(b.locator("#timeline")).to_contain_text("Anna Agent assigned this to Bram Agent")

    a.locator("#label-menu summary").click()
    a.locator("#label-menu").get_by_label("refund").check()
    a.locator("#label-menu").get_by_role("button", name="Apply").click()
    expect(b.locator("#conv-labels")).to_contain_text("refund", timeout=LIVE)

    a.locator("#snooze-menu summary").click()
    a.locator("#snooze-menu").get_by_role("button", name="Until the customer replies").click()
    expect(b.locator("#conv-status")).to_contain_text("Snoozed", timeout=LIVE)

    a.keyboard.press("e")  # the resolve shortcut
    expect(a.locator("#conv-status")).to_have_text("Resolved", timeout=LIVE)
    expect(b.locator("#conv-status")).to_have_text("Resolved", timeout=LIVE)
    b.get_by_role("button", name="Reopen").click()
    expect(a.locator("#conv-status")).to_have_text("Open", timeout=LIVE)

    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert conversation.assignee_id == agent_app.agent_b.membership.pk
    assert [label.name for label in conversation.labels.all()] == ["refund"]


def test_a_dropped_socket_catches_up_without_gaps(agent_app, browser_pages):
    agent_app.ingest("First message")
    [a] = browser_pages("agent-a", goto="/w/acme/")
    open_conversation(a, "Noor de Vries")
    # Cut the socket and keep it down while a message arrives: only catching up can show it.
    a.evaluate(
        """() => {
          const Real = window.WebSocket;
          window.__blocked = true;
          window.WebSocket = function (url) {
            return new Real(window.__blocked ? "ws://127.0.0.1:9/" : url);
          };
          window.WebSocket.OPEN = Real.OPEN;
          window.Loket.socket.close();
        }"""
    )
    expect(a.locator("#connection")).to_be_visible(timeout=LIVE)
    agent_app.ingest("Sent while you were offline")
    a.wait_for_timeout(500)
    expect(a.locator("#timeline")).not_to_contain_text("Sent while you were offline")
    a.evaluate("() => { window.__blocked = false; }")
    harness.wait_connected(a, timeout=30)
    expect(a.locator("#timeline")).to_contain_text("Sent while you were offline", timeout=LIVE)
    expect(a.locator("#connection")).to_be_hidden()


def test_keyboard_moves_through_the_list(agent_app, browser_pages):
    agent_app.ingest("one", contact={"id": "c1", "name": "Eerste Klant"})
    agent_app.ingest("two", contact={"id": "c2", "name": "Tweede Klant"})
    [a] = browser_pages("agent-a", goto="/w/acme/")
    expect(a.locator("#conv-list .conv-item")).to_have_count(2, timeout=LIVE)
    a.keyboard.press("j")
    expect(a.locator("#conv-pane h1")).to_contain_text("Tweede Klant", timeout=LIVE)
    a.keyboard.press("j")
    expect(a.locator("#conv-pane h1")).to_contain_text("Eerste Klant", timeout=LIVE)
    a.keyboard.press("k")
    expect(a.locator("#conv-pane h1")).to_contain_text("Tweede Klant", timeout=LIVE)
    a.keyboard.press("?")
    expect(a.locator("#shortcut-sheet")).to_be_visible()


def test_an_open_menu_stays_open_through_a_live_update(agent_app, browser_pages):
    Label.objects.create(workspace=agent_app.workspace, name="refund", color="#b42318")
    agent_app.ingest("I want my money back")
    (a,) = browser_pages("agent-a", goto="/w/acme/")
    open_conversation(a, "Noor de Vries")
    conversation = Conversation.objects.get(workspace=agent_app.workspace)
    a.locator("#label-menu summary").click()
    a.locator("#label-menu").get_by_label("refund").check()
    a.locator("#label-menu").get_by_role("button", name="Apply").focus()  # a keyboard user
    # A colleague (here: the API) changes the priority: the header is fetched anew.
    response = agent_app.api.patch(f"/conversations/{conversation.pk}", json={"priority": 4})
    assert response.status_code == 200, response.text
    expect(a.locator("#conv-head .chip.prio-4")).to_be_visible(timeout=LIVE)
    # The agent's menu is still open, with their tick and their focus, and Enter applies it.
    expect(a.locator("#label-menu").get_by_label("refund")).to_be_checked()
    expect(a.locator("#label-menu").get_by_role("button", name="Apply")).to_be_focused()
    a.keyboard.press("Enter")
    expect(a.locator("#conv-labels")).to_contain_text("refund", timeout=LIVE)
