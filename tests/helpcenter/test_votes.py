"""“Was this helpful?”: one vote per visitor and translation, a changed vote moves the counts."""

from __future__ import annotations

import pytest
from django.test import Client

from loket.knowledge.models import ArticleVote
from loket.web.helpcenter.views import VISITOR_COOKIE

pytestmark = pytest.mark.django_db

URL = "/help/acme/en/a/change-booking/vote/"


def counts(article, locale="en"):
    row = article.translations.get(locale=locale)
    return row.helpful_yes, row.helpful_no


def test_one_vote_per_visitor_and_a_change_moves_the_counts(client, help_center, change_booking):
    response = client.post(URL, {"helpful": "yes"})
    assert response.status_code == 303
    assert response["Location"] == "/help/acme/en/a/change-booking/?voted=1#feedback"
    cookie = response.cookies[VISITOR_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/help/acme/"
    assert counts(change_booking) == (1, 0)

    client.post(URL, {"helpful": "yes"})  # the same visitor again
    assert counts(change_booking) == (1, 0)
    client.post(URL, {"helpful": "no"})  # changes their mind
    assert counts(change_booking) == (0, 1)
    assert ArticleVote.objects.count() == 1
    vote = ArticleVote.objects.get()
    assert vote.helpful is False and len(vote.voter) == 64
    assert client.cookies[VISITOR_COOKIE].value not in vote.voter  # stored hashed only

    page = client.get("/help/acme/en/a/change-booking/?voted=1")
    html = page.content.decode()
    assert 'value="no" aria-pressed="true"' in html and "Thank you for your feedback." in html
    assert not page.cookies  # reading the page sets nothing

    other = Client()  # another visitor
    other.post(URL, {"helpful": "yes"})
    assert counts(change_booking) == (1, 1)

    # The Dutch translation is voted on separately.
    client.post("/help/acme/nl/a/boeking-wijzigen/vote/", {"helpful": "yes"})
    assert counts(change_booking, "nl") == (1, 0)
    assert counts(change_booking) == (1, 1)


def test_bad_votes_are_refused(client, help_center, change_booking):
    assert client.post(URL, {"helpful": "maybe"}).status_code == 400
    cross_site = client.post(URL, {"helpful": "yes"}, HTTP_ORIGIN="https://evil.example")
    assert cross_site.status_code == 403
    assert client.get(URL).status_code == 405
    assert client.post("/help/acme/en/a/nope/vote/", {"helpful": "yes"}).status_code == 404
    assert counts(change_booking) == (0, 0)
    same_site = client.post(URL, {"helpful": "yes"}, HTTP_ORIGIN="http://testserver")
    assert same_site.status_code == 303
    assert counts(change_booking) == (1, 0)
