"""The knowledge base over the API (loket.knowledge has the services and retrieval): every
member reads categories and articles and may search; owners and admins create, change, publish,
withdraw and delete them.

``POST /knowledge/search`` and ``POST /knowledge/answer`` are retrieval as the help center and the
flow bot use it, for outside tools that measure its quality: internal (agents-only) articles are
left out unless ``include_internal`` is asked for, and ``answer`` makes the same decision the bot
makes (no answer below the confidence threshold; nothing is ever generated)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils.text import Truncator
from ninja import Field, File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from loket.api.main import ApiError
from loket.knowledge import images, public, retrieval, services
from loket.knowledge.models import (
    Article,
    ArticleTranslation,
    Category,
    TranslationStatus,
)
from loket.tenancy.services import NotAllowed

router = Router(tags=["knowledge"])

SNIPPET_CHARS = 240


class CategoryOut(Schema):
    id: int
    slug: str
    names: dict[str, str]
    descriptions: dict[str, str]
    position: int
    created_at: dt.datetime


class CategoryIn(Schema):
    names: dict[str, str]  # {"en": "Bookings", "nl": "Boekingen"}
    descriptions: dict[str, str] = {}
    slug: str | None = None  # derived from the (English) name when left out
    position: int | None = None


class CategoryPatch(Schema):
    names: dict[str, str] | None = None
    descriptions: dict[str, str] | None = None
    slug: str | None = None
    position: int | None = None


class TranslationOut(Schema):
    id: int
    locale: str
    slug: str
    status: str  # draft (never published), published, withdrawn
    title: str  # as published
    body: str  # Markdown, as published
    draft_title: str
    draft_body: str
    draft_changed: bool  # the draft differs from what is published
    helpful_yes: int
    helpful_no: int
    published_at: dt.datetime | None
    updated_at: dt.datetime


class ArticleOut(Schema):
    id: int
    category_id: int | None
    internal: bool  # for agents only: never in the help center, the widget or the bot
    position: int
    views: int
    translations: list[TranslationOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class ArticleIn(Schema):
    """A new article with its first translation, as a draft."""

    locale: str
    title: str
    body: str = ""  # Markdown
    category_id: int | None = None
    internal: bool = False


class ArticlePatch(Schema):
    category_id: int | None = None  # null: no category
    internal: bool | None = None
    position: int | None = None


class DraftIn(Schema):
    title: str
    body: str = ""  # Markdown


class SearchIn(Schema):
    query: str = Field(..., max_length=1000)
    locale: str | None = None
    limit: int = Field(5, ge=1, le=20)
    include_internal: bool = False


class SearchHit(Schema):
    article_id: int
    locale: str
    title: str
    heading: str
    snippet: str
    score: float  # fused rank score (orders the results)
    confidence: float  # 0..1, what answer() compares with its threshold
    url: str | None  # the article in the public help center, when it is there


class SearchOut(Schema):
    results: list[SearchHit]


class AnswerIn(Schema):
    question: str = Field(..., max_length=1000)
    locale: str | None = None


class AnswerOut(Schema):
    answer: str | None  # the passage that answers, or null: not sure enough
    article_id: int | None
    locale: str | None
    title: str | None
    url: str | None
    confidence: float


def category_out(category: Category) -> dict[str, Any]:
    return {
        "id": category.pk,
        "slug": category.slug,
        "names": category.names or {},
        "descriptions": category.descriptions or {},
        "position": category.position,
        "created_at": category.created_at,
    }


def translation_out(translation: ArticleTranslation) -> dict[str, Any]:
    return {
        "id": translation.pk,
        "locale": translation.locale,
        "slug": translation.slug,
        "status": translation.status,
        "title": translation.title,
        "body": translation.body,
        "draft_title": translation.draft_title,
        "draft_body": translation.draft_body,
        "draft_changed": services.has_draft_changes(translation),
        "helpful_yes": translation.helpful_yes,
        "helpful_no": translation.helpful_no,
        "published_at": translation.published_at,
        "updated_at": translation.updated_at,
    }


def article_out(article: Article) -> dict[str, Any]:
    return {
        "id": article.pk,
        "category_id": article.category_id,
        "internal": article.internal,
        "position": article.position,
        "views": article.views,
        "translations": [translation_out(t) for t in article.translations.all()],
        "created_at": article.created_at,
        "updated_at": article.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    return ApiError(400, "invalid", str(exc))


def _category(request, category_id: int) -> Category:
    category = services.get_category(request.membership.workspace_id, category_id)
    if category is None:
        raise Http404("no such category")
    return category


def _article(request, article_id: int) -> Article:
    article = services.get_article(request.membership.workspace_id, article_id)
    if article is None:
        raise Http404("no such article")
    return article


def _translation(request, article_id: int, locale: str) -> ArticleTranslation:
    article = _article(request, article_id)
    found = services.translation_of(article, locale)
    if found is None:
        raise Http404("no such translation")
    return found


def _fresh(request, article_id: int) -> dict[str, Any]:
    return article_out(_article(request, article_id))


def article_url(request, locale: str, slug: str) -> str | None:
    """The article's page in the public help center, when the help center shows it (the
    address is looked up once per request)."""
    if not hasattr(request, "_kb_help_center"):
        request._kb_help_center = public.address_of(request.membership.workspace_id)
    address = request._kb_help_center
    return address.article(locale, slug) if address else None


# -- categories ---------------------------------------------------------------------------------
@router.get("/knowledge/categories", response=list[CategoryOut])
def list_categories(request):
    return [category_out(c) for c in services.categories_of(request.membership.workspace_id)]


@router.post("/knowledge/categories", response={201: CategoryOut})
def create_category(request, data: CategoryIn):
    member = request.membership
    try:
        category = services.create_category(member.workspace, actor=member, **data.dict())
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return Status(201, category_out(category))


@router.get("/knowledge/categories/{int:category_id}", response=CategoryOut)
def get_category(request, category_id: int):
    return category_out(_category(request, category_id))


@router.patch("/knowledge/categories/{int:category_id}", response=CategoryOut)
def update_category(request, category_id: int, data: CategoryPatch):
    category = _category(request, category_id)
    changes = {k: v for k, v in data.dict(exclude_unset=True).items() if v is not None}
    try:
        services.update_category(category, actor=request.membership, **changes)
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return category_out(category)


@router.delete("/knowledge/categories/{int:category_id}", response={204: None})
def delete_category(request, category_id: int):
    """Its articles stay, without a category."""
    category = _category(request, category_id)
    try:
        services.delete_category(category, actor=request.membership)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)


# -- articles -----------------------------------------------------------------------------------
@router.get("/knowledge/articles", response=list[ArticleOut])
def list_articles(
    request,
    category_id: int | None = None,
    locale: str | None = None,
    status: TranslationStatus | None = None,
    q: str | None = None,
):
    """Articles with all their translations; ``locale``, ``status`` and ``q`` (text in a title
    or body, draft or published) keep those with a translation matching all of them."""
    found = services.articles_of(
        request.membership.workspace_id,
        category_id=category_id,
        locale=locale,
        status=status.value if status else None,
        text=q,
    )
    return [article_out(a) for a in found]


@router.post("/knowledge/articles", response={201: ArticleOut})
def create_article(request, data: ArticleIn):
    member = request.membership
    fields = data.dict()
    fields["category"] = fields.pop("category_id")
    try:
        article = services.create_article(member.workspace, actor=member, **fields)
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return Status(201, _fresh(request, article.pk))


# Declared before the /knowledge/articles/{article_id} routes, so a walk over the routes in
# order publishes, withdraws, edits and deletes a translation before it deletes the article.
@router.post(
    "/knowledge/articles/{int:article_id}/translations/{locale}/publish", response=ArticleOut
)
def publish_translation(request, article_id: int, locale: str):
    """The translation's draft becomes its published text (re-indexed in the background)."""
    translation = _translation(request, article_id, locale)
    try:
        with transaction.atomic():
            services.publish(translation, actor=request.membership)
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return _fresh(request, article_id)


