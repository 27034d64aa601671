"""What the public help center may show, and what its readers leave behind (votes, searches).

Only published translations of non-internal articles, in a locale the help center offers, are
ever public: every selector here filters on exactly that, so a draft, a withdrawn translation or
an internal article is simply not found (the pages answer 404). Retrieval's passages are rebuilt
in the background, so its hits are checked against the live rows before they are shown.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.text import Truncator

from loket.knowledge import markdown, retrieval
from loket.knowledge.models import (
    Article,
    ArticleTranslation,
    ArticleVote,
    Category,
    HelpCenter,
    SearchTerm,
    TranslationStatus,
)

SEARCH_SOURCE = "helpcenter"
MAX_QUERY = 200
SNIPPET_CHARS = 180
# Retrieval always ranks something (the nearest meaning); below this confidence a hit is noise
# to a reader and the search counts as a miss. Far below retrieval's ANSWER_THRESHOLD: a list of
# results may be looser than an answer. Measured on small sets: unrelated questions ("wifi
# password" over ferry articles) stay under 0.05, related ones across languages above 0.25.
MIN_CONFIDENCE = 0.15


def live_translations(workspace_id: int):
    """Published translations of the workspace's non-internal articles."""
    return ArticleTranslation.objects.filter(
        workspace_id=workspace_id,
        status=TranslationStatus.PUBLISHED,
        article__internal=False,
        article__workspace_id=workspace_id,
    )


# --- Help centers -----------------------------------------------------------------------------


def help_center_by_slug(slug: str) -> HelpCenter | None:
    return (
        HelpCenter.objects.select_related("workspace")
        .filter(workspace__slug=slug, enabled=True)
        .first()
    )


@dataclass(frozen=True)
class Address:
    """Where a workspace's public help center lives: its absolute origin (no trailing slash:
    the custom domain when it has one, else ``LOKET_PUBLIC_URL/help/<slug>``) and the locales
    it offers. The one place links to it are built (API, composer, bot, pages' canonicals)."""

    origin: str
    locales: tuple[str, ...]

    def article(self, locale: str, slug: str) -> str | None:
        if locale.lower() not in self.locales:
            return None
        return f"{self.origin}/{locale}/a/{slug}/"


def origin_of(help_center: HelpCenter, workspace_slug: str) -> str:
    if help_center.custom_domain:
        scheme = urlsplit(settings.LOKET_PUBLIC_URL).scheme or "https"
        return f"{scheme}://{help_center.custom_domain}"
    return f"{settings.LOKET_PUBLIC_URL}/help/{workspace_slug}"


def address_of(workspace_id: int) -> Address | None:
    """The workspace's help center address, or None when it has none switched on."""
    found = (
        HelpCenter.objects.filter(workspace_id=workspace_id, enabled=True)
        .select_related("workspace")
        .first()
    )
    if found is None:
        return None
    return Address(origin_of(found, found.workspace.slug), tuple(found.offered_locales))


def article_url(workspace_id: int, locale: str, slug: str) -> str | None:
    """A public article's address in the workspace's help center, or None when not shown."""
    address = address_of(workspace_id)
    return address.article(locale, slug) if address else None


def help_center_by_domain(host: str) -> HelpCenter | None:
    """The help center at this custom domain, enabled or not (a disabled one answers 404 on
    its domain rather than letting Loket's own pages show there)."""
    host = (host or "").strip().lower().rstrip(".")
    if not host:
        return None
    return HelpCenter.objects.select_related("workspace").filter(custom_domain=host).first()


def custom_domains() -> frozenset[str]:
    """Every help center's custom domain (the host-routing middleware's set)."""
    return frozenset(
        HelpCenter.objects.filter(custom_domain__isnull=False).values_list(
            "custom_domain", flat=True
        )
    )


def localized(values: dict, locale: str, fallback: str = "") -> str:
    values = values or {}
    return values.get(locale) or values.get(locale.split("-")[0]) or fallback


# --- Pages ------------------------------------------------------------------------------------


@dataclass
class Section:
    category: Category | None
    name: str
    description: str
    translations: list[ArticleTranslation]


def _ordered(translations) -> list[ArticleTranslation]:
    return sorted(translations, key=lambda t: (t.article.position, t.article_id))


def sections(workspace_id: int, locale: str, default_locale: str) -> list[Section]:
    """The categories (in order) with their live articles in ``locale``; articles without a
    category come last under ``category=None``. Empty categories are left out."""
    live = list(live_translations(workspace_id).filter(locale=locale).select_related("article"))
    by_category: dict[int | None, list[ArticleTranslation]] = {}
    for translation in live:
        by_category.setdefault(translation.article.category_id, []).append(translation)
    found = []
    for category in Category.objects.filter(workspace_id=workspace_id):
        if category.pk in by_category:
            found.append(
                Section(
                    category,
                    category_name(category, locale, default_locale),
                    localized(category.descriptions, locale),
                    _ordered(by_category[category.pk]),
                )
            )
    if None in by_category:
        found.append(Section(None, "", "", _ordered(by_category[None])))
    return found


def category_name(category: Category, locale: str, default_locale: str) -> str:
    return localized(
        category.names, locale, localized(category.names, default_locale, category.slug)
    )


def category_section(
    workspace_id: int, slug: str, locale: str, default_locale: str
) -> Section | None:
    category = Category.objects.filter(workspace_id=workspace_id, slug=slug).first()
    if category is None:
        return None
    translations = _ordered(
        live_translations(workspace_id)
        .filter(locale=locale, article__category=category)
        .select_related("article")
    )
    return Section(
        category,
        category_name(category, locale, default_locale),
        localized(category.descriptions, locale),
        translations,
    )


