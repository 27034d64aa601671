"""Managing the knowledge base: categories, articles and their translations — by owners and
admins; reading them, scoped to one workspace, by any member.

A translation is edited as a draft (``save_draft``) and goes live with ``publish`` (the draft's
title and body become the published text). Everything that changes what retrieval may find —
publishing, withdrawing, deleting a translation or an article, changing ``internal`` — enqueues
``index_article`` in the same transaction as the change, so a rolled-back change leaves no job
and a committed one never lacks its job.

A translation's slug is derived from its title, unique per workspace and locale (``-2``,
``-3``… when taken): from the draft's title until the translation is first published, then from
the published title on each publish (so links follow what readers see)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.knowledge.models import (
    Article,
    ArticleTranslation,
    Category,
    SearchTerm,
    TranslationStatus,
)
from loket.knowledge.tasks import index_article
from loket.problems import Invalid
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import require_admin

MAX_TITLE = 300
MAX_BODY = 200_000  # characters of Markdown
MAX_NAME = 200
MAX_DESCRIPTION = 2000
_LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


class InvalidKnowledge(Invalid):
    """Something in the knowledge base that cannot be saved; the problem says why."""


class InvalidCategory(InvalidKnowledge):
    pass


class InvalidArticle(InvalidKnowledge):
    pass


def _check_admin(actor: Membership | None, workspace_id: int) -> None:
    require_admin(
        actor, workspace_id, gettext("Only owners and admins can change the knowledge base.")
    )


def clean_locale(locale: Any) -> str:
    value = (locale or "").strip().lower().replace("_", "-") if isinstance(locale, str) else ""
    if not _LOCALE.match(value):
        raise InvalidArticle(
            _("“%(locale)s” is not a language code such as en, nl or nl-be"),
            locale=str(locale or "")[:20],
        )
    return value


def _texts(value: Any, *, limit: int, what) -> dict[str, str]:
    """A ``{"en": "...", "nl": "..."}`` map: valid locales, strings, empty ones left out."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidCategory(_("%(field)s is a map from language code to text"), field=what)
    found: dict[str, str] = {}
    for locale, text in value.items():
        if not isinstance(text, str):
            raise InvalidCategory(_("%(field)s is a map from language code to text"), field=what)
        text = text.strip()
        if len(text) > limit:
            raise InvalidCategory(
                _("%(field)s is at most %(limit)s characters"), field=what, limit=limit
            )
        if text:
            found[clean_locale(locale)] = text
    return found


