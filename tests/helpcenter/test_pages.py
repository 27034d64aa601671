"""The public help center's pages: what is shown, in which language, and what is not."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from loket.knowledge.models import Article, HelpCenter, TranslationStatus
from tests import factories
from tests.helpcenter.conftest import make_article

pytestmark = pytest.mark.django_db

BASE = f"{settings.LOKET_PUBLIC_URL}/help/acme"


def links(html: str, rel: str) -> list[dict[str, str]]:
    found = []
    for tag in re.findall(r"<link [^>]*>", html):
        if f'rel="{rel}"' in tag:
            found.append(dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag)))
    return found


def test_article_in_english_and_dutch_with_canonical_and_hreflang(
    client, help_center, change_booking
):
    response = client.get("/help/acme/en/a/change-booking/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "<title>Changing a booking · Acme help</title>" in html
    assert '<meta name="description" content="You can change your booking up to 24 hours' in html
    assert "<strong>up to 24 hours</strong>" in html  # Markdown rendered
    assert [link["href"] for link in links(html, "canonical")] == [f"{BASE}/en/a/change-booking/"]
    alternates = {link["hreflang"]: link["href"] for link in links(html, "alternate")}
    assert alternates == {
        "en": f"{BASE}/en/a/change-booking/",
        "nl": f"{BASE}/nl/a/boeking-wijzigen/",
        "x-default": f"{BASE}/en/a/change-booking/",
    }
    # The language switcher leads to the same article's Dutch translation.
    assert 'href="/help/acme/nl/a/boeking-wijzigen/" hreflang="nl" lang="nl"' in html
    assert response["Content-Language"] == "en"
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
    assert "<script" not in html and " style=" not in html
    assert 'href="/help/acme/brand.css?v=' in html

    response = client.get("/help/acme/nl/a/boeking-wijzigen/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="nl">' in html
    assert "<title>Een boeking wijzigen · Acme hulp</title>" in html
    assert [link["href"] for link in links(html, "canonical")] == [f"{BASE}/nl/a/boeking-wijzigen/"]
    assert 'href="/help/acme/en/a/change-booking/" hreflang="en" lang="en"' in html
    assert response["Content-Language"] == "nl"
    change_booking.refresh_from_db()
    assert change_booking.views == 2


def test_home_and_category_list_public_articles_only(client, help_center, change_booking, bookings):
    make_article(
        help_center.workspace,
        {"en": ("agent-refunds", "Refund rules for agents", "Internal.")},
        category=bookings,
        internal=True,
    )
    make_article(
        help_center.workspace,
        {"en": ("new-ferry", "Our new ferry", "Soon.")},
        category=bookings,
        status=TranslationStatus.DRAFT,
    )
    home = client.get("/help/acme/en/")
    assert home.status_code == 200
    html = home.content.decode()
    assert 'href="/help/acme/en/c/bookings/">Bookings</a>' in html
    assert 'href="/help/acme/en/a/change-booking/">Changing a booking</a>' in html
    assert 'role="search"' in html and 'action="/help/acme/en/search/"' in html
    assert "Refund rules" not in html and "new ferry" not in html
    alternates = {link["hreflang"]: link["href"] for link in links(html, "alternate")}
    assert alternates["nl"] == f"{BASE}/nl/"

    page = client.get("/help/acme/nl/c/bookings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Boekingen</h1>" in html
    assert 'href="/help/acme/nl/a/boeking-wijzigen/">Een boeking wijzigen</a>' in html
    assert [link["href"] for link in links(html, "canonical")] == [f"{BASE}/nl/c/bookings/"]

    # The root sends the reader to the home in their language.
    response = client.get("/help/acme/", HTTP_ACCEPT_LANGUAGE="nl-NL,nl;q=0.9")
    assert response.status_code == 302 and response["Location"] == "/help/acme/nl/"


@pytest.mark.parametrize(
    "kind", ["draft", "withdrawn", "internal", "other workspace", "locale not offered"]
)
def test_what_is_not_public_is_404(client, help_center, kind):
    workspace = help_center.workspace
    url = "/help/acme/en/a/hidden/"
    if kind == "draft":
        make_article(workspace, {"en": ("hidden", "Hidden", "x")}, status=TranslationStatus.DRAFT)
    elif kind == "withdrawn":
        make_article(
            workspace, {"en": ("hidden", "Hidden", "x")}, status=TranslationStatus.WITHDRAWN
        )
    elif kind == "internal":
        make_article(workspace, {"en": ("hidden", "Hidden", "x")}, internal=True)
    elif kind == "other workspace":
        other = factories.workspace("globex")
        HelpCenter.objects.create(workspace=other, enabled=True)
        make_article(other, {"en": ("hidden", "Hidden", "x")})
        assert client.get("/help/globex/en/a/hidden/").status_code == 200
    else:
        make_article(workspace, {"de": ("hidden", "Versteckt", "x")})
        url = "/help/acme/de/a/hidden/"
    response = client.get(url)
    assert response.status_code == 404
    assert "Hidden" not in response.content.decode()
    assert response["Content-Security-Policy"]  # the help center's own not-found page
    assert not Article.objects.filter(workspace=workspace, views__gt=0).exists()


def test_a_disabled_or_missing_help_center_is_404(client, help_center, change_booking):
    assert client.get("/help/nobody/en/").status_code == 404
    help_center.enabled = False
    help_center.save()
    assert client.get("/help/acme/en/").status_code == 404
    assert client.get("/help/acme/en/a/change-booking/").status_code == 404


def test_public_pages_need_no_login_and_set_no_cookie(client, help_center, change_booking):
    for url in [
        "/help/acme/en/",
        "/help/acme/en/c/bookings/",
        "/help/acme/en/a/change-booking/",
        "/help/acme/nl/search/",
        "/help/acme/en/a/nope/",
    ]:
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert not response.cookies, (url, response.cookies)
        assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_brand_colour_stylesheet(client, help_center):
    response = client.get("/help/acme/brand.css")
    assert response.status_code == 200
    assert response.content.decode() == ":root{--hc-brand:#aa3300;}\n"
    assert response["Content-Type"].startswith("text/css")
    # A value that got past the form's validation (7 characters fit the column on every
    # database) is still never written into the stylesheet.
    HelpCenter.objects.filter(pk=help_center.pk).update(brand_color="red;}b{")
    assert client.get("/help/acme/brand.css").content == b""
