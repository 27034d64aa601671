"""Settings → Knowledge base: the articles grouped by category, each with a badge per locale
(published, published with draft changes, draft, withdrawn, missing), the categories (names per
language, order), the searches that found nothing, and the article editor: one tab per
translation (English and Dutch at least, and any other locale added), a Markdown textarea with
a live preview rendered here by ``markdown.to_html`` (sanitised; no Markdown in the browser),
Save draft / Publish / Withdraw, the internal-only switch, the category, and the article's
views and helpful votes. Owners and admins only; another workspace's rows are 404.

The list page also holds the opt-in "Learn from resolved conversations" (a POST to it with
``learning``): agents' answers in resolved conversations become internal suggestions in the
composer (loket.knowledge.conversations), never shown to customers."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loket.knowledge import images, markdown, services
from loket.knowledge.models import Article, ArticleTranslation, Category, TranslationStatus
from loket.tenancy import photos
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"
BASE_LOCALES = ("en", "nl")
MAX_PREVIEW = services.MAX_BODY

# A translation's state as its badge says it: (key, label).
STATES = {
    "published": gettext_lazy("Published"),
    "changed": gettext_lazy("Draft changes"),
    "draft": gettext_lazy("Draft"),
    "withdrawn": gettext_lazy("Withdrawn"),
    "missing": gettext_lazy("Missing"),
}


def state_of(translation: ArticleTranslation | None) -> str:
    if translation is None:
        return "missing"
    if translation.status == TranslationStatus.PUBLISHED:
        return "changed" if services.has_draft_changes(translation) else "published"
    return str(translation.status)


def _locales(workspace, articles: list[Article] = ()) -> list[str]:
    """English and Dutch, the workspace's languages, then any locale an article has."""
    found = list(BASE_LOCALES)
    for code in list(getattr(workspace, "languages", None) or []) + [
        t.locale for a in articles for t in a.translations.all()
    ]:
        code = str(code).lower()
        if code and code not in found:
            found.append(code)
    return found


def _name(category: Category | None, locale: str) -> str:
    if category is None:
        return _("Without a category")
    names = category.names or {}
    return names.get(locale) or names.get("en") or next(iter(names.values()), category.slug)


def _ui_locale(request) -> str:
    return (getattr(request, "LANGUAGE_CODE", "") or "en").split("-")[0]


def _article(request, article_id: int) -> Article:
    article = services.get_article(request.workspace.pk, article_id)
    if article is None:
        raise Http404("no such article")
    return article


def _category(request, category_id: int) -> Category:
    category = services.get_category(request.workspace.pk, category_id)
    if category is None:
        raise Http404("no such category")
    return category


def _clean_locale(request, raw: str) -> str | None:
    try:
        return services.clean_locale(raw)
    except services.InvalidKnowledge as exc:
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
        return None


def _title(article: Article, locale: str = "en") -> str:
    """The title in the admin's language, else English, else any (published before draft)."""
    translations = sorted(
        article.translations.all(),
        key=lambda t: (t.locale != locale, t.locale != "en", t.locale),
    )
    for translation in translations:
        if translation.title or translation.draft_title:
            return translation.title or translation.draft_title
    return _("Article %(number)s") % {"number": article.pk}


def _quality_rows(workspace_id: int) -> dict:
    """The composer's suggestions as agents judged them (loket.knowledge.suggestions.quality):
    a row per kind with its verdicts and the share used unchanged."""
    from loket.knowledge import suggestions
    from loket.knowledge.models import SuggestionKind

    found = suggestions.quality(workspace_id)
    rows = []
    for kind, label in SuggestionKind.choices:
        counts = found[kind]
        total = sum(counts.values())
        rows.append(
            {
                "label": label,
                "used": counts["used"],
                "edited": counts["edited"],
                "wrong": counts["wrong"],
                "total": total,
                "used_share": round(100 * counts["used"] / total) if total else None,
            }
        )
    return {"days": found["days"], "rows": rows, "any": any(r["total"] for r in rows)}


