"""The browser harness works against the app as it is: a real server on this pass's test
database, logged-in Chromium pages, the agent websocket from a page, and ingest through the
API channel reaching the database, the REST API and both agents' pages live."""

from __future__ import annotations

import httpx
from django.conf import settings
from playwright.sync_api import expect

from loket.inbox.models import Conversation, Message
from tests.browser import harness

LIVE = 10_000  # ms: a bound on how long a live event may take, not a speed claim

# Collects the realtime events a page's socket receives (app.js re-dispatches them as DOM events).
RECORD_EVENTS = """() => {
  window.__events = [];
  document.addEventListener("loket:event", (e) => window.__events.push(e.detail));
}"""


def redis_channels(prefix: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    try:
        return client.pubsub_channels(f"{prefix}*")
    finally:
        client.close()


def test_server_answers_health_check(agent_app):
    response = httpx.get(agent_app.url("/healthz"), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_signed_in_agent_sees_the_workspace_and_its_socket_connects(
    agent_app, browser_pages, screenshot
):
    [page] = browser_pages("agent-a")
    page.goto(agent_app.url("/w/acme/"))

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Inbox")).to_be_visible()
    expect(nav.get_by_role("link", name="Contacts")).to_be_visible()
    expect(page.locator("body")).to_have_attribute(
        "data-member", str(agent_app.agent_a.membership.pk)
    )
    assert page.evaluate("document.documentElement.lang") == "en"
    harness.wait_connected(page)
    assert page.evaluate("window.Loket.memberId") == agent_app.agent_a.membership.pk

    path = screenshot(page, "harness-workspace-en")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ingested_message_is_stored_and_reaches_both_agents_live(agent_app, browser_pages):
    a, b = browser_pages("agent-a", "agent-b", goto="/w/acme/")
    for page in (a, b):
        page.evaluate(RECORD_EVENTS)

    message = agent_app.ingest("Hallo, waar is mijn bestelling?", message_id="shop-1")

    # Stored: in the database and through the running server's REST API.
    assert message.text == "Hallo, waar is mijn bestelling?"
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.workspace_id == agent_app.workspace.pk
    assert conversation.contact.name == "Noor de Vries"
    listed = agent_app.api.get("/conversations")
    assert listed.status_code == 200, listed.text
    assert message.conversation_id in [c["id"] for c in listed.json()["items"]]

    if settings.REDIS_URL:  # the PostgreSQL pass: the server's sockets listen on Redis
        assert redis_channels(agent_app.server.env["LOKET_CHANNEL_PREFIX"])
    # Live: both agents' sockets deliver it to their pages.
    for page in (a, b):
        page.wait_for_function(
            """(id) => window.__events.some(
                 (e) => e.type === "message.created" && e.message_id === id)""",
            arg=message.pk,
            timeout=LIVE,
        )

    # A repeated delivery is acknowledged and stored once.
    assert agent_app.ingest("Hallo, waar is mijn bestelling?", message_id="shop-1").pk == message.pk
    assert Message.objects.filter(channel=agent_app.channel).count() == 1


def test_real_login_form_and_dutch_browser_language(agent_app, browser_pages):
    [page] = browser_pages("agent-b", locale="nl", login="form")
    # The only workspace of agent B: home sends them straight to its inbox.
    page.wait_for_url(agent_app.url("/w/acme/"))
    assert page.evaluate("document.documentElement.lang") == "nl"
    harness.wait_connected(page)


def test_signed_out_page_is_sent_to_login(agent_app, browser_pages):
    [page] = browser_pages("agent-a", login=None)
    page.goto(agent_app.url("/w/acme/"))
    assert "/accounts/login/" in page.url
    expect(page.locator("input[name=login]")).to_be_visible()


def test_failure_artifacts_are_written(agent_app, browser_pages, tmp_path):
    [page] = browser_pages("agent-a")
    page.goto(agent_app.url("/w/acme/"))
    record = harness.PageRecord("agent-a", page)
    record.watch()
    page.evaluate("console.warn('harness says hi')")

    saved = harness.save_failure_artifacts("test_x-selfcheck", [record], tmp_path)

    assert saved == [
        tmp_path / "test_x-selfcheck-agent-a.png",
        tmp_path / "test_x-selfcheck-agent-a.log",
    ]
    assert saved[0].read_bytes()[:4] == b"\x89PNG"
    log = saved[1].read_text()
    assert "url: " + agent_app.url("/w/acme/") in log
    assert "[warning] harness says hi" in log
