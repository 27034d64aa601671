"""The public help center's pages (server-rendered, no JavaScript, no sign-in, no session).

Each page lives under a site prefix: ``/help/<workspace slug>/`` on Loket's own host, or ``/`` on
the help center's custom domain (``middleware.HelpCenterDomainMiddleware`` switches the URLconf).
Everything shown comes from :mod:`loket.knowledge.public`, which only ever finds published
translations of non-internal articles; anything else is a 404.

No page sets a cookie, except the "was this helpful?" vote, which sets a random visitor cookie
(only its HMAC is stored, as ``ArticleVote.voter``). The vote form needs no CSRF token (so pages
stay cookie-free and cacheable); a cross-site POST is refused by its ``Origin`` header instead.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from loket.knowledge import images, public
from loket.knowledge.models import HelpCenter
from loket.tenancy import photos

log = logging.getLogger(__name__)

VISITOR_COOKIE = "loket_hc_visitor"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
VISITOR_COOKIE_DAYS = 365
SUGGEST_LIMIT = 3
SUGGEST_MIN_CHARS = 3
# No script at all; styles only from our own static files (the brand colour comes as a tiny
# generated stylesheet, not a style attribute); images from anywhere over HTTPS (logos,
# pictures in articles).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass
class Site:
    """One help center as a request sees it: where its pages live and in which locale."""

    help_center: HelpCenter
    prefix: str  # "/help/acme/" or "/"
    origin: str  # absolute base of canonical URLs, without the trailing slash
    locale: str = ""
    locales: list[str] = field(default_factory=list)

    @property
    def workspace(self):
        return self.help_center.workspace

    @property
    def title(self) -> str:
        return self.help_center.title_for(self.locale) or _("%(name)s help center") % {
            "name": self.workspace.name
        }

    def path(self, locale: str, *parts: str) -> str:
        tail = "".join(f"{part}/" for part in parts)
        return f"{self.prefix}{locale}/{tail}"

    def canonical(self, locale: str, *parts: str) -> str:
        return self.origin + self.path(locale, *parts)[len(self.prefix) - 1 :]

    def home(self, locale: str | None = None) -> str:
        return self.path(locale or self.locale)

    def article(self, row, locale: str | None = None) -> str:
        return self.path(locale or row.locale, "a", row.slug)

    def category(self, category, locale: str | None = None) -> str:
        return self.path(locale or self.locale, "c", category.slug)

    def images(self) -> str:
        return f"{self.prefix}images/"

    def brand_css(self) -> str:
        if not self.help_center.brand_color:
            return ""
        version = int(self.help_center.updated_at.timestamp())
        return f"{self.prefix}brand.css?v={version}"


def _public_scheme() -> str:
    return urlsplit(settings.LOKET_PUBLIC_URL).scheme or "https"


def _site_for(request, workspace: str | None) -> Site:
    if workspace is not None:
        help_center = public.help_center_by_slug(workspace)
        prefix = f"/help/{workspace}/"
        # The custom domain, when set, is where search engines should send people.
        origin = (
            public.origin_of(help_center, workspace)
            if help_center is not None
            else f"{settings.LOKET_PUBLIC_URL}/help/{workspace}"
        )
    else:
        help_center = getattr(request, "help_center", None)
        prefix = "/"
        origin = f"{request.scheme}://{request.get_host()}"
    if help_center is None or not help_center.enabled:
        raise Http404("no such help center")
    return Site(help_center, prefix, origin, locales=help_center.offered_locales)


def _ui_language(locale: str) -> str:
    try:
        return translation.get_supported_language_variant(locale.split("-")[0])
    except LookupError:
        return settings.LANGUAGE_CODE


def _secure(response: HttpResponse, locale: str = "") -> HttpResponse:
    response["Content-Security-Policy"] = CSP
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response["X-Content-Type-Options"] = "nosniff"
    if locale:
        response["Content-Language"] = locale
    return response


def help_page(view):
    """``view(request, site, ...)`` for a page in one locale: the help center must be enabled and
    offer the locale; the UI speaks it; a 404 inside renders the help center's own not-found
    page."""

    @functools.wraps(view)
    def wrapper(request, *args, locale: str, workspace: str | None = None, **kwargs):
        site = _site_for(request, workspace)
        offered = locale in site.locales
        site.locale = locale if offered else site.help_center.default_locale
        with translation.override(_ui_language(site.locale)):
            try:
                if not offered:
                    raise Http404("locale not offered")
                response = view(request, site, *args, **kwargs)
            except Http404:
                response = _page(
                    request,
                    site,
                    "helpcenter/not_found.html",
                    {"page_title": _("Page not found"), "robots": "noindex"},
                    status=404,
                )
            if isinstance(response, TemplateResponse):
                response.render()
        return _secure(response, site.locale)

    return csrf_exempt(wrapper)


def _page(request, site: Site, template: str, context: dict, *, status: int = 200):
    switcher = context.pop("switcher", None) or {code: site.home(code) for code in site.locales}
    context = {
        "site": site,
        "lang": site.locale,
        "switcher": [
            {"code": code, "name": _language_name(code), "url": url, "current": code == site.locale}
            for code, url in switcher.items()
        ],
        "brand_css": site.brand_css(),
        "search_url": site.path(site.locale, "search"),
        **context,
    }
    return TemplateResponse(request, template, context, status=status)


def _language_name(code: str) -> str:
    try:
        return translation.get_language_info(code)["name_local"]
    except KeyError:
        try:
            return translation.get_language_info(code.split("-")[0])["name_local"]
        except KeyError:
            return code


def _alternates(hrefs: dict[str, str], default_locale: str) -> list[dict]:
    found = [{"hreflang": code, "href": href} for code, href in hrefs.items()]
    if default_locale in hrefs:
        found.append({"hreflang": "x-default", "href": hrefs[default_locale]})
    return found


# --- Pages ------------------------------------------------------------------------------------


def root(request, workspace: str | None = None):
    """``/help/<slug>/`` (or ``/`` on a custom domain): the home in the reader's language."""
    site = _site_for(request, workspace)
    wanted = translation.get_language_from_request(request, check_path=False)
    locale = next(
        (code for code in site.locales if code.split("-")[0] == wanted.split("-")[0]),
        site.help_center.default_locale,
    )
    response = HttpResponseRedirect(site.home(locale))
    patch_vary_headers(response, ["Accept-Language"])
    return _secure(response)


