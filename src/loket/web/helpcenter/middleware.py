"""Host routing for help centers on their own domain.

A request whose host is a help center's ``custom_domain`` is answered by
``loket.web.helpcenter.domain_urls`` (the help center at ``/<locale>/…``) instead of Loket's
own URLs (a disabled help center answers 404 there). Django's host check still comes first: a
custom domain must be admitted by ``LOKET_ALLOWED_HOSTS`` (the domain itself, a
``.example.com`` pattern, or ``*`` behind a proxy that only forwards known hosts), otherwise the
request is refused with 400 as any unknown host.

The set of custom domains is kept per process for ``SECONDS``; a domain changed in this process
is seen at once (``forget``)."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http.request import split_domain_port

from loket.knowledge import public
from loket.knowledge.models import HelpCenter

SECONDS = 30.0
_kept: tuple[float, frozenset[str]] = (0.0, frozenset())


def known_domains() -> frozenset[str]:
    global _kept
    now = time.monotonic()
    if _kept[0] <= now:
        _kept = (now + SECONDS, public.custom_domains())
    return _kept[1]


def forget() -> None:
    global _kept
    _kept = (0.0, frozenset())


@receiver(post_save, sender=HelpCenter, dispatch_uid="helpcenter-domains-save")
@receiver(post_delete, sender=HelpCenter, dispatch_uid="helpcenter-domains-delete")
def _help_center_changed(**kwargs) -> None:
    forget()


@functools.cache
def _own_host() -> str:
    return (urlsplit(settings.LOKET_PUBLIC_URL).hostname or "").lower()


def _may_be_custom(domain: str) -> bool:
    """Loket's own host, IP addresses and dotless names (localhost, testserver) are never a
    help center's domain (the model's validator refuses them): no look-up for them at all."""
    return (
        "." in domain
        and not domain.rsplit(".", 1)[-1].isdigit()
        and ":" not in domain
        and domain != _own_host()
    )


class HelpCenterDomainMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            host = request.get_host()
        except DisallowedHost:
            host = ""  # CommonMiddleware answers 400 for it
        domain, _port = split_domain_port(host)
        domain = domain.lower().rstrip(".")
        if _may_be_custom(domain) and domain in known_domains():
            help_center = public.help_center_by_domain(domain)
            if help_center is not None:
                request.urlconf = "loket.web.helpcenter.domain_urls"
                request.help_center = help_center
        return self.get_response(request)
