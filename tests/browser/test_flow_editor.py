"""Issue 8's editor: an admin imports the ferry flow on Settings → Bot flows, edits a step's text,
sees the inline error of a broken link, fixes it, chats with the draft in the test panel (a
choice button, a booking code looked up on a local booking server, the answer) and publishes."""

from __future__ import annotations

import http.server
import json
import re
import threading

import pytest
from playwright.sync_api import expect

from loket.bots import services
from loket.bots.models import Flow
from tests.bots.test_engine import Bookings, ferry_flow


@pytest.fixture
def bookings():
    """The business's booking API (tests.bots.test_engine.Bookings): AB123456 exists."""
    Bookings.delay, Bookings.seen = 0.0, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bookings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_admin_imports_edits_tests_and_publishes_the_ferry_flow(
    agent_app,
    browser_pages,
    screenshot,
    bookings,
    tmp_path,
):
    export = tmp_path / "ferry.json"
    export.write_text(
        json.dumps(
            {
                "format": services.EXPORT_FORMAT,
                "name": "Ferry booking helper",
                "trigger": "new_conversation",
                "handoff_words": ["agent", "medewerker"],
                "definition": ferry_flow(bookings),
            }
        )
    )
    [admin] = browser_pages("owner")
    admin.goto(agent_app.url("/w/acme/settings/"))
    admin.get_by_role("link", name="Bot flows").click()
    admin.get_by_label("Flow export (JSON)").set_input_files(str(export))
    admin.get_by_role("button", name="Import").click()
    expect(admin.locator("h2", has_text="Ferry booking helper")).to_be_visible()
    admin.wait_for_function("() => !!document.querySelector('[x-data=flowEditor]')?._x_dataStack")
    flow = Flow.objects.get(name="Ferry booking helper")
    # The cards follow the flow from its start (on PostgreSQL too, which sorts a JSON's keys).
    cards = admin.locator("[data-step]")
    expect(cards.nth(0)).to_have_attribute("data-step", "welcome")
    expect(cards.nth(1)).to_have_attribute("data-step", "need")
    expect(cards.nth(2)).to_have_attribute("data-step", "code")

    # A step's text, and a step removed that another one still goes to.
    answer = admin.locator('[data-step="answer"]')
    answer.locator('textarea[data-field="text"][data-lang="en"]').fill(
        "Booking {{booking_code}}: the {{ship}} sails at {{departure}}."
    )
    # Renaming a step takes the links to it along; an id in use is refused.
    admin.locator('[data-step="still_there"] input[data-field="id"]').fill("quiet")
    admin.locator('[data-step="still_there"] input[data-field="id"]').press("Tab")
    expect(admin.locator('[data-step="quiet"]')).to_have_count(1)
    admin.locator('[data-step="bye"] input[data-field="id"]').fill("human")
    admin.locator('[data-step="bye"] input[data-field="id"]').press("Tab")
    expect(admin.locator('[data-step="bye"]')).to_contain_text("Another step has that id: human")
    expect(admin.locator('[data-step="bye"] input[data-field="id"]')).to_have_value("bye")
    admin.locator('[data-step="not_found"]').get_by_role("button", name="Remove").click()
    expect(admin.locator('[data-step="not_found"]')).to_have_count(0)
    admin.get_by_role("button", name="Save draft").click()

    lookup = admin.locator('[data-step="lookup"]')
    expect(lookup.locator(".flow-problems.errors.checked")).to_contain_text(
        "goes to “not_found”, which is not a step"
    )
    expect(admin.locator("#flow-publish")).to_be_disabled()
    screenshot(admin, "flow-editor-error", full_page=True)
    flow.refresh_from_db()
    assert "not_found" not in flow.draft["steps"]
    assert flow.draft["steps"]["answer"]["text"] == {
        "en": "Booking {{booking_code}}: the {{ship}} sails at {{departure}}."
    }

    lookup.locator('select[data-link="fail"]').select_option("human")
    admin.get_by_role("button", name="Save draft").click()
    expect(admin.locator('[data-step="lookup"] .flow-problems.errors.checked')).to_be_hidden()
    expect(admin.locator("#flow-publish")).to_be_enabled()
    flow.refresh_from_db()
    assert flow.draft["steps"]["lookup"]["fail"] == "human"
    assert flow.draft["timeout"] == {"minutes": 30, "next": "quiet"}
    assert set(flow.draft["steps"]) == set(ferry_flow(bookings)["steps"]) - {
        "still_there",
        "not_found",
    } | {"quiet"}

    # The test panel talks with the draft.
    admin.wait_for_function("() => !!document.querySelector('[x-data=flowEditor]')?._x_dataStack")
    panel = admin.locator("#flow-test")
    panel.get_by_role("button", name="Start").click()
    chat = panel.get_by_test_id("flow-chat")
    expect(chat).to_contain_text("Hi Olga! I am the ferry helper.")
    expect(chat).to_contain_text("What do you need?")
    chat.get_by_role("button", name="Change booking").click()
    expect(chat).to_contain_text("What is your booking code?")
    panel.get_by_label("Your message").fill("nope")
    panel.get_by_role("button", name="Send").click()
    expect(chat).to_contain_text("That is not a booking code")
    panel.get_by_label("Your message").fill("AB123456")
    panel.get_by_role("button", name="Send").click()
    expect(chat).to_contain_text("Booking AB123456: the MS Texel sails at 14:30.")
    expect(chat.get_by_role("button", name="No, thanks")).to_be_visible()
    screenshot(admin, "flow-test-panel")
    chat.get_by_role("button", name="No, thanks").click()
    expect(chat).to_contain_text("Have a good crossing!")
    expect(chat.locator('[data-who="end"]')).to_be_visible()
    assert flow.sessions.count() == 0  # the test panel keeps nothing

    # Publish saves what is in the editor first.
    admin.locator('[data-step="bye"] textarea[data-field="text"][data-lang="nl"]').fill(
        "Goede overtocht!"
    )
    admin.locator("#flow-publish").click()
    expect(admin.locator("#flow-version")).to_have_text("Published: version 1")
    flow.refresh_from_db()
    assert flow.published.number == 1
    assert flow.published.definition["steps"]["lookup"]["fail"] == "human"
    assert flow.published.definition["steps"]["bye"]["text"] == {
        "en": "Have a good crossing!",
        "nl": "Goede overtocht!",
    }

    admin.get_by_role("link", name="All bot flows").click()
    expect(admin.locator("#flows")).to_contain_text("version 1")


