"""The knowledge base's rows: categories, articles and their translations (each with a draft and
a published text), the passages retrieval searches, votes, and searches that found nothing.
Every row carries its workspace.

An ``Article`` is the subject ("Changing a booking"); its ``ArticleTranslation`` rows are the
texts per locale, linked through it, each edited as a draft and published on its own. Published
translations are cut into ``Passage`` rows (a heading and a few paragraphs) with an embedding,
rebuilt in the background whenever a translation is published or withdrawn
(``loket.knowledge.tasks.index_article``)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loket.crypto import EncryptedJSONField
from loket.tenancy.models import Membership, Workspace, WorkspaceScoped


class Category(WorkspaceScoped):
    """A group of articles in the help center. ``names``: ``{"en": "Bookings", "nl": ...}``."""

    slug = models.SlugField(max_length=100)
    names = models.JSONField(default=dict)
    descriptions = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="kb_category_slug"),
        ]

    def __str__(self) -> str:
        return self.slug


class Article(WorkspaceScoped):
    """One subject, in as many locales as it has translations. ``internal``: for agents only
    (suggested in the composer, never in the help center, the widget or the bot)."""

    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="articles"
    )
    internal = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"article {self.pk}"


class TranslationStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")  # never published
    PUBLISHED = "published", _("Published")  # the published text is live (the draft may differ)
    WITHDRAWN = "withdrawn", _("Withdrawn")  # was published, taken offline


class ArticleTranslation(WorkspaceScoped):
    """An article's text in one locale: the published title and body (Markdown) the help
    center, the widget, the composer and the bot use, and a draft being edited."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="translations")
    locale = models.CharField(max_length=10)  # "en", "nl", "nl-be"
    slug = models.SlugField(max_length=200)
    status = models.CharField(
        max_length=10, choices=TranslationStatus.choices, default=TranslationStatus.DRAFT
    )
    title = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)  # Markdown, as published
    draft_title = models.CharField(max_length=300, blank=True)
    draft_body = models.TextField(blank=True)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["article", "locale"], name="kb_translation_locale"),
            models.UniqueConstraint(
                fields=["workspace", "locale", "slug"], name="kb_translation_slug"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.locale}: {self.title or self.draft_title}"

    @property
    def is_live(self) -> bool:
        return self.status == TranslationStatus.PUBLISHED


class Passage(WorkspaceScoped):
    """A piece of a published translation (its title, a heading, a few paragraphs), as retrieval
    searches it: full text in the database, meaning by ``embedding`` (float32, L2-normalised).

    Or, when the workspace learns from resolved conversations
    (``Workspace.learn_from_conversations``, loket.knowledge.conversations), a resolved
    conversation's question and its agents' answer: ``conversation`` set, no translation or
    article, always ``internal``; ``source_at`` is the ``resolved_at`` it was made from."""

    translation = models.ForeignKey(
        ArticleTranslation, on_delete=models.CASCADE, related_name="passages", null=True, blank=True
    )
    article = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    source_at = models.DateTimeField(null=True, blank=True)
    locale = models.CharField(max_length=10)
    internal = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    heading = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    embedding = models.BinaryField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True)  # what made the embedding

    class Meta:
        ordering = ["translation_id", "position"]
        indexes = [models.Index(fields=["workspace", "locale"], name="kb_passage_ws_locale")]

    def __str__(self) -> str:
        if self.conversation_id:
            return f"conversation {self.conversation_id}"
        return f"{self.translation_id}#{self.position}"