@require_GET
@help_page
def home(request, site: Site):
    ws = site.workspace.pk
    default = site.help_center.default_locale
    return _page(
        request,
        site,
        "helpcenter/home.html",
        {
            "page_title": site.title,
            "description": _("Answers and guides from %(name)s.") % {"name": site.workspace.name},
            "canonical": site.canonical(site.locale),
            "alternates": _alternates(
                {code: site.canonical(code) for code in site.locales}, default
            ),
            "sections": public.sections(ws, site.locale, default),
        },
    )


@require_GET
@help_page
def category(request, site: Site, slug: str):
    ws = site.workspace.pk
    default = site.help_center.default_locale
    section = public.category_section(ws, slug, site.locale, default)
    if section is None or not section.translations:
        raise Http404("no such category")
    locales = [
        code
        for code in site.locales
        if public.live_translations(ws).filter(article__category=section.category, locale=code)
    ]
    return _page(
        request,
        site,
        "helpcenter/category.html",
        {
            "page_title": section.name,
            "description": section.description
            or _("Articles about %(topic)s.") % {"topic": section.name},
            "canonical": site.canonical(site.locale, "c", slug),
            "alternates": _alternates(
                {code: site.canonical(code, "c", slug) for code in locales}, default
            ),
            "switcher": {
                code: (
                    site.category(section.category, code) if code in locales else site.home(code)
                )
                for code in site.locales
            },
            "section": section,
        },
    )


@require_GET
@help_page
def article(request, site: Site, slug: str):
    found = public.translation(site.workspace.pk, site.locale, slug)
    if found is None:
        raise Http404("no such article")
    translations = public.alternates(found, site.locales)
    try:
        related = public.related(found, site.locales)
    except Exception:  # retrieval is a nicety here; the article itself must still show
        log.exception("related articles for translation %s", found.pk)
        related = []
    if request.method == "GET":
        public.count_view(found.article_id)
    visitor = request.COOKIES.get(VISITOR_COOKIE, "")
    voted = public.current_vote(found, public.voter_key(visitor)) if visitor else None
    category = found.article.category
    return _page(
        request,
        site,
        "helpcenter/article.html",
        {
            "page_title": found.title,
            "description": public.description(found),
            "canonical": site.canonical(found.locale, "a", found.slug),
            "alternates": _alternates(
                {code: site.canonical(code, "a", row.slug) for code, row in translations.items()},
                site.help_center.default_locale,
            ),
            "switcher": {
                code: (
                    site.article(translations[code]) if code in translations else site.home(code)
                )
                for code in site.locales
            },
            "article": found,
            "body": public.body_html(found, site.images()),
            "category": category,
            "category_name": public.category_name(
                category, site.locale, site.help_center.default_locale
            )
            if category
            else "",
            "category_url": site.category(category) if category else "",
            "related": related,
            "voted": voted,
            "thanks": request.GET.get("voted") == "1" and voted is not None,
            "vote_url": site.path(site.locale, "a", found.slug, "vote"),
        },
    )


