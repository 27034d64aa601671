"""The Dutch UI in a real browser (issue 3, "English and Dutch complete"): an agent whose own
language is Dutch, and an owner whose browser asks for Dutch, walk the main pages — inbox,
conversation, contacts, search, notifications, preferences, the account pages, every settings
page and the invitations — and each says ``<html lang="nl">`` and shows no English.

"No English" is checked two ways on the visible text, the page title and the text-bearing
attributes (aria-label, placeholder, title, alt, confirm prompts): none of the English phrases of
the Dutch catalogue may appear (a string that is in the catalogue but is not translated when the
page renders: a missing compile, a label translated at import time), and none of a list of common
English words from our templates (a string hard-coded in English, never in the catalogue).
"""

from __future__ import annotations

import re
from functools import cache

from playwright.sync_api import expect

from loket.accounts.invitations import create_invitation, revoke_invitation
from loket.inbox.models import Conversation, Label, MessageKind
from loket.inbox.services import outbound
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.notifications import mention_token, notify_mentions
from loket.tenancy.models import Role
from tests.browser import harness
from tests.test_translations import PO, parse_po

LIVE = 10_000  # ms: a bound on how long the server may take, not a speed claim

# English UI words from our templates whose Dutch differs (case-sensitive, whole words). Not
# here: words Dutch shares ("Status", "Details", "Labels", "Team", "Open", "Filter"), and words in
# the world's own data ("Olga Owner", "Anna Agent", team "Support", channel "Webshop").
ENGLISH_WORDS = [
    "Inbox views", "Saved views", "Unassigned", "Assigned to", "Assign", "Resolve", "Resolved",
    "Reopen", "Snooze", "Snoozed", "Internal note", "Reply", "Send", "Search", "Settings",
    "Sign out", "Sign Out", "Sign In", "Contacts", "Conversations", "Conversation", "Members",
    "Notifications", "Mentions", "Priority", "Channels", "Channel", "Invitations", "Invite",
    "Workspace", "Save", "Delete", "Cancel", "Edit", "Merge", "Block", "Undo", "Apply", "Close",
    "Keyboard", "Email", "Phone", "Language", "Name", "Role", "Capacity", "Created", "Pending",
    "Revoke", "Resend", "Expires", "Availability", "Preferences", "Password", "Two-factor",
    "Identities", "History", "Profile", "Customer", "Attach", "Last activity", "Newest", "Mine",
    "Select all", "Nothing here", "Never", "Default", "Time zone", "Colour", "New", "Add",
    "Remove", "Yes", "Recovery", "Authenticator code", "Activate",
]  # fmt: skip
# English function words no Dutch sentence uses (any case, whole words).
ENGLISH_GLUE = ["the", "your", "you", "and", "with", "this", "have", "not", "from", "yet"]

WORDS_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, ENGLISH_WORDS)) + r")\b")
GLUE_RE = re.compile(r"\b(?:" + "|".join(ENGLISH_GLUE) + r")\b", re.IGNORECASE)
PLACEHOLDER_RE = re.compile(r"%(?:\([^)]*\))?[sd]|%%")

# Every text-bearing attribute on the page, shown or not.
ATTRIBUTE_TEXTS = """() => {
  const out = [];
  const names = ["aria-label", "placeholder", "title", "alt", "data-confirm", "hx-confirm"];
  for (const el of document.querySelectorAll("*")) {
    for (const name of names) {
      const value = el.getAttribute(name);
      if (value) out.push(value);
    }
    if (el.matches("input[type=submit], input[type=button]") && el.value) out.push(el.value);
  }
  return out;
}"""


@cache
def catalogue_phrases() -> tuple[str, ...]:
    """The English phrases (two words or more, around any placeholders) of every msgid that the
    Dutch catalogue translates differently: on a Dutch page none of them may show."""
    phrases = set()
    for entry in parse_po(PO):
        msgid = entry["msgid"]
        translations = [v for k, v in entry.items() if k.startswith("msgstr")]
        if not msgid or msgid in translations:
            continue
        for part in PLACEHOLDER_RE.split(re.sub(r"<[^>]+>", "%s", msgid)):
            part = part.strip(" .,:;…()#“”\N{EM DASH}\N{EN DASH}-")
            if len(part.split()) >= 2 and len(part) >= 8:
                phrases.add(part)
    return tuple(sorted(phrases, key=len, reverse=True))


