"""A help center for workspace ``acme`` (en + nl) with a few articles, built with the ORM."""

from __future__ import annotations

import pytest
from django.utils import timezone

from loket.knowledge.models import (
    Article,
    ArticleTranslation,
    Category,
    HelpCenter,
    TranslationStatus,
)


def make_article(
    workspace,
    texts: dict[str, tuple[str, str, str]],
    *,
    category=None,
    internal: bool = False,
    status: str = TranslationStatus.PUBLISHED,
) -> Article:
    """``texts``: ``{"en": (slug, title, body), "nl": ...}``, every translation in ``status``."""
    article = Article.objects.create(workspace=workspace, category=category, internal=internal)
    for locale, (slug, title, body) in texts.items():
        live = status != TranslationStatus.DRAFT
        ArticleTranslation.objects.create(
            workspace=workspace,
            article=article,
            locale=locale,
            slug=slug,
            status=status,
            title=title if live else "",
            body=body if live else "",
            draft_title=title,
            draft_body=body,
            published_at=timezone.now() if live else None,
        )
    return article


@pytest.fixture
def help_center(workspace):
    return HelpCenter.objects.create(
        workspace=workspace,
        enabled=True,
        titles={"en": "Acme help", "nl": "Acme hulp"},
        brand_color="#aa3300",
        default_locale="en",
        locales=["en", "nl"],
    )


@pytest.fixture
def bookings(workspace):
    return Category.objects.create(
        workspace=workspace,
        slug="bookings",
        names={"en": "Bookings", "nl": "Boekingen"},
        descriptions={"en": "Booking, changing and cancelling."},
    )


@pytest.fixture
def change_booking(workspace, bookings):
    return make_article(
        workspace,
        {
            "en": (
                "change-booking",
                "Changing a booking",
                "You can change your booking **up to 24 hours** before departure.\n\n"
                "## Online\n\nOpen *My bookings* and choose Change.",
            ),
            "nl": (
                "boeking-wijzigen",
                "Een boeking wijzigen",
                "Je kunt je boeking **tot 24 uur** voor vertrek wijzigen.\n\n"
                "## Online\n\nOpen *Mijn boekingen* en kies Wijzigen.",
            ),
        },
        category=bookings,
    )