# -- the list -----------------------------------------------------------------------------------
@workspace_view(admin=True)
def knowledge(request):
    """The articles by category with a badge per locale, filters, the categories, and the
    searches that found nothing; a POST sets learning from resolved conversations."""
    workspace = request.workspace
    if request.method == "POST":
        return _learning(request)
    ui = _ui_locale(request)
    text = (request.GET.get("q") or "").strip()[:200]
    status = request.GET.get("status") or ""
    if status not in TranslationStatus.values:
        status = ""
    articles = list(services.articles_of(workspace.pk, text=text or None, status=status or None))
    locales = _locales(workspace, articles)
    categories = list(services.categories_of(workspace.pk))
    groups: dict[int | None, dict] = {
        c.pk: {"category": c, "name": _name(c, ui), "rows": []} for c in categories
    }
    groups[None] = {"category": None, "name": _name(None, ui), "rows": []}
    for article in articles:
        by_locale = {t.locale: t for t in article.translations.all()}
        badges = []
        for locale in locales:
            state = state_of(by_locale.get(locale))
            badges.append({"locale": locale, "state": state, "label": STATES[state]})
        groups[article.category_id]["rows"].append(
            {"article": article, "title": _title(article, ui), "badges": badges}
        )
    return render(
        request,
        TEMPLATES + "knowledge.html",
        {
            "groups": [g for g in groups.values() if g["rows"] or g["category"] is not None],
            "categories": [
                {
                    "category": c,
                    "name": _name(c, ui),
                    "names": [(locale, (c.names or {}).get(locale, "")) for locale in locales],
                    "count": len(groups[c.pk]["rows"]),
                }
                for c in categories
            ],
            "locales": locales,
            "unanswered": list(services.unanswered_searches(workspace.pk)),
            "quality": _quality_rows(workspace.pk),
            "learning": workspace.learn_from_conversations,
            "q": text,
            "status": status,
            "statuses": TranslationStatus.choices,
            "filtered": bool(text or status),
        },
    )


@workspace_view(admin=True)
@require_POST
def article_new(request):
    """A new article with its first translation's title; opens the editor."""
    workspace = request.workspace
    locale = _clean_locale(request, request.POST.get("locale") or "en")
    if locale is None:
        return redirect("wsettings:knowledge", workspace.slug)
    category = request.POST.get("category") or None
    try:
        article = services.create_article(
            workspace,
            locale=locale,
            title=request.POST.get("title", ""),
            category=int(category) if category and category.isdigit() else None,
            actor=request.membership,
        )
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidKnowledge as exc:
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
        return redirect("wsettings:knowledge", workspace.slug)
    messages.success(request, _("Article created as a draft."))
    return redirect(_editor_url(workspace.slug, article.pk, locale))


def _learning(request):
    from loket.knowledge import conversations

    workspace = request.workspace
    enabled = request.POST.get("learn_from_conversations") == "on"
    try:
        conversations.set_learning(workspace, enabled, actor=request.membership)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    if enabled:
        messages.success(
            request,
            _(
                "Resolved conversations' answers will be suggested to agents; they are added "
                "in the background."
            ),
        )
    else:
        messages.success(request, _("Suggestions no longer come from resolved conversations."))
    return redirect("wsettings:knowledge", workspace.slug)


# -- categories ---------------------------------------------------------------------------------
def _posted(post, prefix: str) -> dict[str, str]:
    """``name_en``, ``name_nl``… as ``{"en": ..., "nl": ...}`` (codes checked by the service)."""
    return {
        key.removeprefix(prefix): value
        for key, value in post.items()
        if key.startswith(prefix) and len(key) > len(prefix)
    }


@workspace_view(admin=True)
@require_POST
def category_new(request):
    workspace = request.workspace
    try:
        category = services.create_category(
            workspace,
            names=_posted(request.POST, "name_"),
            actor=request.membership,
        )
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidKnowledge as exc:
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
    else:
        messages.success(
            request,
            _("Category “%(name)s” added.") % {"name": _name(category, _ui_locale(request))},
        )
    return redirect("wsettings:knowledge", workspace.slug)


