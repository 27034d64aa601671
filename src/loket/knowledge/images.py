"""Images in articles: an admin uploads a PNG, JPEG, WebP or GIF (at most ``MAX_IMAGE_BYTES``)
into an article; the text refers to it as ``![alt](image:<key>)``, which stays true whatever
host shows the article. ``loket.knowledge.markdown.to_html`` turns the reference into the
showing page's own URL for it: the help center's ``<site>/images/<key>`` (on Loket's host or
a custom domain) or the editor's. Images by URL (``https://…``) work as well.

Who may fetch an image: anyone while its article is public (not internal, with a published
translation), otherwise the workspace's members only. The key is 96 random bits, and images are
checked by their first bytes and served with their own type and ``nosniff``, never as SVG or
HTML."""

from __future__ import annotations

import hashlib

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from loket.knowledge import services
from loket.knowledge.models import Article, ArticleImage, TranslationStatus
from loket.tenancy import photos
from loket.tenancy.models import Membership

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES_PER_ARTICLE = 200
SCHEME = "image:"


class InvalidImage(ValueError):
    """Not an image Loket takes; the message says why in plain words."""


def upload(article: Article, data: bytes, *, actor: Membership | None = None) -> ArticleImage:
    """Store ``data`` as an image of ``article`` (``actor``, when given, must be an admin)."""
    services._check_admin(actor, article.workspace_id)
    if ArticleImage.objects.filter(article=article).count() >= MAX_IMAGES_PER_ARTICLE:
        raise InvalidImage(f"an article can have at most {MAX_IMAGES_PER_ARTICLE} images")
    try:
        stored = photos.store(f"knowledge/{article.workspace_id}", data, max_bytes=MAX_IMAGE_BYTES)
    except photos.InvalidPhoto as exc:
        raise InvalidImage(str(exc)) from None
    content_type, _extension = photos.kind(data)
    try:
        return ArticleImage.objects.create(
            workspace_id=article.workspace_id,
            article=article,
            key=stored.rsplit("/", 1)[-1],
            stored_name=stored,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created_by=actor,
        )
    except Exception:
        default_storage.delete(stored)  # no file without its row
        raise


def markdown_for(image: ArticleImage, alt: str = "") -> str:
    """What the editor inserts for an uploaded image."""
    alt = " ".join((alt or "").replace("[", "(").replace("]", ")").split())[:120]
    return f"![{alt}]({SCHEME}{image.key})"


def for_members(workspace_id: int, key: str) -> ArticleImage | None:
    return ArticleImage.objects.filter(workspace_id=workspace_id, key=key).first()


def for_public(workspace_id: int, key: str) -> ArticleImage | None:
    """The image when its article is one the help center shows."""
    return (
        ArticleImage.objects.filter(
            workspace_id=workspace_id,
            key=key,
            article__internal=False,
            article__translations__status=TranslationStatus.PUBLISHED,
        )
        .distinct()
        .first()
    )


def read(image: ArticleImage) -> tuple[bytes, str] | None:
    return photos.read(image.stored_name)


@receiver(post_delete, sender=ArticleImage)
def _delete_file(sender, instance: ArticleImage, **kwargs) -> None:
    # After the commit: a rolled-back delete keeps its file.
    name = instance.stored_name
    transaction.on_commit(lambda: default_storage.delete(name))
