"""Hybrid retrieval over published passages (loket.knowledge.retrieval), with the real offline
embedding model: the right article for English, Dutch and cross-language questions, the
reader's own translation preferred, internal articles only when asked, drafts never, another
workspace's articles never, and no answer when the evidence is weak."""

from __future__ import annotations

import pytest
from django.utils import timezone

from loket.knowledge import indexing, retrieval
from loket.knowledge.models import Article, ArticleTranslation, Passage, TranslationStatus
from tests import factories

ARTICLES = {
    "pets": (
        {
            "en": (
                "Travelling with pets",
                "Dogs and cats travel free on all our ferries. Keep "
                "your dog on a lead on the car deck and in the lounges. Assistance dogs are "
                "always welcome in the restaurant.",
            ),
            "nl": (
                "Reizen met huisdieren",
                "Honden en katten reizen gratis mee op al onze "
                "veerboten. Houd je hond aangelijnd op het autodek en in de salons. "
                "Hulphonden zijn altijd welkom in het restaurant.",
            ),
        },
        False,
    ),
    "refund": (
        {
            "en": (
                "Refunds for cancelled trips",
                "If you cancel at least 24 hours before "
                "departure you get your money back, minus €5 administration costs. Refunds "
                "are paid to the card you paid with within 10 working days.",
            ),
            "nl": (
                "Geld terug bij annulering",
                "Annuleer je minstens 24 uur voor vertrek, dan "
                "krijg je je geld terug, min €5 administratiekosten. We storten het bedrag "
                "binnen 10 werkdagen terug op de kaart waarmee je betaalde.",
            ),
        },
        False,
    ),
    "bikes": (
        {
            "en": (
                "Bringing a bicycle",
                "A bicycle ticket costs €8.50 return. E-bikes are "
                "allowed; remove the battery if the crew asks. Tandems and cargo bikes need "
                "a reservation.",
            ),
        },
        False,
    ),
    "voucher": (
        {
            "en": (
                "Issuing a goodwill voucher",
                "Agents may issue a goodwill voucher of up to "
                "€25 after a delay of more than an hour. Record the booking code in the "
                "voucher note.",
            ),
        },
        True,
    ),
}


def publish(workspace, texts: dict, internal: bool) -> Article:
    article = Article.objects.create(workspace=workspace, internal=internal)
    for locale, (title, body) in texts.items():
        ArticleTranslation.objects.create(
            workspace=workspace,
            article=article,
            locale=locale,
            slug=title.lower().replace(" ", "-"),
            title=title,
            body=body,
            status=TranslationStatus.PUBLISHED,
            published_at=timezone.now(),
        )
    indexing.reindex_article(article.pk)
    return article


@pytest.fixture
def kb(workspace):
    return {key: publish(workspace, texts, internal) for key, (texts, internal) in ARTICLES.items()}


def test_the_right_article_in_either_language_and_across_languages(workspace, kb):
    assert retrieval.search(workspace.pk, "can I take my dog on the boat?")[0].article_id == (
        kb["pets"].pk
    )
    assert retrieval.search(workspace.pk, "mag mijn hond mee op de boot?")[0].article_id == (
        kb["pets"].pk
    )
    # Only an English article about bikes: a Dutch question still finds it.
    hits = retrieval.search(workspace.pk, "wat kost een fietskaartje?", locale="nl")
    assert hits[0].article_id == kb["bikes"].pk and hits[0].locale == "en"


def test_the_readers_own_translation_is_the_one_returned(workspace, kb):
    dutch = retrieval.search(workspace.pk, "how do I get my money back?", locale="nl")[0]
    assert (dutch.article_id, dutch.locale) == (kb["refund"].pk, "nl")
    english = retrieval.search(workspace.pk, "how do I get my money back?", locale="en")[0]
    assert (english.article_id, english.locale) == (kb["refund"].pk, "en")


def test_internal_articles_only_for_agents_and_drafts_never(workspace, kb):
    question = "can I give the customer a voucher for the delay?"
    assert kb["voucher"].pk not in [h.article_id for h in retrieval.search(workspace.pk, question)]
    for_agents = retrieval.search(workspace.pk, question, include_internal=True)
    assert for_agents[0].article_id == kb["voucher"].pk
    ArticleTranslation.objects.filter(article=kb["pets"]).update(status=TranslationStatus.WITHDRAWN)
    indexing.reindex_article(kb["pets"].pk)
    assert not Passage.objects.filter(article=kb["pets"]).exists()
    found = [h.article_id for h in retrieval.search(workspace.pk, "can my dog come along?")]
    assert kb["pets"].pk not in found


def test_another_workspaces_articles_are_never_found(workspace, kb):
    other = factories.workspace("other")
    assert retrieval.search(other.pk, "can I take my dog on the boat?") == []
    publish(other, {"en": ARTICLES["pets"][0]["en"]}, False)
    hits = retrieval.search(workspace.pk, "can I take my dog on the boat?", limit=10)
    assert {h.article_id for h in hits} <= {a.pk for a in kb.values()}


def test_an_answer_only_when_sure(workspace, kb):
    sure = retrieval.answer(workspace.pk, "Is it free to bring my dog on the ferry?")
    assert sure.text and "Dogs and cats travel free" in sure.text
    assert sure.hit.article_id == kb["pets"].pk
    unsure = retrieval.answer(workspace.pk, "What is the weather like on Texel tomorrow?")
    assert unsure.text is None
    assert unsure.confidence < retrieval.ANSWER_THRESHOLD
    assert retrieval.answer(workspace.pk, "   ").text is None
