"""The knowledge base over the API: categories and articles CRUD with translations (drafts,
publish, withdraw), validation as 400s, agents read but cannot change, and search / answer over
what is published (internal articles only when asked for)."""

from __future__ import annotations

from django.conf import settings
from django.test import Client
from django_tasks_db.models import DBTaskResult

from loket.knowledge import services
from loket.knowledge.models import Article, ArticleTranslation, Category, HelpCenter
from loket.knowledge.tasks import index_article
from tests import factories
from tests.api.conftest import assert_error, call
from tests.connectors.providers import run_tasks


def index_jobs() -> int:
    return DBTaskResult.objects.filter(task_path=index_article.module_path).count()


def test_categories_and_articles_round_trip(db, workspace, api):
    response = api.post("/knowledge/categories", {"names": {"en": "Bookings", "nl": "Boekingen"}})
    assert response.status_code == 201, response.content
    category = response.json()
    assert category["slug"] == "bookings" and category["names"]["nl"] == "Boekingen"

    response = api.post(
        "/knowledge/articles",
        {"locale": "en", "title": "Changing a booking", "body": "Call us.",
         "category_id": category["id"]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    article = response.json()
    [en] = article["translations"]
    assert (en["status"], en["slug"], en["title"]) == ("draft", "changing-a-booking", "")
    assert en["draft_title"] == "Changing a booking" and en["draft_changed"] is True
    article_id = article["id"]

    response = api.put(
        f"/knowledge/articles/{article_id}/translations/nl",
        {"title": "Een boeking wijzigen", "body": "Bel ons."},
    )
    assert response.status_code == 200, response.content
    assert [t["locale"] for t in response.json()["translations"]] == ["en", "nl"]

    assert index_jobs() == 0
    response = api.post(f"/knowledge/articles/{article_id}/translations/en/publish")
    assert response.status_code == 200, response.content
    en = response.json()["translations"][0]
    assert (en["status"], en["title"], en["body"]) == (
        "published",
        "Changing a booking",
        "Call us.",
    )
    assert en["published_at"] and en["draft_changed"] is False
    assert index_jobs() == 1

    # Filters: status and locale together, and text in a draft.
    listed = api.get("/knowledge/articles?locale=nl&status=published").json()
    assert listed == []
    listed = api.get("/knowledge/articles?locale=en&status=published").json()
    assert [a["id"] for a in listed] == [article_id]
    assert [a["id"] for a in api.get("/knowledge/articles?q=boeking").json()] == [article_id]
    assert api.get(f"/knowledge/articles?category_id={category['id']}").json()[0]["id"] == (
        article_id
    )

    response = api.patch(f"/knowledge/articles/{article_id}", {"internal": True})
    assert response.json()["internal"] is True and index_jobs() == 2
    response = api.patch(f"/knowledge/articles/{article_id}", {"category_id": None})
    assert response.json()["category_id"] is None and response.json()["internal"] is True

    response = api.post(f"/knowledge/articles/{article_id}/translations/en/withdraw")
    assert response.json()["translations"][0]["status"] == "withdrawn" and index_jobs() == 3
    assert_error(
        api.post(f"/knowledge/articles/{article_id}/translations/nl/withdraw"), 400, "invalid"
    )
    assert_error(
        api.post(f"/knowledge/articles/{article_id}/translations/de/publish"), 404, "not_found"
    )

    assert api.delete(f"/knowledge/articles/{article_id}/translations/nl").status_code == 204
    assert (
        api.patch(f"/knowledge/categories/{category['id']}", {"slug": "trips"}).json()["slug"]
        == "trips"
    )
    assert api.delete(f"/knowledge/categories/{category['id']}").status_code == 204
    assert api.delete(f"/knowledge/articles/{article_id}").status_code == 204
    assert not Article.objects.exists() and not Category.objects.exists()
    assert_error(api.get(f"/knowledge/articles/{article_id}"), 404, "not_found")


def test_invalid_input_is_a_400_with_the_reason(db, workspace, api):
    cases = [
        ("/knowledge/articles", {"locale": "en", "title": " "},
         "an article needs a title of up to 300 characters"),
        ("/knowledge/articles", {"locale": "english", "title": "Hi"},
         "“english” is not a language code such as en, nl or nl-be"),
        ("/knowledge/categories", {"names": {}},
         "a category needs a name in at least one language"),
    ]  # fmt: skip
    for path, body, message in cases:
        error = assert_error(api.post(path, body), 400, "invalid")
        assert error["message"] == message
    other = services.create_category(factories.workspace("bravo"), names={"en": "Theirs"})
    error = assert_error(
        api.post("/knowledge/articles", {"locale": "en", "title": "Hi", "category_id": other.pk}),
        400,
        "invalid",
    )
    assert error["message"] == "that category is not in this workspace"
    assert not Article.objects.filter(workspace=workspace).exists()


def test_an_agent_reads_but_cannot_change(db, workspace, owner, agent):
    article = services.create_article(workspace, locale="en", title="Refunds", body="14 days")
    services.publish(services.translation_of(article, "en"))
    agent_api = factories.ApiClient(agent)
    assert [a["id"] for a in agent_api.get("/knowledge/articles").json()] == [article.pk]
    assert agent_api.get(f"/knowledge/articles/{article.pk}").status_code == 200
    base = f"/knowledge/articles/{article.pk}"
    for method, path, body in [
        ("POST", "/knowledge/categories", {"names": {"en": "X"}}),
        ("POST", "/knowledge/articles", {"locale": "en", "title": "X"}),
        ("PATCH", base, {"internal": True}),
        ("PUT", f"{base}/translations/en", {"title": "X"}),
        ("POST", f"{base}/translations/en/withdraw", None),
        ("DELETE", f"{base}/translations/en", None),
        ("DELETE", base, None),
    ]:
        error = assert_error(call(agent_api, method, path, body), 403, "forbidden")
        assert "Only owners and admins" in error["message"], (method, path)
    translation = ArticleTranslation.objects.get()
    assert (translation.status, translation.draft_title) == ("published", "Refunds")
    assert not Article.objects.get().internal and not Category.objects.exists()


def test_search_and_answer_over_published_articles(transactional_db, workspace, api):
    dogs = services.create_article(
        workspace,
        locale="en",
        title="Dogs on the ferry",
        body="Dogs travel free on the ferry. Keep your dog on a lead on the car deck.",
    )
    services.save_draft(
        dogs,
        "nl",
        title="Honden op de veerboot",
        body="Honden reizen gratis mee op de veerboot. Houd je hond aangelijnd.",
    )
    wifi = services.create_article(
        workspace,
        locale="en",
        title="Staff wifi password",
        body="The staff wifi password for the ferry is in the crew handbook.",
        internal=True,
    )
    draft = services.create_article(
        workspace, locale="en", title="Ferry dogs (draft)", body="Not published yet about dogs."
    )
    for translation in ArticleTranslation.objects.exclude(article=draft):
        api.post(f"/knowledge/articles/{translation.article_id}/translations/"
                 f"{translation.locale}/publish")  # fmt: skip
    run_tasks()
    HelpCenter.objects.create(workspace=workspace, enabled=True, locales=["en", "nl"])

    response = api.post("/knowledge/search", {"query": "can my dog come on the ferry?"})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["article_id"] == dogs.pk
    assert {r["article_id"] for r in results} <= {dogs.pk}  # no internal, no draft
    assert set(results[0]) == {
        "article_id", "locale", "title", "heading", "snippet", "score", "confidence", "url",
    }  # fmt: skip
    assert "Dogs travel free" in results[0]["snippet"]
    url = results[0]["url"]
    assert url == f"{settings.LOKET_PUBLIC_URL}/help/acme/en/a/dogs-on-the-ferry/"
    page = Client().get(url.removeprefix(settings.LOKET_PUBLIC_URL))
    assert page.status_code == 200 and b"Dogs travel free" in page.content

    dutch = api.post("/knowledge/search", {"query": "mag mijn hond mee", "locale": "nl"}).json()
    assert dutch["results"][0]["article_id"] == dogs.pk
    assert dutch["results"][0]["locale"] == "nl"
    assert dutch["results"][0]["title"] == "Honden op de veerboot"

    staff = {"query": "staff wifi password", "include_internal": True, "limit": 1}
    results = api.post("/knowledge/search", staff).json()["results"]
    assert [r["article_id"] for r in results] == [wifi.pk] and results[0]["url"] is None
    staff["include_internal"] = False
    found = api.post("/knowledge/search", staff).json()["results"]
    assert wifi.pk not in {r["article_id"] for r in found}

    body = api.post("/knowledge/answer", {"question": "Do dogs travel free on the ferry?"}).json()
    assert body["article_id"] == dogs.pk and body["answer"] and "Dogs travel free" in body["answer"]
    assert 0.5 <= body["confidence"] <= 1
    body = api.post("/knowledge/answer", {"question": "What is the staff wifi password?"}).json()
    assert body["article_id"] != wifi.pk  # internal: never the bot's (or the API's) answer
    assert "crew handbook" not in (body["answer"] or "")

    assert_error(api.post("/knowledge/search", {"query": "x", "limit": 0}), 400, "invalid")
    assert_error(api.post("/knowledge/search", {"query": "x", "locale": "!!"}), 400, "invalid")