class ArticleImage(WorkspaceScoped):
    """An image uploaded into an article's text (loket.knowledge.images). The Markdown names it
    ``image:<key>``; the help center and the editor turn that into their own URL for it. It
    belongs to the article it was uploaded to: public while that article is public, to the
    workspace's members otherwise. The file goes when the row does."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="images")
    key = models.CharField(max_length=40, unique=True)  # "<24 random hex>.<ext>"
    stored_name = models.CharField(max_length=200)  # in Django's default storage
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class ArticleVote(WorkspaceScoped):
    """A reader's "was this helpful?", one per reader (``voter``: a hashed visitor key) and
    translation; changing it moves the counts on the translation."""

    translation = models.ForeignKey(
        ArticleTranslation, on_delete=models.CASCADE, related_name="votes"
    )
    voter = models.CharField(max_length=64)
    helpful = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["translation", "voter"], name="kb_vote_once"),
        ]


class SearchTerm(WorkspaceScoped):
    """What people searched for and how often (normalised, per locale and where: the help
    center, the widget, the agents), and how often it found nothing."""

    query = models.CharField(max_length=200)
    locale = models.CharField(max_length=10, blank=True)
    source = models.CharField(max_length=20)
    searches = models.PositiveIntegerField(default=0)
    misses = models.PositiveIntegerField(default=0)  # searches with no result
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "source", "locale", "query"], name="kb_search_term"
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "-misses"], condition=Q(misses__gt=0), name="kb_search_misses"
            )
        ]


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def validate_custom_domain(value: str) -> None:
    """A lower-case host name with at least two labels, no port, no scheme, not an IP address."""
    host = value or ""
    labels = host.split(".")
    if (
        host != host.lower()
        or len(host) > 253
        or len(labels) < 2
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            _("Enter a host name such as help.example.com (no https://, no port, no path)."),
            code="invalid_domain",
        )


class HelpCenter(models.Model):
    """A workspace's public help center (``loket.web.helpcenter``): published, non-internal
    translations in the ``locales`` it offers, at ``/help/<workspace slug>/<locale>/`` and, when
    ``custom_domain`` is set (and admitted by LOKET_ALLOWED_HOSTS), at ``<domain>/<locale>/``."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="help_center"
    )
    enabled = models.BooleanField(default=False)
    titles = models.JSONField(default=dict, blank=True)  # {"en": "Acme help", "nl": ...}
    brand_color = models.CharField(
        max_length=7,
        blank=True,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour such as #1a73e8."))],
    )
    logo_url = models.URLField(max_length=500, blank=True)
    default_locale = models.CharField(max_length=10, default="en")
    locales = models.JSONField(default=list, blank=True)  # offered; empty: the default only
    custom_domain = models.CharField(
        max_length=253, unique=True, null=True, blank=True, validators=[validate_custom_domain]
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"help center of {self.workspace_id}"

    def save(self, *args, **kwargs):
        self.custom_domain = (self.custom_domain or "").strip().lower().rstrip(".") or None
        super().save(*args, **kwargs)

    @property
    def offered_locales(self) -> list[str]:
        offered = [str(code).lower() for code in self.locales or [] if code]
        if self.default_locale.lower() not in offered:
            offered.insert(0, self.default_locale.lower())
        return offered

    def title_for(self, locale: str) -> str:
        titles = self.titles or {}
        return (
            titles.get(locale)
            or titles.get(locale.split("-")[0])
            or titles.get(self.default_locale)
            or ""
        )


class SweepMark(models.Model):
    """How far a background sweep over the messages has read (its name, the last message id),
    so a sweep reads each message once and needs nothing in the ingest's transaction."""

    name = models.CharField(max_length=50, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_id}"


class SuggestionKind(models.TextChoices):
    ARTICLE = "article", _("Article")
    CANNED = "canned", _("Canned reply")
    CONVERSATION = "conversation", _("Resolved conversation")


class SuggestionVerdict(models.TextChoices):
    USED = "used", _("Used")  # inserted (and, when sent, kept mostly as suggested)
    EDITED = "edited", _("Edited")  # inserted, then sent changed substantially
    WRONG = "wrong", _("Not helpful")


class SuggestionFeedback(WorkspaceScoped):
    """What an agent did with one of the composer's suggestions (``loket.knowledge.suggestions``):
    inserted it (``used``; turned into ``edited`` when the reply sent differs substantially from
    ``text``, the text inserted) or called it not helpful (``wrong``). The source is
    ``article``, ``canned_reply`` or ``source_conversation`` (a resolved conversation's answer,
    loket.knowledge.conversations) by ``kind``; it stays counted when that row is deleted."""

    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=SuggestionKind.choices)
    article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    canned_reply = models.ForeignKey(
        "automation.CannedReply", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_conversation = models.ForeignKey(
        "inbox.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verdict = models.CharField(max_length=10, choices=SuggestionVerdict.choices)
    text = models.TextField(blank=True)  # what was inserted (for the "edited" check)
    kept = models.FloatField(null=True, blank=True)  # share of ``text`` the sent reply kept
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="kb_feedback_ws_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.verdict}"


# -- an optional language model (loket.knowledge.llm) -------------------------------------------
class LlmProvider(models.Model):
    """A workspace's language model, when it has one: an OpenAI-compatible chat-completions
    endpoint (a local Ollama or vLLM server, or a hosted API). Nothing leaves the machine unless
    this is set and switched on. Spending is capped per day (tokens) and per month (cost)."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="llm")
    enabled = models.BooleanField(default=False)
    base_url = models.URLField(max_length=500)  # e.g. http://127.0.0.1:11434/v1
    model = models.CharField(max_length=200)
    api_key = EncryptedJSONField(purpose="llm-api-key", blank=True)  # {"key": "..."}
    timeout_seconds = models.PositiveSmallIntegerField(default=30)
    max_tokens_per_day = models.PositiveIntegerField(default=200_000)
    max_cost_per_month_cents = models.PositiveIntegerField(default=5_000)
    # Prices per 1,000 tokens, in hundredths of a cent (0 for a local model).
    prompt_price = models.PositiveIntegerField(default=0)
    completion_price = models.PositiveIntegerField(default=0)
    # What it may be used for: draft replies, summaries, translations.
    features = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.model} at {self.base_url}"


class LlmCall(WorkspaceScoped):
    """One request to the language model, kept for review: what it was for, the prompt and the
    sources given, the answer, the tokens and the cost; refused ones (a cap) too."""

    conversation = models.ForeignKey(
        "inbox.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=20)  # draft | summary | translate
    model = models.CharField(max_length=200, blank=True)
    prompt = models.JSONField(default=list)  # the chat messages sent
    sources = models.JSONField(default=list, blank=True)  # passages given: article, title
    response = models.TextField(blank=True)
    status = models.CharField(max_length=10)  # ok | error | capped
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_cents = models.FloatField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"], name="kb_llm_ws_created")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.status}"


# -- enrichment of conversations (loket.knowledge.enrichment) -----------------------------------
class Sentiment(models.TextChoices):
    NEGATIVE = "negative", _("Negative")
    NEUTRAL = "neutral", _("Neutral")
    POSITIVE = "positive", _("Positive")


class Urgency(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class ConversationInsight(WorkspaceScoped):
    """What the offline models make of a conversation's customer messages: sentiment and urgency
    (a coarse lexicon-based estimate, labelled as such in the UI) and the labels its workspace's
    own classifier predicts. Read by the rules' conditions and shown to agents."""

    conversation = models.OneToOneField(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="insight"
    )
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    sentiment_score = models.FloatField(default=0)  # -1 .. 1
    urgency = models.CharField(max_length=10, choices=Urgency.choices, blank=True)
    predicted_labels = models.JSONField(default=list, blank=True)  # [{"name", "score"}]
    message = models.ForeignKey(  # the last customer message read
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.conversation_id}: {self.sentiment or '-'} {self.urgency or '-'}"


class LabelModel(models.Model):
    """A workspace's label classifier, trained in the background on its own labelled
    conversations (the customer's words → the labels agents gave): its labels, its weights
    (``numpy.save`` bytes), how many conversations it learnt from and how well it did on the
    ones held out."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="label_model"
    )
    labels = models.JSONField(default=list)
    weights = models.BinaryField(null=True, blank=True)
    samples = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)  # on held-out conversations
    trained_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"label model of {self.workspace_id} ({self.samples} samples)"
