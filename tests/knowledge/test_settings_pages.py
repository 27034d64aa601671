"""Settings → Knowledge base: the list grouped by category with a badge per locale, categories,
the searches that found nothing, the editor (tabs per translation, save draft / publish /
withdraw, internal switch), the server-rendered preview (sanitised), and that agents and other
workspaces cannot reach any of it."""

from __future__ import annotations

import re

from django_tasks_db.models import DBTaskResult

from loket.knowledge import services
from loket.knowledge.models import Article, ArticleTranslation, Category, SearchTerm
from loket.knowledge.tasks import index_article
from tests import factories
from tests.workspace_settings.conftest import signed_in, url


def badges(html: str, article: Article) -> dict[str, str]:
    row = html[html.index(f'id="article-{article.pk}"') :]
    row = row[: row.index("</tr>")]
    return dict(re.findall(r'data-locale="([\w-]+)" data-state="(\w+)"', row))


def test_the_list_groups_articles_by_category_with_a_badge_per_locale(workspace, owner):
    client = signed_in(owner)
    bookings = services.create_category(workspace, names={"en": "Bookings", "nl": "Boekingen"})
    refunds = services.create_article(
        workspace, locale="en", title="Refunds", body="14 days", category=bookings
    )
    services.publish(services.translation_of(refunds, "en"))
    services.save_draft(refunds, "nl", title="Terugbetalen", body="14 dagen")
    pets = services.create_article(workspace, locale="en", title="Pets", body="Dogs welcome")
    services.publish(services.translation_of(pets, "en"))
    services.save_draft(pets, "en", title="Pets", body="Dogs and cats welcome")
    services.save_draft(pets, "de", title="Haustiere", body="Hunde")
    SearchTerm.objects.create(workspace=workspace, query="parking", source="helpcenter", misses=3)
    SearchTerm.objects.create(workspace=workspace, query="bikes", source="widget", misses=7)
    SearchTerm.objects.create(workspace=workspace, query="found", source="widget", searches=9)

    response = client.get(url("knowledge", workspace))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<a href="{url("knowledge", workspace)}" aria-current="page">Knowledge base</a>' in html
    assert badges(html, refunds) == {"en": "published", "nl": "draft", "de": "missing"}
    assert badges(html, pets) == {"en": "changed", "nl": "missing", "de": "draft"}
    assert "en: Published" in html and "en: Draft changes" in html and "nl: Missing" in html
    # Grouped: Bookings (with Refunds) comes before the articles without a category.
    assert html.index("Bookings") < html.index("Refunds") < html.index("Without a category")
    assert html.index("Without a category") < html.index(">Pets<")
    # The searches that found nothing, the most missed first; searches that found are not there.
    section = html[html.index('id="kb-unanswered"') :]
    assert section.index("bikes") < section.index("parking") and "found</th>" not in section

    filtered = client.get(url("knowledge", workspace) + "?q=cats").content.decode()
    assert f'id="article-{pets.pk}"' in filtered and f'id="article-{refunds.pk}"' not in filtered