def _unique_slug(model, workspace_id: int, base: str, *, exclude_pk=None, max_length: int, **scope):
    base = (base or "")[: max_length - 6].strip("-") or "x"
    taken = set(
        model.objects.filter(workspace_id=workspace_id, slug__startswith=base, **scope)
        .exclude(pk=exclude_pk)
        .values_list("slug", flat=True)
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def slug_for(text: str, fallback: str) -> str:
    return slugify(text or "") or fallback


# -- categories ---------------------------------------------------------------------------------
def _category_fields(fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "names" in fields:
        names = _texts(fields["names"], limit=MAX_NAME, what=_("names"))
        if not names:
            raise InvalidCategory(_("a category needs a name in at least one language"))
        cleaned["names"] = names
    if "descriptions" in fields:
        cleaned["descriptions"] = _texts(
            fields["descriptions"], limit=MAX_DESCRIPTION, what=_("descriptions")
        )
    if fields.get("slug") is not None:
        slug = slugify(fields["slug"])
        if not slug or len(slug) > 100:
            raise InvalidCategory(_("a slug is up to 100 letters, digits and dashes"))
        cleaned["slug"] = slug
    if fields.get("position") is not None:
        try:
            position = int(fields["position"])
        except (TypeError, ValueError):
            position = -1
        if position < 0:
            raise InvalidCategory(_("a position is a whole number, 0 or more"))
        cleaned["position"] = position
    return cleaned


def create_category(
    workspace: Workspace,
    *,
    names: dict[str, str],
    descriptions: dict[str, str] | None = None,
    slug: str | None = None,
    position: int | None = None,
    actor: Membership | None = None,
) -> Category:
    _check_admin(actor, workspace.pk)
    fields = _category_fields(
        {"names": names, "descriptions": descriptions or {}, "slug": slug, "position": position}
    )
    with transaction.atomic():
        if "slug" in fields:
            if Category.objects.filter(workspace=workspace, slug=fields["slug"]).exists():
                raise InvalidCategory(_("the slug “%(slug)s” is taken"), slug=fields["slug"])
        else:
            names = fields["names"]
            name = names.get("en") or next(iter(names.values()))
            fields["slug"] = _unique_slug(
                Category, workspace.pk, slug_for(name, "category"), max_length=100
            )
        if "position" not in fields:
            last = Category.objects.filter(workspace=workspace).aggregate(n=Max("position"))
            fields["position"] = (last["n"] or 0) + 1
        return Category.objects.create(workspace=workspace, **fields)


def update_category(
    category: Category, *, actor: Membership | None = None, **changes: Any
) -> Category:
    _check_admin(actor, category.workspace_id)
    fields = _category_fields(changes)
    slug = fields.get("slug")
    if (
        slug
        and Category.objects.filter(workspace_id=category.workspace_id, slug=slug)
        .exclude(pk=category.pk)
        .exists()
    ):
        raise InvalidCategory(_("the slug “%(slug)s” is taken"), slug=slug)
    for name, value in fields.items():
        setattr(category, name, value)
    category.save()
    return category


def delete_category(category: Category, *, actor: Membership | None = None) -> None:
    """Its articles stay, without a category."""
    _check_admin(actor, category.workspace_id)
    category.delete()


def _reorder(model, workspace_id: int, ids: list[int], **scope) -> None:
    rows = {r.pk: r for r in model.objects.filter(workspace_id=workspace_id, pk__in=ids, **scope)}
    if len(rows) != len(set(ids)):
        raise InvalidKnowledge(_("something to reorder is not in this workspace"))
    for position, pk in enumerate(dict.fromkeys(ids), start=1):
        rows[pk].position = position
    model.objects.bulk_update(rows.values(), ["position"])  # one statement, not one per row


def reorder_categories(
    workspace: Workspace, ids: list[int], *, actor: Membership | None = None
) -> None:
    """The categories in ``ids`` get positions 1, 2, … in that order."""
    _check_admin(actor, workspace.pk)
    _reorder(Category, workspace.pk, ids)


def reorder_articles(
    workspace: Workspace, ids: list[int], *, actor: Membership | None = None
) -> None:
    """The articles in ``ids`` get positions 1, 2, … in that order (within their categories)."""
    _check_admin(actor, workspace.pk)
    _reorder(Article, workspace.pk, ids)


# -- articles and translations ------------------------------------------------------------------
def _category(workspace_id: int, category: Category | int | None) -> Category | None:
    if category is None:
        return None
    category_id = category.pk if isinstance(category, Category) else category
    found = Category.objects.filter(workspace_id=workspace_id, pk=category_id).first()
    if found is None:
        raise InvalidArticle(_("that category is not in this workspace"))
    return found


def _clean_text(title: Any, body: Any) -> tuple[str, str]:
    title = " ".join(title.split()) if isinstance(title, str) else ""
    if not title or len(title) > MAX_TITLE:
        raise InvalidArticle(
            _("an article needs a title of up to %(limit)s characters"), limit=MAX_TITLE
        )
    body = body if isinstance(body, str) else ""
    if len(body) > MAX_BODY:
        raise InvalidArticle(
            _("an article's text is at most %(limit)s characters"), limit=f"{MAX_BODY:,}"
        )
    return title, body.replace("\r\n", "\n")


def _translation_slug(translation: ArticleTranslation, title: str) -> str:
    return _unique_slug(
        ArticleTranslation,
        translation.workspace_id,
        slug_for(title, "article"),
        exclude_pk=translation.pk,
        max_length=200,
        locale=translation.locale,
    )


def create_article(
    workspace: Workspace,
    *,
    locale: str,
    title: str,
    body: str = "",
    category: Category | int | None = None,
    internal: bool = False,
    actor: Membership | None = None,
) -> Article:
    """A new article with its first translation, as a draft (nothing is live until published)."""
    _check_admin(actor, workspace.pk)
    locale = clean_locale(locale)
    title, body = _clean_text(title, body)
    with transaction.atomic():
        found = _category(workspace.pk, category)
        last = Article.objects.filter(workspace=workspace).aggregate(n=Max("position"))
        article = Article.objects.create(
            workspace=workspace,
            category=found,
            internal=bool(internal),
            position=(last["n"] or 0) + 1,
            created_by=actor,
        )
        _new_translation(article, locale, title, body, actor)
    return article


def _new_translation(
    article: Article, locale: str, title: str, body: str, actor: Membership | None
) -> ArticleTranslation:
    translation = ArticleTranslation(
        workspace_id=article.workspace_id,
        article=article,
        locale=locale,
        draft_title=title,
        draft_body=body,
        updated_by=actor,
    )
    translation.slug = _translation_slug(translation, title)
    translation.save()
    return translation


def save_draft(
    article: Article,
    locale: str,
    *,
    title: str,
    body: str,
    actor: Membership | None = None,
) -> ArticleTranslation:
    """Store the draft of the article's translation in ``locale`` (made when missing); what is
    published stays as it is until ``publish``."""
    _check_admin(actor, article.workspace_id)
    locale = clean_locale(locale)
    title, body = _clean_text(title, body)
    with transaction.atomic():
        translation = (
            ArticleTranslation.objects.select_for_update()
            .filter(workspace_id=article.workspace_id, article=article, locale=locale)
            .first()
        )
        if translation is None:
            translation = _new_translation(article, locale, title, body, actor)
        else:
            translation.draft_title = title
            translation.draft_body = body
            if translation.published_at is None:  # never published: the slug follows the draft
                translation.slug = _translation_slug(translation, title)
            translation.updated_at = timezone.now()
            translation.updated_by = actor
            translation.save()
        Article.objects.filter(pk=article.pk).update(updated_at=timezone.now())
    return translation


def has_draft_changes(translation: ArticleTranslation) -> bool:
    """The draft differs from what is published (or nothing is published)."""
    return (
        translation.status != TranslationStatus.PUBLISHED
        or translation.draft_title != translation.title
        or translation.draft_body != translation.body
    )


def publish(translation: ArticleTranslation, *, actor: Membership | None = None):
    """The draft becomes the published text; the article is re-indexed."""
    _check_admin(actor, translation.workspace_id)
    title, body = _clean_text(translation.draft_title, translation.draft_body)
    with transaction.atomic():
        locked = ArticleTranslation.objects.select_for_update().get(pk=translation.pk)
        now = timezone.now()
        if locked.published_at is None or title != locked.title:
            locked.slug = _translation_slug(locked, title)
        locked.title, locked.body = title, body
        locked.status = TranslationStatus.PUBLISHED
        locked.published_at = locked.updated_at = now
        locked.updated_by = actor
        locked.save()
        Article.objects.filter(pk=locked.article_id).update(updated_at=now)
        index_article.enqueue(locked.article_id)
    _copy(locked, translation)
    return translation


def withdraw(translation: ArticleTranslation, *, actor: Membership | None = None):
    """Take a published translation offline (its texts are kept; publish brings it back)."""
    _check_admin(actor, translation.workspace_id)
    if translation.status != TranslationStatus.PUBLISHED:
        raise InvalidArticle(_("only a published translation can be withdrawn"))
    with transaction.atomic():
        locked = ArticleTranslation.objects.select_for_update().get(pk=translation.pk)
        locked.status = TranslationStatus.WITHDRAWN
        locked.updated_at = timezone.now()
        locked.updated_by = actor
        locked.save()
        index_article.enqueue(locked.article_id)
    _copy(locked, translation)
    return translation


def _copy(source: ArticleTranslation, target: ArticleTranslation) -> None:
    for field in ("slug", "title", "body", "status", "published_at", "updated_at", "updated_by"):
        setattr(target, field, getattr(source, field))


def delete_translation(translation: ArticleTranslation, *, actor: Membership | None = None) -> None:
    """Delete one language of an article (the article and its other translations stay)."""
    _check_admin(actor, translation.workspace_id)
    with transaction.atomic():
        article_id = translation.article_id
        translation.delete()
        index_article.enqueue(article_id)


def delete_article(article: Article, *, actor: Membership | None = None) -> None:
    _check_admin(actor, article.workspace_id)
    with transaction.atomic():
        article_id = article.pk
        article.delete()
        index_article.enqueue(article_id)  # its passages went by cascade; harmless


def update_article(article: Article, *, actor: Membership | None = None, **changes: Any):
    """Move to a category (``category``: a Category, its id, or None), set ``internal``, or
    ``position``. Changing ``internal`` re-indexes the article."""
    _check_admin(actor, article.workspace_id)
    unknown = set(changes) - {"category", "internal", "position"}
    if unknown:
        raise TypeError(f"unknown article fields {sorted(unknown)}")
    with transaction.atomic():
        fields = ["updated_at"]
        if "category" in changes:
            article.category = _category(article.workspace_id, changes["category"])
            fields.append("category")
        if "position" in changes and changes["position"] is not None:
            try:
                position = int(changes["position"])
            except (TypeError, ValueError):
                position = -1
            if position < 0:
                raise InvalidArticle(_("a position is a whole number, 0 or more"))
            article.position = position
            fields.append("position")
        reindex = False
        if "internal" in changes and changes["internal"] is not None:
            internal = bool(changes["internal"])
            reindex = internal != article.internal
            article.internal = internal
            fields.append("internal")
        article.updated_at = timezone.now()
        article.save(update_fields=fields)
        if reindex:
            index_article.enqueue(article.pk)
    return article


# -- reads --------------------------------------------------------------------------------------
def categories_of(workspace_id: int) -> QuerySet[Category]:
    return Category.objects.filter(workspace_id=workspace_id).order_by("position", "pk")


def get_category(workspace_id: int, category_id: int) -> Category | None:
    return Category.objects.filter(workspace_id=workspace_id, pk=category_id).first()


def articles_of(
    workspace_id: int,
    *,
    category_id: int | None = None,
    locale: str | None = None,
    status: str | None = None,
    text: str | None = None,
) -> QuerySet[Article]:
    """The workspace's articles with their translations (prefetched, by locale). ``locale``,
    ``status`` and ``text`` keep articles with a translation that matches all given ones
    (``text``: in a title or body, draft or published, case-insensitive)."""
    articles = Article.objects.filter(workspace_id=workspace_id)
    if category_id is not None:
        articles = articles.filter(category_id=category_id)
    wanted = Q()
    if locale:
        wanted &= Q(locale=locale.lower())
    if status:
        wanted &= Q(status=status)
    if text and text.strip():
        needle = text.strip()[:200]
        wanted &= (
            Q(title__icontains=needle)
            | Q(body__icontains=needle)
            | Q(draft_title__icontains=needle)
            | Q(draft_body__icontains=needle)
        )
    if wanted:
        matching = ArticleTranslation.objects.filter(wanted, workspace_id=workspace_id)
        articles = articles.filter(pk__in=matching.values("article_id"))
    return (
        articles.select_related("category")
        .prefetch_related(
            Prefetch(
                "translations",
                queryset=ArticleTranslation.objects.filter(workspace_id=workspace_id).order_by(
                    "locale"
                ),
            )
        )
        .order_by("position", "pk")
    )


def get_article(workspace_id: int, article_id: int) -> Article | None:
    return articles_of(workspace_id).filter(pk=article_id).first()


def translation_of(article: Article, locale: str) -> ArticleTranslation | None:
    return ArticleTranslation.objects.filter(
        workspace_id=article.workspace_id, article_id=article.pk, locale=(locale or "").lower()
    ).first()


def unanswered_searches(workspace_id: int, limit: int = 50) -> QuerySet[SearchTerm]:
    """Searches that found nothing, the most missed first."""
    return SearchTerm.objects.filter(workspace_id=workspace_id, misses__gt=0).order_by(
        "-misses", "-last_at"
    )[:limit]
