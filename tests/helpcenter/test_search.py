"""Search, related articles and the widget's suggestions over the real retrieval (an embedding
model loads once per test process: the tests that need it are here, and few)."""

from __future__ import annotations

import pytest

from loket.knowledge.indexing import reindex_article
from loket.knowledge.models import SearchTerm
from tests.helpcenter.conftest import make_article

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(workspace, bookings, change_booking):
    articles = [
        change_booking,
        make_article(
            workspace,
            {
                "en": (
                    "cancel-booking",
                    "Cancelling a booking",
                    "Cancel a booking in *My bookings*; the refund follows within 5 days.",
                ),
                "nl": (
                    "boeking-annuleren",
                    "Een boeking annuleren",
                    "Annuleer een boeking via *Mijn boekingen*; "
                    "je krijgt binnen 5 dagen je geld terug.",
                ),
            },
            category=bookings,
        ),
        make_article(
            workspace,
            {
                "en": (
                    "pets",
                    "Travelling with pets",
                    "Dogs and cats travel on the car deck in their own cage.",
                ),
                "nl": (
                    "huisdieren",
                    "Reizen met huisdieren",
                    "Honden en katten reizen mee op het autodek in een eigen bench.",
                ),
            },
        ),
        make_article(
            workspace,
            {
                "en": (
                    "booking-fees",
                    "Fees for changing a booking",
                    "Changing or cancelling a booking costs 10 euro.",
                )
            },
            internal=True,
        ),
    ]
    for article in articles:
        reindex_article(article.pk)
    return articles


def test_search_shows_public_hits_and_records_terms(client, help_center, library):
    for query in ["How do I cancel my booking?", "  how do I   CANCEL my booking?  "]:
        response = client.get("/help/acme/en/search/", {"q": query})
        assert response.status_code == 200
    html = response.content.decode()
    assert '<meta name="robots" content="noindex">' in html
    assert 'href="/help/acme/en/a/cancel-booking/">Cancelling a booking</a>' in html
    assert "Fees for changing" not in html  # internal
    term = SearchTerm.objects.get(workspace=help_center.workspace, locale="en")
    assert (term.query, term.source, term.searches, term.misses) == (
        "how do i cancel my booking?",
        "helpcenter",
        2,
        0,
    )

    # Nothing near enough: a miss.
    for _ in range(2):
        response = client.get("/help/acme/en/search/", {"q": "WiFi   password"})
        assert "No articles found" in response.content.decode()
    miss = SearchTerm.objects.get(query="wifi password")
    assert (miss.searches, miss.misses) == (2, 2)

    # Dutch page, Dutch translation shown.
    response = client.get("/help/acme/nl/search/", {"q": "huisdieren meenemen"})
    assert (
        'href="/help/acme/nl/a/huisdieren/">Reizen met huisdieren</a>' in response.content.decode()
    )


def test_article_page_shows_related_articles(client, help_center, library):
    html = client.get("/help/acme/en/a/change-booking/").content.decode()
    related = html.split('id="related-title"', 1)[1].split("</aside>", 1)[0]
    assert 'href="/help/acme/en/a/cancel-booking/"' in related
    assert "change-booking" not in related  # never itself
    assert "booking-fees" not in related  # internal
    assert related.count("<li>") <= 3


def test_suggest_json_for_the_widget(client, help_center, library):
    response = client.get("/help/acme/nl/suggest.json", {"q": "mijn boeking annuleren"})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert not response.cookies
    data = response.json()
    assert 1 <= len(data["results"]) <= 3
    first = data["results"][0]
    assert first["title"] == "Een boeking annuleren"
    assert first["url"].endswith("/help/acme/nl/a/boeking-annuleren/")
    assert first["url"].startswith("http")
    assert "geld terug" in first["snippet"]
    assert all("booking-fees" not in r["url"] for r in data["results"])
    # Too short to suggest anything; the widget's partial queries are not counted as searches.
    assert client.get("/help/acme/nl/suggest.json", {"q": "bo"}).json()["results"] == []
    assert not SearchTerm.objects.exists()