def test_new_article_save_draft_publish_and_withdraw(workspace, admin):
    client = signed_in(admin)
    response = client.post(
        url("knowledge-new", workspace), {"title": "Opening hours", "locale": "en"}
    )
    article = Article.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == url("knowledge-article", workspace, article.pk) + "?locale=en"

    page = client.get(response["Location"]).content.decode()
    assert 'id="panel-en"' in page and 'id="panel-nl"' in page  # English and Dutch at least
    assert 'value="Opening hours"' in page

    save = url("knowledge-translation", workspace, article.pk, "nl")
    response = client.post(save, {"title": "Openingstijden", "body": "# Tijden\n\n*9-17*"})
    assert response.status_code == 302
    dutch = ArticleTranslation.objects.get(article=article, locale="nl")
    assert (dutch.status, dutch.draft_title, dutch.title) == ("draft", "Openingstijden", "")
    assert not DBTaskResult.objects.filter(task_path=index_article.module_path).exists()

    client.post(save, {"title": "Openingstijden", "body": "# Tijden\n\n*9-17*", "publish": "1"})
    dutch.refresh_from_db()
    assert (dutch.status, dutch.title, dutch.body) == (
        "published",
        "Openingstijden",
        "# Tijden\n\n*9-17*",
    )
    assert DBTaskResult.objects.filter(task_path=index_article.module_path).count() == 1
    page = client.get(url("knowledge-article", workspace, article.pk) + "?locale=nl")
    html = page.content.decode()
    assert "<h1>Tijden</h1>" in html and "<em>9-17</em>" in html  # the rendered preview
    assert "Withdraw" in html

    client.post(url("knowledge-translation-withdraw", workspace, article.pk, "nl"))
    dutch.refresh_from_db()
    assert dutch.status == "withdrawn"

    # Invalid: the message, and nothing saved.
    response = client.post(save, {"title": "", "body": "gone"}, follow=True)
    assert (
        "Not saved: an article needs a title of up to 300 characters" in response.content.decode()
    )
    dutch.refresh_from_db()
    assert dutch.draft_body == "# Tijden\n\n*9-17*"

    # "Add translation": an empty tab for another locale, saved on the first draft.
    page = client.get(url("knowledge-article", workspace, article.pk) + "?locale=de").content
    assert b'id="panel-de"' in page and b"No text in" in page


def test_internal_switch_category_views_and_votes(workspace, owner):
    client = signed_in(owner)
    category = services.create_category(workspace, names={"en": "Staff"})
    article = services.create_article(workspace, locale="en", title="Till codes", body="1234")
    translation = services.translation_of(article, "en")
    services.publish(translation)
    Article.objects.filter(pk=article.pk).update(views=42)
    ArticleTranslation.objects.filter(pk=translation.pk).update(helpful_yes=5, helpful_no=2)
    jobs = DBTaskResult.objects.filter(task_path=index_article.module_path)
    before = jobs.count()

    client.post(
        url("knowledge-article", workspace, article.pk),
        {"category": str(category.pk), "internal": "on"},
    )
    article.refresh_from_db()
    assert article.internal and article.category_id == category.pk
    assert jobs.count() == before + 1  # re-indexed: internal changed
    html = client.get(url("knowledge-article", workspace, article.pk)).content.decode()
    assert '<dd id="kb-views">42</dd>' in html
    assert '<dd id="kb-helpful-yes">5</dd>' in html and '<dd id="kb-helpful-no">2</dd>' in html


def test_categories_are_managed_on_the_list_page(workspace, owner):
    client = signed_in(owner)
    client.post(url("knowledge-category-new", workspace), {"name_en": "Tickets", "name_nl": ""})
    client.post(url("knowledge-category-new", workspace), {"name_en": "Pets"})
    tickets, pets = Category.objects.order_by("position")
    assert tickets.names == {"en": "Tickets"} and tickets.slug == "tickets"
    client.post(
        url("knowledge-category-edit", workspace, tickets.pk),
        {"name_en": "Tickets", "name_nl": "Kaartjes", "slug": "tickets"},
    )
    tickets.refresh_from_db()
    assert tickets.names == {"en": "Tickets", "nl": "Kaartjes"}
    client.post(url("knowledge-category-move", workspace, pets.pk), {"direction": "up"})
    assert list(Category.objects.order_by("position")) == [pets, tickets]
    response = client.post(url("knowledge-category-new", workspace), {"name_en": " "}, follow=True)
    assert "a category needs a name in at least one language" in response.content.decode()
    client.post(url("knowledge-category-delete", workspace, pets.pk))
    assert list(Category.objects.all()) == [tickets]


