"""The live-chat widget suggests help-center articles before the visitor writes (issue 9), in
real Chromium on a host page of another origin: typing a question shows the matching article
with its link (a new tab on the help center), keystrokes are debounced into few requests, and
the list goes once the message is sent."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from loket.knowledge.models import HelpCenter
from tests.browser.test_inbox_live import LIVE
from tests.browser.test_livechat import host_site, live_chat, open_widget, snippet
from tests.knowledge.test_retrieval import publish


def test_typing_a_question_suggests_an_article(agent_app, chromium, screenshot):
    HelpCenter.objects.create(
        workspace=agent_app.workspace, enabled=True, titles={"en": "Acme help"}, locales=["en"]
    )
    for title, body in (
        (
            "Travelling with pets",
            "Dogs and cats travel free on all our ferries. Keep your dog on a lead on the car "
            "deck and in the lounges.",
        ),
        (
            "Refunds for cancelled trips",
            "If you cancel at least 24 hours before departure you get your money back.",
        ),
    ):
        publish(agent_app.workspace, {"en": (title, body)}, False)
    channel = live_chat(agent_app, prechat={"enabled": False, "fields": []})
    with host_site(snippet(agent_app, channel)) as site:
        context, visitor, widget = open_widget(chromium, site)
        asked = []
        visitor.on("request", lambda r: asked.append(r.url) if "suggest.json" in r.url else None)
        box = widget.locator(".lk-composer textarea")
        box.press_sequentially("Can I take my dog on the ferry?", delay=25)

        suggestions = widget.get_by_role("region", name="Articles that may help")
        link = suggestions.get_by_role("link", name=re.compile("Travelling with pets"))
        expect(link).to_be_visible(timeout=LIVE)
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute(
            "href", agent_app.url("/help/acme/en/a/travelling-with-pets/")
        )
        expect(suggestions).to_contain_text("Dogs and cats travel free")
        assert 1 <= len(asked) <= 2, asked  # debounced: not one request per keystroke
        screenshot(visitor, "widget-suggestions")

        with context.expect_page() as opened:
            link.click()
        article = opened.value
        article.wait_for_load_state()
        expect(article.get_by_role("heading", level=1)).to_have_text("Travelling with pets")
        article.close()

        box.press("Enter")  # the visitor writes anyway: the suggestions go
        expect(widget.locator(".lk-log")).to_contain_text("Can I take my dog on the ferry?")
        expect(suggestions).to_be_hidden()
        box.fill("and my cat?")
        visitor.wait_for_timeout(700)
        expect(suggestions).to_be_hidden()  # only before the first message
        context.close()
