"""Managing the knowledge base: categories, articles, drafts and publishing (with the index job
in the same transaction), validation, permissions and workspace scoping."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from loket.knowledge import retrieval, services
from loket.knowledge.models import Article, ArticleTranslation, Category, TranslationStatus
from loket.knowledge.tasks import index_article
from loket.tenancy.services import NotAllowed
from tests import factories
from tests.connectors.providers import run_tasks


def index_jobs(article_id: int | None = None) -> list[DBTaskResult]:
    rows = DBTaskResult.objects.filter(task_path=index_article.module_path)
    return [r for r in rows if article_id is None or r.args_kwargs["args"] == [article_id]]


def test_publish_enqueues_the_index_job_and_retrieval_then_finds_the_article(
    transactional_db, workspace, owner
):
    article = services.create_article(
        workspace,
        locale="en",
        title="Bringing your dog on the ferry",
        body="Dogs travel free on the car deck.\n\n## On a lead\n\nKeep your dog on a lead.",
        actor=owner,
    )
    translation = article.translations.get()
    assert translation.status == TranslationStatus.DRAFT and translation.title == ""
    assert translation.slug == "bringing-your-dog-on-the-ferry"
    assert index_jobs() == []  # a draft is nothing retrieval may find

    services.publish(translation, actor=owner)
    translation.refresh_from_db()
    assert translation.status == TranslationStatus.PUBLISHED
    assert translation.title == "Bringing your dog on the ferry"
    assert translation.body.startswith("Dogs travel free") and translation.published_at
    assert len(index_jobs(article.pk)) == 1

    run_tasks()
    hits = retrieval.search(workspace.pk, "can I take my dog on the ferry", locale="en")
    assert hits and hits[0].article_id == article.pk and hits[0].locale == "en"

    # Withdrawn: re-indexed, and retrieval no longer finds it.
    services.withdraw(translation, actor=owner)
    assert translation.status == TranslationStatus.WITHDRAWN
    assert len(index_jobs(article.pk)) == 2
    run_tasks()
    assert [
        h for h in retrieval.search(workspace.pk, "dog ferry") if h.article_id == article.pk
    ] == []


def test_a_rolled_back_publish_leaves_neither_the_text_nor_the_job(workspace, owner):
    article = services.create_article(workspace, locale="en", title="Refunds", body="Yes.")
    translation = article.translations.get()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.publish(translation, actor=owner)
        assert len(index_jobs(article.pk)) == 1
        raise RuntimeError("the request failed after publishing")
    translation.refresh_from_db()
    assert translation.status == TranslationStatus.DRAFT and translation.title == ""
    assert index_jobs() == []


def test_every_change_retrieval_sees_enqueues_the_job(workspace, owner):
    article = services.create_article(workspace, locale="en", title="Opening hours", body="9-5")
    services.save_draft(article, "nl", title="Openingstijden", body="9-17", actor=owner)
    assert index_jobs() == []  # drafts are not indexed
    services.update_article(article, internal=False, actor=owner)
    assert index_jobs() == []  # no change of internal
    services.update_article(article, internal=True, actor=owner)
    assert article.internal and len(index_jobs(article.pk)) == 1
    services.delete_translation(services.translation_of(article, "nl"), actor=owner)
    assert len(index_jobs(article.pk)) == 2
    assert list(article.translations.values_list("locale", flat=True)) == ["en"]
    services.delete_article(article, actor=owner)
    assert len(index_jobs(article.pk)) == 3
    assert not Article.objects.filter(pk=article.pk).exists()


def test_drafts_keep_the_published_text_and_slugs_are_unique_per_locale(workspace, owner):
    first = services.create_article(workspace, locale="en", title="Pets on board", body="a")
    second = services.create_article(workspace, locale="en", title="Pets on board!", body="b")
    dutch = services.save_draft(second, "nl", title="Pets on board", body="c", actor=owner)
    slugs = [t.slug for t in ArticleTranslation.objects.order_by("pk")]
    assert slugs == ["pets-on-board", "pets-on-board-2", "pets-on-board"]
    assert dutch.locale == "nl" and dutch.article_id == second.pk

    translation = first.translations.get()
    services.publish(translation, actor=owner)
    services.save_draft(first, "en", title="Animals on board", body="new text", actor=owner)
    translation.refresh_from_db()
    assert (translation.title, translation.body) == ("Pets on board", "a")
    assert (translation.draft_title, translation.draft_body) == ("Animals on board", "new text")
    assert translation.slug == "pets-on-board"  # published: the link stays until publishing
    assert services.has_draft_changes(translation)
    services.publish(translation, actor=owner)
    assert translation.slug == "animals-on-board" and translation.title == "Animals on board"
    assert not services.has_draft_changes(translation)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": ""}, "an article needs a title of up to 300 characters"),
        ({"title": "x" * 301}, "an article needs a title of up to 300 characters"),
        ({"locale": "English"}, "“English” is not a language code such as en, nl or nl-be"),
        ({"body": "x" * 200_001}, "an article's text is at most 200,000 characters"),
    ],
)
def test_invalid_articles_are_refused_with_a_message(workspace, owner, fields, message):
    values = {"locale": "en", "title": "Fine", "body": "", **fields}
    with pytest.raises(services.InvalidArticle) as caught:
        services.create_article(workspace, actor=owner, **values)
    assert str(caught.value) == message
    assert not Article.objects.exists()


def test_invalid_categories_and_a_category_of_another_workspace(workspace, owner):
    with pytest.raises(services.InvalidCategory) as caught:
        services.create_category(workspace, names={"en": "  "}, actor=owner)
    assert str(caught.value) == "a category needs a name in at least one language"
    with pytest.raises(services.InvalidKnowledge):
        services.create_category(workspace, names={"english": "Bookings"}, actor=owner)
    other = factories.workspace("bravo")
    foreign = services.create_category(other, names={"en": "Theirs"})
    with pytest.raises(services.InvalidArticle) as caught:
        services.create_article(
            workspace, locale="en", title="Mine", category=foreign.pk, actor=owner
        )
    assert str(caught.value) == "that category is not in this workspace"
    article = services.create_article(workspace, locale="en", title="Mine")
    with pytest.raises(services.InvalidArticle):
        services.update_article(article, category=foreign.pk, actor=owner)
    article.refresh_from_db()
    assert article.category_id is None


def test_categories_slugs_order_move_and_delete(workspace, owner):
    bookings = services.create_category(
        workspace, names={"en": "Bookings", "nl": "Boekingen"}, actor=owner
    )
    again = services.create_category(workspace, names={"en": "Bookings"}, actor=owner)
    assert (bookings.slug, again.slug) == ("bookings", "bookings-2")
    with pytest.raises(services.InvalidCategory):
        services.update_category(again, slug="bookings", actor=owner)
    services.update_category(again, names={"en": "Pets"}, slug="pets", actor=owner)
    services.reorder_categories(workspace, [again.pk, bookings.pk], actor=owner)
    assert list(services.categories_of(workspace.pk)) == [again, bookings]

    article = services.create_article(
        workspace, locale="en", title="Cats", category=bookings, actor=owner
    )
    services.update_article(article, category=again.pk, actor=owner)
    assert Article.objects.get(pk=article.pk).category_id == again.pk
    services.delete_category(again, actor=owner)
    assert Article.objects.get(pk=article.pk).category_id is None
    assert not Category.objects.filter(pk=again.pk).exists()


def test_an_agent_may_read_but_not_change(workspace, owner, agent):
    category = services.create_category(workspace, names={"en": "Bookings"}, actor=owner)
    article = services.create_article(workspace, locale="en", title="Refunds", actor=owner)
    translation = article.translations.get()
    refused = [
        lambda: services.create_category(workspace, names={"en": "X"}, actor=agent),
        lambda: services.update_category(category, names={"en": "X"}, actor=agent),
        lambda: services.delete_category(category, actor=agent),
        lambda: services.create_article(workspace, locale="en", title="X", actor=agent),
        lambda: services.save_draft(article, "en", title="X", body="", actor=agent),
        lambda: services.publish(translation, actor=agent),
        lambda: services.delete_translation(translation, actor=agent),
        lambda: services.update_article(article, internal=True, actor=agent),
        lambda: services.delete_article(article, actor=agent),
        lambda: services.reorder_articles(workspace, [article.pk], actor=agent),
    ]
    for change in refused:
        with pytest.raises(NotAllowed, match="Only owners and admins can change the knowledge"):
            change()
    translation.refresh_from_db()
    assert translation.status == TranslationStatus.DRAFT and translation.draft_title == "Refunds"
    assert Category.objects.get(pk=category.pk).names == {"en": "Bookings"}
    assert [a.pk for a in services.articles_of(workspace.pk)] == [article.pk]

    # A member of another workspace cannot change this one's rows either.
    outsider = factories.owner_of(factories.workspace("bravo"))
    with pytest.raises(NotAllowed):
        services.publish(translation, actor=outsider)


def test_selectors_filter_and_stay_in_their_workspace(workspace, owner):
    bookings = services.create_category(workspace, names={"en": "Bookings"})
    refund = services.create_article(
        workspace, locale="en", title="Refunds", body="Money back in 14 days", category=bookings
    )
    services.save_draft(refund, "nl", title="Terugbetaling", body="Geld terug", actor=owner)
    services.publish(services.translation_of(refund, "en"))
    pets = services.create_article(workspace, locale="nl", title="Huisdieren", body="Honden")
    other = factories.workspace("bravo")
    theirs = services.create_article(other, locale="en", title="Refunds", body="Money")

    def ids(**filters):
        return [a.pk for a in services.articles_of(workspace.pk, **filters)]

    assert ids() == [refund.pk, pets.pk]
    assert ids(category_id=bookings.pk) == [refund.pk]
    assert ids(locale="nl") == [refund.pk, pets.pk]
    assert ids(locale="en", status="published") == [refund.pk]
    assert ids(locale="nl", status="published") == []
    assert ids(text="money BACK") == [refund.pk]
    assert ids(text="honden") == [pets.pk]
    found = services.get_article(workspace.pk, refund.pk)
    assert [t.locale for t in found.translations.all()] == ["en", "nl"]
    assert services.get_article(workspace.pk, theirs.pk) is None
    assert services.get_article(other.pk, refund.pk) is None


def test_unanswered_searches_most_missed_first(workspace):
    from loket.knowledge.models import SearchTerm

    for query, misses in (("parking", 2), ("wifi", 0), ("bikes", 5)):
        SearchTerm.objects.create(
            workspace=workspace, query=query, source="help", searches=9, misses=misses
        )
    SearchTerm.objects.create(
        workspace=factories.workspace("bravo"), query="theirs", source="help", misses=50
    )
    assert [t.query for t in services.unanswered_searches(workspace.pk)] == ["bikes", "parking"]