def english_in(text: str) -> list[str]:
    found = [phrase for phrase in catalogue_phrases() if phrase in text]
    found += WORDS_RE.findall(text)
    found += GLUE_RE.findall(text)
    return sorted(set(found))


def assert_dutch(page, where: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    texts = [page.title(), page.inner_text("body"), *page.evaluate(ATTRIBUTE_TEXTS)]
    found = english_in("\n".join(texts))
    assert not found, f"English on the Dutch page {where} ({page.url}): {found}"


def visit(page, url: str, where: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (where, url, response)
    assert_dutch(page, where)


def dutch_world(agent_app) -> Conversation:
    """Three customers who wrote in Dutch; the first conversation assigned to agent A, labelled,
    urgent, answered, with B's note mentioning A (A's notification); two invitations."""
    first = agent_app.ingest(
        "Hallo, ik heb mijn bestelling 4411 nog niet ontvangen. Kunnen jullie kijken waar het "
        "pakket blijft?",
        contact={"id": "cust-noor", "name": "Noor de Vries", "email": "noor@example.org"},
    )
    agent_app.ingest(
        "Goedemiddag, kan ik mijn abonnement per volgende maand opzeggen?",
        contact={"id": "cust-daan", "name": "Daan Jansen", "email": "daan@example.org"},
    )
    agent_app.ingest(
        "De betaallink in jullie mail werkt niet. Wat moet ik doen?",
        contact={"id": "cust-sanne", "name": "Sanne Bakker", "phone": "+31612345678"},
    )
    owner, a, b = (agent_app.owner.membership, agent_app.agent_a.membership,
                   agent_app.agent_b.membership)  # fmt: skip
    conversation = Conversation.objects.get(pk=first.conversation_id)
    label = Label.objects.create(workspace=agent_app.workspace, name="bezorging", color="#1f5fd1")
    update_conversation(conversation, actor=owner, assignee=a, priority=4, labels=[label])
    outbound.reply(
        conversation, author=a, text="Dag Noor, je pakket is onderweg en komt morgen aan."
    )
    note = outbound.reply(
        conversation,
        author=b,
        text=f"{mention_token(a)} deze klant belde gisteren ook al.",
        kind=MessageKind.NOTE,
    )
    assert notify_mentions(note, actor=b)
    create_invitation(
        agent_app.workspace, email="nieuw@acme.example", role=Role.AGENT, invited_by=owner,
        send=False,
    )  # fmt: skip
    gone, _ = create_invitation(
        agent_app.workspace, email="weg@acme.example", role=Role.AGENT, invited_by=owner,
        send=False,
    )  # fmt: skip
    revoke_invitation(gone)
    conversation.refresh_from_db()
    return conversation


def test_an_agent_who_chose_dutch_sees_every_page_in_dutch(agent_app, browser_pages, screenshot):
    conversation = dutch_world(agent_app)
    user = agent_app.agent_a.user
    user.locale = "nl"  # their own choice wins over the browser's English
    user.save(update_fields=["locale"])
    [page] = browser_pages("agent-a", locale="en")
    url = agent_app.url

    # The inbox, its shortcut sheet and the bulk bar.
    page.goto(url("/w/acme/"))
    harness.wait_connected(page)
    expect(page.locator("#conv-list .conv-item")).to_have_count(3, timeout=LIVE)
    assert_dutch(page, "inbox")
    screenshot(page, "inbox-nl")
    page.keyboard.press("?")
    expect(page.locator("#shortcut-sheet")).to_be_visible()
    assert_dutch(page, "inbox, shortcut sheet")
    page.keyboard.press("Escape")
    page.locator("#list-pane").get_by_text("Alles selecteren").click()
    expect(page.locator("form.bulk")).to_be_visible()
    assert_dutch(page, "inbox, bulk actions")
    page.locator("form.bulk").get_by_role("button", name="Annuleren").click()

    # The conversation: timeline, composer in both modes, every menu open.
    page.goto(url(f"/w/acme/inbox/{conversation.number}/"))
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Olga Owner heeft dit toegewezen aan Anna Agent")
    expect(timeline).to_contain_text("je pakket is onderweg")
    expect(page.locator("#conv-assignee")).to_have_text("Toegewezen aan Anna Agent")
    expect(page.locator("#composer-text")).to_have_attribute("placeholder", "Schrijf een antwoord…")
    page.locator("#composer-text").fill("Dag Noor, ik zoek het voor je uit.")
    screenshot(page, "conversation-nl")
    assert_dutch(page, "conversation")
    page.get_by_role("button", name="Interne notitie").click()
    expect(page.locator("#composer-text")).to_have_attribute(
        "placeholder", "Schrijf een interne notitie…"
    )
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    assert_dutch(page, "conversation, note mode and menus open")

    # Contacts: the list, a contact, its edit and merge pages, the suggested duplicates.
    visit(page, url("/w/acme/contacts/"), "contacts")
    page.get_by_role("link", name="Noor de Vries").first.click()
    expect(page.locator("h1")).to_contain_text("Noor de Vries")
    assert_dutch(page, "contact")
    contact_path = f"/w/acme/contacts/{conversation.contact_id}"
    visit(page, url(f"{contact_path}/edit/"), "contact edit")
    visit(page, url(f"{contact_path}/merge/"), "contact merge")
    visit(page, url("/w/acme/contacts/duplicates/"), "suggested duplicates")

    # Search (a hit, and nothing found), notifications, preferences, the account pages.
    visit(page, url("/w/acme/search/?q=bestelling"), "search")
    expect(page.locator("#search-results")).to_contain_text("Noor de Vries")
    visit(page, url("/w/acme/search/?q=zoekterm"), "search without results")
    visit(page, url("/w/acme/notifications/"), "notifications")
    expect(page.locator("main")).to_contain_text("Bram Agent")
    visit(page, url("/w/acme/me/"), "preferences")
    expect(page.locator("#language")).to_have_value("nl")
    visit(page, url("/accounts/2fa/totp/activate/"), "activate two-factor authentication")
    visit(page, url("/accounts/password/change/"), "change password")


def test_an_owner_with_a_dutch_browser_sees_the_settings_in_dutch(agent_app, browser_pages):
    dutch_world(agent_app)
    [page] = browser_pages("owner", locale="nl")  # no language of their own: the browser's
    url = agent_app.url

    visit(page, url("/w/acme/settings/"), "settings")
    nav = page.get_by_role("navigation", name="Instellingen")
    links = [a.get_attribute("href") for a in nav.get_by_role("link").all()]
    assert len(links) >= 7, links  # workspace, members, invitations, teams, labels, channels, API
    for href in links:
        visit(page, url(href), f"settings {href}")
        if href.endswith("/channels/") or href.endswith("/teams/"):
            # The first channel's or team's own page.
            edit = page.locator("main table a.btn", has_text="Bewerken").first
            edit_href = edit.get_attribute("href")
            visit(page, url(edit_href), f"settings {edit_href}")
    # The rule editor builds its field, operator and action lists in the browser.
    visit(page, url("/w/acme/settings/rules/new/"), "new rule")
    page.get_by_role("button", name="Voorwaarde toevoegen").click()
    page.get_by_role("button", name="Actie toevoegen").click()
    assert_dutch(page, "new rule with a condition and an action")
    visit(page, url("/w/acme/settings/invitations/"), "invitations")
    expect(page.locator("main")).to_contain_text("nieuw@acme.example")
    visit(page, url("/w/acme/"), "the owner's inbox")


def test_the_sign_in_page_is_dutch_for_a_dutch_browser(agent_app, browser_pages):
    [page] = browser_pages("agent-b", locale="nl", login=None)
    visit(page, agent_app.url("/accounts/login/"), "sign in")
    harness.log_in(page, agent_app.server.base_url, agent_app.agent_b.email, harness.PASSWORD)
    page.wait_for_url(agent_app.url("/w/acme/"))
    assert_dutch(page, "inbox after signing in")