@router.post(
    "/knowledge/articles/{int:article_id}/translations/{locale}/withdraw", response=ArticleOut
)
def withdraw_translation(request, article_id: int, locale: str):
    """Take a published translation offline; its texts stay (publish brings it back)."""
    translation = _translation(request, article_id, locale)
    try:
        services.withdraw(translation, actor=request.membership)
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return _fresh(request, article_id)


@router.put("/knowledge/articles/{int:article_id}/translations/{locale}", response=ArticleOut)
def save_draft(request, article_id: int, locale: str, data: DraftIn):
    """The draft of the translation in ``locale``, made when the article has none yet; what is
    published is unchanged until ``.../publish``."""
    article = _article(request, article_id)
    try:
        services.save_draft(
            article, locale, title=data.title, body=data.body, actor=request.membership
        )
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return _fresh(request, article_id)


@router.delete("/knowledge/articles/{int:article_id}/translations/{locale}", response={204: None})
def delete_translation(request, article_id: int, locale: str):
    translation = _translation(request, article_id, locale)
    try:
        services.delete_translation(translation, actor=request.membership)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)


class ImageOut(Schema):
    key: str
    markdown: str  # put this into a translation's body: ![alt](image:<key>)
    content_type: str
    size: int


@router.post("/knowledge/articles/{int:article_id}/images", response={201: ImageOut})
def upload_image(request, article_id: int, file: File[UploadedFile], alt: Form[str] = ""):
    """Upload an image (multipart field ``file``: PNG, JPEG, WebP or GIF, at most 5 MB; ``alt``:
    its description) into the article. Its text refers to it as ``image:<key>``; the help center
    serves it while the article is public."""
    article = _article(request, article_id)
    if file.size > images.MAX_IMAGE_BYTES:
        raise ApiError(400, "invalid", "an image can be at most 5 MB")
    try:
        image = images.upload(article, file.read(), actor=request.membership)
    except (NotAllowed, images.InvalidImage) as exc:
        raise _refused(exc) from exc
    return Status(
        201,
        {
            "key": image.key,
            "markdown": images.markdown_for(image, alt),
            "content_type": image.content_type,
            "size": image.size,
        },
    )


