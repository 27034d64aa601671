"""Per-user language: a signed-in user's own choice wins over the browser's."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

_SUPPORTED = {code for code, _ in settings.LANGUAGES}


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        locale = getattr(user, "locale", "") if user is not None else ""
        if locale and user.is_authenticated and locale in _SUPPORTED:
            translation.activate(locale)
            request.LANGUAGE_CODE = locale
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response
