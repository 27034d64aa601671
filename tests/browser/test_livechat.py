"""The live-chat widget in real Chromium (issue 5's must-shows): a host page on another loopback
port embeds the snippet; a visitor fills the pre-chat form and writes; an agent in a second
browser sees it live and replies while the visitor sees them typing; a reload keeps the history;
and the widget changes nothing on a host page with aggressive global CSS."""

from __future__ import annotations

import base64
import http.server
import threading
from contextlib import contextmanager

from playwright.sync_api import expect

from loket.connectors.registry import get_connector
from loket.inbox.models import Message
from loket.inbox.services.channels import create_channel
from tests.browser.test_inbox_live import LIVE, open_conversation
from tests.processes import free_port, wait_until

# A host page that would break any widget that relies on the page's CSS, or leaks its own.
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<style>
  * { box-sizing: content-box !important; font: 31px/2 serif !important; color: #c00 !important;
      margin: 7px !important; }
  iframe { display: none !important; width: 1px !important; height: 1px !important;
           opacity: 0 !important; position: static !important; }
  div, button { border: 5px dashed lime !important; }
</style></head>
<body><h1 id="host-title">Our shop</h1><p id="host-text">Welcome to the shop.</p>
<button id="host-button">Buy</button>
{snippet}
</body></html>"""


@contextmanager
def host_site(snippet: str):
    """A website on its own loopback port (another origin than Loket's)."""
    port = free_port()
    page = HOST_PAGE.replace("{snippet}", snippet).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def open_widget(chromium, site: str):
    """A visitor's browser on the host site with the chat opened: (context, page, frame)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(site)
    widget = page.frame_locator("iframe[title='Chat']")
    widget.locator(".lk-launcher").click()
    return context, page, widget


def live_chat(agent_app, **config):
    channel, _ = create_channel(
        agent_app.workspace,
        get_connector("livechat"),
        name="Website",
        config={
            "title": "Shop support",
            "prechat": {
                "enabled": True,
                "fields": [
                    {"name": "name", "label": "Name", "required": True},
                    {"name": "email", "label": "Email", "type": "email", "required": True},
                ],
            },
            **config,
        },
    )
    return channel


def snippet(agent_app, channel) -> str:
    return f'<script src="{agent_app.url(f"/widget/{channel.uuid}.js")}" async></script>'


def test_a_visitor_and_an_agent_chat_live(agent_app, browser_pages, chromium, screenshot):
    channel = live_chat(agent_app)
    (agent,) = browser_pages("agent-a", goto="/w/acme/")
    with host_site(snippet(agent_app, channel)) as site:
        channel.settings = {**channel.settings, "allowed_origins": [site]}
        channel.save()
        context, visitor, widget = open_widget(chromium, site)
        widget.get_by_label("Name").fill("Emily Visitor")
        widget.get_by_label("Email").fill("emily@visitor.example")
        widget.get_by_role("button", name="Start chat").click()
        widget.locator("textarea").fill("Hi, do you ship to Belgium?")
        widget.locator("textarea").press("Enter")
        expect(widget.locator(".lk-log")).to_contain_text("do you ship to Belgium", timeout=LIVE)

        expect(agent.locator("#conv-list")).to_contain_text("Emily Visitor", timeout=LIVE)
        open_conversation(agent, "Emily Visitor")
        expect(agent.locator("#timeline")).to_contain_text("do you ship to Belgium")
        # The agent has it open: the visitor sees their message was seen.
        expect(widget.locator(".lk-seen")).to_contain_text("Seen", timeout=LIVE)
        agent.locator("#composer-text").press_sequentially("Yes, we", delay=30)
        expect(widget.locator(".lk-typing")).to_contain_text("typing", timeout=LIVE)
        agent.locator("#composer-text").press_sequentially(" do, in 2 days.", delay=10)
        agent.locator("#composer-text").press("Control+Enter")
        expect(widget.locator(".lk-log")).to_contain_text("Yes, we do, in 2 days.", timeout=LIVE)
        screenshot(visitor, "livechat-visitor")

        visitor.reload()
        widget = visitor.frame_locator("iframe[title='Chat']")
        widget.locator(".lk-launcher").click()
        expect(widget.locator(".lk-log")).to_contain_text("do you ship to Belgium", timeout=LIVE)
        expect(widget.locator(".lk-log")).to_contain_text("Yes, we do, in 2 days.")
        stored = Message.objects.get(text="Hi, do you ship to Belgium?")
        assert stored.author_contact.email == "emily@visitor.example"
        context.close()


def test_the_widget_changes_nothing_on_a_host_page(agent_app, chromium):
    channel = live_chat(agent_app)
    measure = r"""() => {
        const box = (id) => JSON.stringify(document.getElementById(id).getBoundingClientRect());
        const style = (id) => getComputedStyle(document.getElementById(id)).cssText
            || [...getComputedStyle(document.getElementById(id))].map(
                (p) => p + ':' + getComputedStyle(document.getElementById(id)).getPropertyValue(p)
            ).join(';');
        return {
            boxes: ['host-title', 'host-text', 'host-button'].map(box),
            styles: ['host-title', 'host-text', 'host-button'].map(style),
            sheets: document.styleSheets.length,
            elements: document.querySelectorAll('body *').length,
            // An iframe is window[0] by the HTML standard; everything else would be a leak.
            globals: Object.keys(window).filter((k) => !/^\d+$/.test(k)),
        };
    }"""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    with host_site("") as bare:
        page.goto(bare)
        before = page.evaluate(measure)
    with host_site(snippet(agent_app, channel)) as site:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(site)
        frame = page.locator("iframe[title='Chat']")
        expect(frame).to_be_visible(timeout=LIVE)  # the host's iframe rules do not hide it
        box = frame.bounding_box()
        assert box["width"] >= 48 and box["height"] >= 48
        page.frame_locator("iframe[title='Chat']").locator(".lk-launcher").click()
        page.wait_for_function(
            "() => document.querySelector(\"iframe[title='Chat']\").getBoundingClientRect()"
            ".height > 300"
        )
        after = page.evaluate(measure)
    # Every request goes to the host site or to Loket: nothing to third parties.
    origins = {agent_app.server.base_url.rstrip("/"), site}
    strays = [url for url in requested if not any(url.startswith(o + "/") for o in origins)]
    assert requested and not strays, strays
    assert after["boxes"] == before["boxes"]
    assert after["styles"] == before["styles"]
    assert after["sheets"] == before["sheets"]  # no stylesheet added to the host
    # The loader's script tag and its one iframe; nothing else in the host's DOM.
    assert after["elements"] == before["elements"] + 2
    assert set(after["globals"]) - set(before["globals"]) == {"Loket"}
    context.close()


def test_a_proactive_message_opens_the_widget_without_taking_focus(agent_app, chromium):
    channel = live_chat(
        agent_app,
        prechat={"enabled": False, "fields": []},
        proactive=[
            {"message": "Looking for shoes? Ask us!", "url_contains": "", "seconds_on_page": 1}
        ],
    )
    with host_site(snippet(agent_app, channel)) as site:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(site)
        page.locator("#host-button").focus()
        widget = page.frame_locator("iframe[title='Chat']")
        expect(widget.locator(".lk-log")).to_contain_text("Looking for shoes?", timeout=LIVE)
        assert page.evaluate("document.activeElement.id") == "host-button"
        # Closing it dismisses the rule: a reload does not open it again.
        widget.locator(".lk-close").click()
        page.reload()
        page.wait_for_timeout(2500)
        frame = page.locator("iframe[title='Chat']")
        assert frame.bounding_box()["height"] < 200  # only the launcher
        context.close()


def test_a_visitor_sends_an_image_and_the_agent_sees_it(
    agent_app, browser_pages, chromium, tmp_path
):
    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    photo = tmp_path / "damage.png"
    photo.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        )
    )
    (agent,) = browser_pages("agent-a", goto="/w/acme/")
    with host_site(snippet(agent_app, channel)) as site:
        context, _visitor, widget = open_widget(chromium, site)
        widget.locator("textarea").fill("The box arrived like this")
        widget.locator("input[type=file]").set_input_files(str(photo))
        expect(widget.locator(".lk-log img[alt='damage.png']")).to_be_visible(timeout=LIVE)
        expect(agent.locator("#conv-list a.conv-link").first).to_be_visible(timeout=LIVE)
        agent.locator("#conv-list a.conv-link").first.click()
        expect(agent.locator("#timeline")).to_contain_text(
            "The box arrived like this", timeout=LIVE
        )
        expect(agent.locator("#timeline img[alt='damage.png']")).to_be_visible(timeout=LIVE)
        context.close()


def test_the_visitor_rates_a_resolved_chat(agent_app, browser_pages, chromium):
    from loket.inbox.models import Conversation, SatisfactionRating

    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    with host_site(snippet(agent_app, channel)) as site:
        context, _visitor, widget = open_widget(chromium, site)
        widget.locator(".lk-composer textarea").fill("Thanks, that was all")
        widget.locator(".lk-composer textarea").press("Enter")
        expect(widget.locator(".lk-log")).to_contain_text("that was all", timeout=LIVE)
        # The bubble shows at once; wait until the server has stored the message.
        conversation = wait_until(
            lambda: Conversation.objects.filter(channel=channel).first(), timeout=LIVE / 1000
        )
        # Resolved by an agent through the server, whose events reach the visitor's socket.
        answer = agent_app.api.patch(
            f"/conversations/{conversation.pk}", json={"status": "resolved"}
        )
        assert answer.status_code == 200, answer.text
        form = widget.get_by_role("group", name="How did we do?")
        expect(form).to_be_visible(timeout=LIVE)
        form.get_by_role("button", name="4 of 5").click()
        form.get_by_role("button", name="Send rating").click()
        expect(widget.locator(".lk-log")).to_contain_text(
            "Thank you for your rating!", timeout=LIVE
        )
        assert SatisfactionRating.objects.get(conversation=conversation).rating == 4
        context.close()


def test_when_a_proxy_blocks_websockets_the_chat_long_polls(agent_app, browser_pages, chromium):
    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    (agent,) = browser_pages("agent-a", goto="/w/acme/")
    with host_site(snippet(agent_app, channel)) as site:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        # Every widget websocket is refused, as by a proxy that does not pass upgrades.
        context.route_web_socket("**/ws/widget/**", lambda socket: socket.close())
        page = context.new_page()
        page.goto(site)
        widget = page.frame_locator("iframe[title='Chat']")
        widget.locator(".lk-launcher").click()
        widget.locator(".lk-composer textarea").fill("Polling works too?")
        widget.locator(".lk-composer textarea").press("Enter")
        expect(agent.locator("#conv-list")).to_contain_text("Polling works", timeout=LIVE * 3)
        agent.locator("#conv-list a.conv-link").first.click()
        expect(agent.locator("#timeline")).to_contain_text("Polling works too?", timeout=LIVE)
        agent.locator("#composer-text").fill("It does.")
        agent.locator("#composer-text").press("Control+Enter")
        expect(widget.locator(".lk-log")).to_contain_text("It does.", timeout=LIVE * 4)
        context.close()