def test_the_flow_pages_are_dutch_for_a_dutch_owner(agent_app, browser_pages):
    """Every step card, the test panel and the figures, in Dutch (tests.browser.test_dutch)."""
    from tests.browser.test_dutch import assert_dutch

    flow = services.create_flow(
        agent_app.workspace,
        name="Veerhulp",
        draft={
            "start": "vraag",
            "language": "nl",
            "steps": {
                "vraag": {
                    "type": "choice",
                    "text": "Waarmee kan ik helpen?",
                    "options": [
                        {"id": "klaar", "title": "Niets", "next": "dag"},
                        {"id": "mens", "title": "Een mens", "next": "mens"},
                    ],
                },
                "dag": {"type": "close", "text": "Fijne overtocht!"},
                "mens": {"type": "handoff", "text": "Ik haal een collega."},
            },
        },
    )
    [page] = browser_pages("owner", locale="nl")
    page.goto(agent_app.url("/w/acme/settings/flows/"))
    assert_dutch(page, "bot flows")
    page.goto(agent_app.url(f"/w/acme/settings/flows/{flow.pk}/"))
    page.wait_for_function("() => !!document.querySelector('[x-data=flowEditor]')?._x_dataStack")
    page.locator("#flow-test").get_by_role("button", name="Starten").click()
    chat = page.get_by_test_id("flow-chat")
    chat.get_by_role("button", name="Niets").click()
    expect(chat).to_contain_text("Fijne overtocht!")
    expect(chat.locator('[data-who="end"]')).to_contain_text("Afgerond")
    for kind in ("message", "choice", "input", "condition", "set", "http", "faq"):
        page.locator("#flow-new-type").select_option(kind)
        page.get_by_role("button", name="Stap toevoegen").click()
    expect(page.locator("[data-step]")).to_have_count(10)
    # The raw JSON view, and back to the cards with an edit made there.
    page.get_by_role("button", name="Bewerken als JSON").click()
    raw = page.locator("#flow-raw")
    expect(raw).to_have_value(re.compile(r'"start": "vraag"'))
    raw.fill(raw.input_value().replace("Fijne overtocht!", "Tot ziens!"))
    page.get_by_role("button", name="Terug naar de kaarten").click()
    expect(page.locator('[data-step="dag"] textarea[data-lang="nl"]')).to_have_value("Tot ziens!")
    assert_dutch(page, "flow editor with every kind of step and a finished test")