@router.get("/knowledge/articles/{int:article_id}", response=ArticleOut)
def get_article(request, article_id: int):
    return article_out(_article(request, article_id))


@router.patch("/knowledge/articles/{int:article_id}", response=ArticleOut)
def update_article(request, article_id: int, data: ArticlePatch):
    """Move to a category (``category_id``; null: none), set ``internal`` (re-indexed), or
    ``position``."""
    article = _article(request, article_id)
    changes = data.dict(exclude_unset=True)
    if "category_id" in changes:
        changes["category"] = changes.pop("category_id")
    try:
        services.update_article(article, actor=request.membership, **changes)
    except (NotAllowed, services.InvalidKnowledge) as exc:
        raise _refused(exc) from exc
    return _fresh(request, article_id)


@router.delete("/knowledge/articles/{int:article_id}", response={204: None})
def delete_article(request, article_id: int):
    article = _article(request, article_id)
    try:
        services.delete_article(article, actor=request.membership)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)


# -- retrieval ----------------------------------------------------------------------------------
def _locale(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return services.clean_locale(value)
    except services.InvalidKnowledge as exc:
        raise _refused(exc) from exc


def _url(request, hit: retrieval.Hit) -> str | None:
    if hit.internal:
        return None
    return article_url(request, hit.locale, hit.slug)


@router.post("/knowledge/search", response=SearchOut)
def search(request, data: SearchIn):
    """The published articles that best match ``query``, best first, one result per article
    (its best passage, in ``locale`` when the article has it)."""
    hits = retrieval.search(
        request.membership.workspace_id,
        data.query,
        locale=_locale(data.locale),
        limit=data.limit,
        include_internal=data.include_internal,
    )
    return {
        "results": [
            {
                "article_id": hit.article_id,
                "locale": hit.locale,
                "title": hit.title,
                "heading": hit.heading,
                "snippet": Truncator(hit.text).chars(SNIPPET_CHARS),
                "score": round(hit.score, 6),
                "confidence": round(hit.confidence, 4),
                "url": _url(request, hit),
            }
            for hit in hits
        ]
    }


@router.post("/knowledge/answer", response=AnswerOut)
def answer(request, data: AnswerIn):
    """The bot's decision: the best passage when confident enough, else ``answer: null`` (with
    the best article found, if any, and its confidence)."""
    found = retrieval.answer(
        request.membership.workspace_id, data.question, locale=_locale(data.locale)
    )
    hit = found.hit
    return {
        "answer": found.text,
        "article_id": hit.article_id if hit else None,
        "locale": hit.locale if hit else None,
        "title": hit.title if hit else None,
        "url": _url(request, hit) if hit else None,
        "confidence": round(found.confidence, 4),
    }