@workspace_view(admin=True)
@require_POST
def category_edit(request, category_id: int):
    category = _category(request, category_id)
    # Names in languages the form did not show are kept.
    changes = {"names": {**(category.names or {}), **_posted(request.POST, "name_")}}
    descriptions = _posted(request.POST, "description_")
    if descriptions:
        changes["descriptions"] = {**(category.descriptions or {}), **descriptions}
    if request.POST.get("slug"):
        changes["slug"] = request.POST["slug"]
    try:
        services.update_category(category, actor=request.membership, **changes)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidKnowledge as exc:
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
    else:
        messages.success(request, _("Category saved."))
    return redirect("wsettings:knowledge", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def category_delete(request, category_id: int):
    category = _category(request, category_id)
    name = _name(category, _ui_locale(request))
    services.delete_category(category, actor=request.membership)
    messages.success(
        request,
        _("Category “%(name)s” deleted; its articles are kept without a category.")
        % {"name": name},
    )
    return redirect("wsettings:knowledge", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def category_move(request, category_id: int):
    """One place up or down (``direction``: up / down)."""
    category = _category(request, category_id)
    ids = list(services.categories_of(request.workspace.pk).values_list("pk", flat=True))
    index = ids.index(category.pk)
    other = index - 1 if request.POST.get("direction") == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        services.reorder_categories(request.workspace, ids, actor=request.membership)
    return redirect("wsettings:knowledge", request.workspace.slug)


# -- the editor ---------------------------------------------------------------------------------
def _editor_url(slug: str, article_id: int, locale: str) -> str:
    return reverse("wsettings:knowledge-article", args=[slug, article_id]) + f"?locale={locale}"


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def article_edit(request, article_id: int):
    """The editor; POST saves the article's settings (category, internal only)."""
    article = _article(request, article_id)
    workspace = request.workspace
    if request.method == "POST":
        category = request.POST.get("category") or None
        try:
            services.update_article(
                article,
                actor=request.membership,
                category=int(category) if category and category.isdigit() else None,
                internal=request.POST.get("internal") == "on",
            )
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.InvalidKnowledge as exc:
            messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
        else:
            messages.success(request, _("Article settings saved."))
        return redirect(_editor_url(workspace.slug, article.pk, request.POST.get("locale") or "en"))
    locales = _locales(workspace, [article])
    wanted = (request.GET.get("locale") or "").strip().lower()
    if wanted:
        try:
            wanted = services.clean_locale(wanted)
        except services.InvalidKnowledge:
            wanted = ""
    if wanted and wanted not in locales:
        locales.append(wanted)  # "Add translation": an empty tab until its draft is saved
    by_locale = {t.locale: t for t in article.translations.all()}
    tabs = []
    for locale in locales:
        translation = by_locale.get(locale)
        state = state_of(translation)
        body = translation.draft_body if translation else ""
        tabs.append(
            {
                "locale": locale,
                "translation": translation,
                "state": state,
                "label": STATES[state],
                "title": translation.draft_title if translation else "",
                "body": body,
                "preview": markdown.to_html(body, _images_url(workspace.slug)),
            }
        )
    current = wanted or next((t.locale for t in article.translations.all()), locales[0])
    votes_yes = sum(t.helpful_yes for t in by_locale.values())
    votes_no = sum(t.helpful_no for t in by_locale.values())
    return render(
        request,
        TEMPLATES + "knowledge_article.html",
        {
            "article": article,
            "title": _title(article, _ui_locale(request)),
            "tabs": tabs,
            "current": current,
            "categories": [
                {"category": c, "name": _name(c, _ui_locale(request))}
                for c in services.categories_of(workspace.pk)
            ],
            "helpful_yes": votes_yes,
            "helpful_no": votes_no,
        },
    )


@workspace_view(admin=True)
@require_POST
def translation_save(request, article_id: int, locale: str):
    """Save the draft of one translation (made when missing); ``publish`` also publishes it."""
    article = _article(request, article_id)
    locale = _clean_locale(request, locale)
    if locale is None:
        return redirect("wsettings:knowledge-article", request.workspace.slug, article.pk)
    try:
        translation = services.save_draft(
            article,
            locale,
            title=request.POST.get("title", ""),
            body=request.POST.get("body", ""),
            actor=request.membership,
        )
        if request.POST.get("publish"):
            services.publish(translation, actor=request.membership)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidKnowledge as exc:
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
    else:
        if request.POST.get("publish"):
            messages.success(request, _("Published (%(locale)s).") % {"locale": locale})
        else:
            messages.success(request, _("Draft saved (%(locale)s).") % {"locale": locale})
    return redirect(_editor_url(request.workspace.slug, article.pk, locale))


def _translation(request, article_id: int, locale: str) -> ArticleTranslation:
    found = services.translation_of(_article(request, article_id), locale)
    if found is None:
        raise Http404("no such translation")
    return found


@workspace_view(admin=True)
@require_POST
def translation_withdraw(request, article_id: int, locale: str):
    translation = _translation(request, article_id, locale)
    try:
        services.withdraw(translation, actor=request.membership)
    except services.InvalidKnowledge as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Withdrawn (%(locale)s).") % {"locale": locale})
    return redirect(_editor_url(request.workspace.slug, article_id, translation.locale))


@workspace_view(admin=True)
@require_POST
def translation_delete(request, article_id: int, locale: str):
    translation = _translation(request, article_id, locale)
    services.delete_translation(translation, actor=request.membership)
    messages.success(request, _("Translation (%(locale)s) deleted.") % {"locale": locale})
    return redirect("wsettings:knowledge-article", request.workspace.slug, article_id)


@workspace_view(admin=True)
@require_POST
def article_delete(request, article_id: int):
    article = _article(request, article_id)
    title = _title(article, _ui_locale(request))
    services.delete_article(article, actor=request.membership)
    messages.success(request, _("Article “%(title)s” deleted.") % {"title": title})
    return redirect("wsettings:knowledge", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def preview(request):
    """The Markdown in ``body`` as the help center shows it (sanitised HTML), for htmx."""
    body = (request.POST.get("body") or "")[:MAX_PREVIEW]
    html = markdown.to_html(body, _images_url(request.workspace.slug))
    if not html.strip():
        html = format_html('<p class="muted">{}</p>', _("Nothing to preview yet."))
    return HttpResponse(html, content_type="text/html; charset=utf-8")


# -- images in articles (loket.knowledge.images) ----------------------------------------------
def _images_url(slug: str) -> str:
    """Where the editor's preview finds uploaded images (``image_view`` below)."""
    return reverse("wsettings:knowledge", args=[slug]) + "images/"


@workspace_view(admin=True)
@require_POST
def image_upload(request, article_id: int):
    """One image (``file``) into the article: ``{"key", "markdown", "url"}`` to insert, or 400
    ``{"error"}`` saying what is wrong with it."""
    article = _article(request, article_id)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": _("Choose an image file.")}, status=400)
    if upload.size > images.MAX_IMAGE_BYTES:
        return JsonResponse({"error": _("An image can be at most 5 MB.")}, status=400)
    try:
        image = images.upload(article, upload.read(), actor=request.membership)
    except images.InvalidImage:
        return JsonResponse(
            {"error": _("Only PNG, JPEG, WebP and GIF images of at most 5 MB can be added.")},
            status=400,
        )
    alt = (upload.name or "").rsplit(".", 1)[0].replace("_", " ").replace("-", " ")
    return JsonResponse(
        {
            "key": image.key,
            "markdown": images.markdown_for(image, alt),
            "url": _images_url(request.workspace.slug) + image.key,
        },
        status=201,
    )


@workspace_view
@require_GET
def image_view(request, key: str):
    """An uploaded image, to the workspace's members (internal and draft articles' too)."""
    found = images.for_members(request.workspace.pk, key)
    return photos.response(images.read(found) if found else None, "private, max-age=3600")