def translation(workspace_id: int, locale: str, slug: str) -> ArticleTranslation | None:
    """The live translation at ``slug`` in ``locale`` of this workspace, else None."""
    return (
        live_translations(workspace_id)
        .filter(locale=locale, slug=slug)
        .select_related("article", "article__category")
        .first()
    )


def alternates(found: ArticleTranslation, locales: list[str]) -> dict[str, ArticleTranslation]:
    """The article's live translations in the offered ``locales`` (``found`` included)."""
    rows = live_translations(found.workspace_id).filter(article_id=found.article_id)
    return {row.locale: row for row in rows if row.locale in locales}


def count_view(article_id: int) -> None:
    Article.objects.filter(pk=article_id).update(views=F("views") + 1)


def description(translation: ArticleTranslation) -> str:
    return Truncator(" ".join(markdown.to_text(translation.body).split())).chars(160)


def body_html(translation: ArticleTranslation, images: str | None = None) -> str:
    """The published text as HTML; ``images``: where the page serves uploaded images."""
    return markdown.to_html(translation.body, images)


# --- Search -----------------------------------------------------------------------------------


@dataclass
class Result:
    translation: ArticleTranslation
    snippet: str


def normalise_query(query: str) -> str:
    return " ".join((query or "").lower().split())[:MAX_QUERY].strip()


def search(
    workspace_id: int,
    query: str,
    locale: str,
    locales: list[str],
    *,
    limit: int = 10,
    exclude_article: int | None = None,
) -> list[Result]:
    """Retrieval's public hits, each shown in the reader's ``locale`` when the article has a live
    translation there, else in the hit's own (when that locale is offered)."""
    query = " ".join((query or "").split())[:MAX_QUERY]
    if not query:
        return []
    hits = retrieval.search(
        workspace_id, query, locale=locale, limit=limit + 1, include_internal=False
    )
    hits = [
        h
        for h in hits
        if not h.internal and h.article_id != exclude_article and h.confidence >= MIN_CONFIDENCE
    ]
    if not hits:
        return []
    live = live_translations(workspace_id).filter(
        article_id__in=[h.article_id for h in hits], locale__in=locales
    )
    by_article: dict[int, dict[str, ArticleTranslation]] = {}
    for row in live.select_related("article"):
        by_article.setdefault(row.article_id, {})[row.locale] = row
    results = []
    for hit in hits:
        rows = by_article.get(hit.article_id, {})
        shown = rows.get(locale) or rows.get(hit.locale)
        if shown is None:
            continue
        text = hit.text if shown.pk == hit.translation_id else markdown.to_text(shown.body)
        snippet = Truncator(" ".join(text.split())).chars(SNIPPET_CHARS)
        results.append(Result(shown, snippet))
    return results[:limit]


def related(found: ArticleTranslation, locales: list[str], limit: int = 3) -> list[Result]:
    """Other articles retrieval finds for this one's title."""
    return search(
        found.workspace_id,
        found.title,
        found.locale,
        locales,
        limit=limit,
        exclude_article=found.article_id,
    )


def record_search(workspace_id: int, query: str, locale: str, *, found: bool) -> None:
    """Counts a search (and a miss when nothing was found) under its normalised query."""
    query = normalise_query(query)
    if not query:
        return
    changes = {
        "searches": F("searches") + 1,
        "misses": F("misses") + (0 if found else 1),
        "last_at": timezone.now(),
    }
    rows = SearchTerm.objects.filter(
        workspace_id=workspace_id, source=SEARCH_SOURCE, locale=locale, query=query
    )
    if rows.update(**changes):
        return
    try:
        with transaction.atomic():
            SearchTerm.objects.create(
                workspace_id=workspace_id,
                source=SEARCH_SOURCE,
                locale=locale,
                query=query,
                searches=1,
                misses=0 if found else 1,
            )
    except IntegrityError:  # another request created it just now
        rows.update(**changes)


# --- Votes ------------------------------------------------------------------------------------


def voter_key(visitor: str) -> str:
    """The stored voter: an HMAC of the visitor's random cookie (64 hex characters)."""
    key = hashlib.sha256(f"loket.helpcenter.voter:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, visitor.encode(), hashlib.sha256).hexdigest()


def vote(found: ArticleTranslation, voter: str, helpful: bool) -> None:
    """One vote per voter and translation; a changed vote moves the counts."""
    yes, no = "helpful_yes", "helpful_no"
    with transaction.atomic():
        existing = (
            ArticleVote.objects.select_for_update().filter(translation=found, voter=voter).first()
        )
        if existing is None:
            try:
                with transaction.atomic():
                    ArticleVote.objects.create(
                        workspace_id=found.workspace_id,
                        translation=found,
                        voter=voter,
                        helpful=helpful,
                    )
            except IntegrityError:  # the same visitor's other request won
                return
            field = yes if helpful else no
            ArticleTranslation.objects.filter(pk=found.pk).update(**{field: F(field) + 1})
            return
        if existing.helpful == helpful:
            return
        existing.helpful = helpful
        existing.created_at = timezone.now()
        existing.save(update_fields=["helpful", "created_at"])
        up, down = (yes, no) if helpful else (no, yes)
        ArticleTranslation.objects.filter(pk=found.pk).update(
            **{up: F(up) + 1, down: Greatest(F(down) - 1, 0)}
        )


def current_vote(found: ArticleTranslation, voter: str) -> bool | None:
    return (
        ArticleVote.objects.filter(translation=found, voter=voter)
        .values_list("helpful", flat=True)
        .first()
    )
