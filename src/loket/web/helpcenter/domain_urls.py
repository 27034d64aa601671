"""The URLconf of a request whose host is a help center's custom domain (set by
``middleware.HelpCenterDomainMiddleware``): the help center at the root, and the static files
its pages link to (same origin, as the Content-Security-Policy wants). Nothing else of Loket
answers on a custom domain."""

from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from loket.web.helpcenter.urls import site_patterns

urlpatterns = [
    re_path(r"^static/(?P<path>helpcenter/.*)$", serve_static, {"insecure": True}),
    path("", include((site_patterns, "helpcenter"))),
]
