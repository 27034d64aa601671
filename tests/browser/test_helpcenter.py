"""The public help center in a real browser (issue 9): a Dutch reader lands on the Dutch home,
opens an article, switches to its English translation and votes — no JavaScript involved."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import expect

from loket.knowledge.models import Category, HelpCenter
from loket.tenancy.models import Workspace
from tests.helpcenter.conftest import make_article


def test_article_in_dutch_and_english_with_the_language_switcher(
    agent_app, browser_pages, screenshot
):
    workspace = Workspace.objects.get(slug="acme")
    HelpCenter.objects.create(
        workspace=workspace,
        enabled=True,
        titles={"en": "Acme help", "nl": "Acme hulp"},
        brand_color="#0b6e4f",
        locales=["en", "nl"],
    )
    bookings = Category.objects.create(
        workspace=workspace, slug="bookings", names={"en": "Bookings", "nl": "Boekingen"}
    )
    make_article(
        workspace,
        {
            "en": (
                "change-booking",
                "Changing a booking",
                "You can change your booking **up to 24 hours** before departure.\n\n"
                "## Online\n\nOpen *My bookings* and choose *Change*.",
            ),
            "nl": (
                "boeking-wijzigen",
                "Een boeking wijzigen",
                "Je kunt je boeking **tot 24 uur** voor vertrek wijzigen.\n\n"
                "## Online\n\nOpen *Mijn boekingen* en kies *Wijzigen*.",
            ),
        },
        category=bookings,
    )
    (page,) = browser_pages("owner", login=None, locale="nl-NL", java_script_enabled=False)

    page.goto(agent_app.url("/help/acme/"))
    expect(page).to_have_url(re.compile(r"/help/acme/nl/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme hulp")
    page.get_by_role("link", name="Een boeking wijzigen").click()

    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.get_by_role("heading", level=1)).to_have_text("Een boeking wijzigen")
    expect(page.locator("article strong")).to_have_text("tot 24 uur")
    screenshot(page, "helpcenter-article-nl")

    page.locator("nav.hc-languages").get_by_role("link", name="English").click()
    expect(page).to_have_url(re.compile(r"/help/acme/en/a/change-booking/$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Changing a booking")
    page.get_by_role("button", name="Yes").click()
    expect(page.get_by_role("status")).to_have_text("Thank you for your feedback.")
    expect(page.get_by_role("button", name="Yes")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "helpcenter-article-en")

    page.locator("nav.hc-languages").get_by_role("link", name="Nederlands").click()
    expect(page).to_have_url(re.compile(r"/help/acme/nl/a/boeking-wijzigen/$"))


# A 2x2 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)


def test_an_image_added_in_the_editor_shows_in_the_preview_and_the_help_center(
    agent_app, browser_pages
):
    workspace = Workspace.objects.get(slug="acme")
    HelpCenter.objects.create(workspace=workspace, enabled=True, locales=["en"])
    article = make_article(
        workspace, {"en": ("boarding", "Boarding", "Show your ticket at the gate.")}
    )
    (page,) = browser_pages("owner")
    page.goto(agent_app.url(f"/w/acme/settings/knowledge/{article.pk}/?locale=en"))
    body = page.locator("#form-en textarea[name=body]")
    body.click()
    body.press("End")
    page.locator("#form-en input[type=file]").set_input_files(
        files=[{"name": "Gate_map.png", "mimeType": "image/png", "buffer": PNG}]
    )
    expect(page.locator("#form-en [role=status]")).to_have_text("Image added to the text.")
    expect(body).to_have_value(re.compile(r"gate\.\n\n!\[Gate map\]\(image:[0-9a-f]{24}\.png\)\n$"))
    preview = page.locator("#preview-en img[alt='Gate map']")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 2

    page.locator("#form-en").get_by_role("button", name="Publish").click()
    page.goto(agent_app.url("/help/acme/en/a/boarding/"))
    shown = page.locator("article img[alt='Gate map']")
    expect(shown).to_be_visible()
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 2

    # Not an image: the server's reason is shown, the text stays as it was.
    page.goto(agent_app.url(f"/w/acme/settings/knowledge/{article.pk}/?locale=en"))
    before = page.locator("#form-en textarea[name=body]").input_value()
    page.locator("#form-en input[type=file]").set_input_files(
        files=[{"name": "x.svg", "mimeType": "image/svg+xml", "buffer": b"<svg></svg>"}]
    )
    expect(page.locator("#form-en [role=status]")).to_contain_text("PNG, JPEG, WebP and GIF")
    assert page.locator("#form-en textarea[name=body]").input_value() == before