def test_the_preview_is_rendered_on_the_server_and_sanitised(workspace, owner):
    client = signed_in(owner)
    markdown = (
        "## Hello\n\n<script>alert('x')</script>\n\n"
        "[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n**bold** "
        "[ok](https://example.com/a)"
    )
    response = client.post(url("knowledge-preview", workspace), {"body": markdown})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h2>Hello</h2>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<script" not in html and "&lt;script&gt;" in html  # shown as text, never run
    assert 'href="javascript' not in html and not re.search(r"<img[^>]*onerror", html)

    # The editor's own preview (a saved draft) is sanitised too.
    article = services.create_article(workspace, locale="en", title="Evil", body=markdown)
    page = client.get(url("knowledge-article", workspace, article.pk)).content.decode()
    assert "<script>alert" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert" in page


def test_agents_are_refused_and_other_workspaces_are_404(workspace, owner, agent):
    article = services.create_article(workspace, locale="en", title="Ours", body="text")
    category = services.create_category(workspace, names={"en": "Ours"})
    agent_client = signed_in(agent)
    assert agent_client.get(url("knowledge", workspace)).status_code == 403
    posts = [
        (url("knowledge-new", workspace), {"title": "X", "locale": "en"}),
        (url("knowledge-preview", workspace), {"body": "x"}),
        (url("knowledge-article", workspace, article.pk), {"internal": "on"}),
        (url("knowledge-translation", workspace, article.pk, "en"), {"title": "X", "publish": "1"}),
        (url("knowledge-article-delete", workspace, article.pk), {}),
        (url("knowledge-category-delete", workspace, category.pk), {}),
    ]
    for path, data in posts:
        assert agent_client.post(path, data).status_code == 403, path

    other = factories.workspace("bravo")
    outsider = signed_in(factories.owner_of(other))
    assert outsider.get(url("knowledge", workspace)).status_code == 404
    # An owner of bravo, on bravo's pages, with acme's ids: 404.
    theirs = [
        ("get", url("knowledge-article", other, article.pk), {}),
        ("post", url("knowledge-translation", other, article.pk, "en"), {"title": "X"}),
        ("post", url("knowledge-translation-withdraw", other, article.pk, "en"), {}),
        ("post", url("knowledge-translation-delete", other, article.pk, "en"), {}),
        ("post", url("knowledge-article-delete", other, article.pk), {}),
        ("post", url("knowledge-category-edit", other, category.pk), {"name_en": "X"}),
        ("post", url("knowledge-category-delete", other, category.pk), {}),
    ]
    for method, path, data in theirs:
        assert getattr(outsider, method)(path, data).status_code == 404, path
    translation = ArticleTranslation.objects.get(article=article)
    assert (translation.status, translation.draft_title) == ("draft", "Ours")
    assert Category.objects.get(pk=category.pk).names == {"en": "Ours"}
    assert not Article.objects.filter(workspace=other).exists()


def test_the_composers_suggestions_as_agents_judged_them(workspace, owner, agent):
    from loket.inbox.models import Conversation
    from loket.knowledge.models import SuggestionFeedback

    client = signed_in(owner)
    page = client.get(url("knowledge", workspace)).content.decode()
    assert "No suggestions were inserted or judged yet." in page
    channel = factories.api_channel(workspace)
    result = factories.inbound(channel, "Where is my refund?", contact_id="c1", name="C")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    for verdict in ("used", "used", "used", "edited", "wrong"):
        SuggestionFeedback.objects.create(
            workspace=workspace,
            conversation=conversation,
            member=agent,
            kind="article",
            verdict=verdict,
        )
    page = client.get(url("knowledge", workspace)).content.decode()
    section = page[page.index('id="kb-suggestion-quality"') :]
    row = section[section.index('<th scope="row">Article</th>') :]
    row = row[: row.index("</tr>")]
    assert re.findall(r"<td>([^<]*)</td>", row) == ["3", "1", "1", "60%"]
    other = factories.workspace("other")
    assert (
        "No suggestions were inserted"
        in signed_in(factories.owner_of(other)).get(url("knowledge", other)).content.decode()
    )