def _same_origin(request) -> bool:
    origin = request.headers.get("Origin")
    if not origin:  # older browsers and non-browser clients send none
        return True
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.get_host().lower()


@require_POST
@help_page
def vote(request, site: Site, slug: str):
    if not _same_origin(request):
        return HttpResponseForbidden("cross-site vote refused")
    found = public.translation(site.workspace.pk, site.locale, slug)
    if found is None:
        raise Http404("no such article")
    choice = request.POST.get("helpful")
    if choice not in ("yes", "no"):
        return HttpResponseBadRequest("helpful must be yes or no")
    visitor = request.COOKIES.get(VISITOR_COOKIE, "")
    if not (16 <= len(visitor) <= 64):
        visitor = secrets.token_urlsafe(24)
    public.vote(found, public.voter_key(visitor), choice == "yes")
    response = HttpResponseRedirect(f"{site.article(found)}?voted=1#feedback", status=303)
    response.status_code = 303
    response.set_cookie(
        VISITOR_COOKIE,
        visitor,
        max_age=VISITOR_COOKIE_DAYS * 86400,
        path=site.prefix,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


@require_GET
@help_page
def search(request, site: Site):
    query = " ".join(request.GET.get("q", "").split())[: public.MAX_QUERY]
    results = []
    if query:
        results = public.search(site.workspace.pk, query, site.locale, site.locales)
        public.record_search(site.workspace.pk, query, site.locale, found=bool(results))
    return _page(
        request,
        site,
        "helpcenter/search.html",
        {
            "page_title": _("Search results for “%(query)s”") % {"query": query}
            if query
            else _("Search"),
            "description": _("Search the %(name)s help center.") % {"name": site.workspace.name},
            "canonical": site.canonical(site.locale, "search"),
            "robots": "noindex",
            "query": query,
            "results": results,
            "switcher": {
                code: site.path(code, "search") + (f"?{urlencode({'q': query})}" if query else "")
                for code in site.locales
            },
        },
    )


@require_GET
@help_page
def suggest(request, site: Site):
    """Articles for the live-chat widget to offer before the visitor writes: public data, open
    to any origin, cacheable for a few minutes (the same ``q`` gives the same answer)."""
    query = " ".join(request.GET.get("q", "").split())[: public.MAX_QUERY]
    results = []
    if len(query) >= SUGGEST_MIN_CHARS:
        results = public.search(
            site.workspace.pk, query, site.locale, site.locales, limit=SUGGEST_LIMIT
        )
    response = JsonResponse(
        {
            "query": query,
            "results": [
                {
                    "title": r.translation.title,
                    "url": site.canonical(r.translation.locale, "a", r.translation.slug),
                    "locale": r.translation.locale,
                    "snippet": r.snippet,
                }
                for r in results
            ],
        },
        json_dumps_params={"ensure_ascii": False},
    )
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def image(request, key: str, workspace: str | None = None):
    """An image uploaded into one of the help center's articles (loket.knowledge.images)."""
    site = _site_for(request, workspace)
    found = images.for_public(site.workspace.pk, key)
    return _secure(photos.response(images.read(found) if found else None, "public, max-age=86400"))


@require_GET
def brand_css(request, workspace: str | None = None):
    """The brand colour as a CSS custom property: the CSP admits no inline style."""
    site = _site_for(request, workspace)
    color = site.help_center.brand_color
    # Validated on the form too; checked again here, as it goes into a stylesheet.
    body = f":root{{--hc-brand:{color};}}\n" if _COLOR.fullmatch(color or "") else ""
    response = HttpResponse(body, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return _secure(response)
