"""Fixtures of the account tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """A cache of this test's own: allauth keeps rate-limit counters and used TOTP codes there,
    and on Redis concurrent test runs share one server."""
    default = dict(settings.CACHES["default"])
    default["KEY_PREFIX"] = f"accounts-test-{uuid.uuid4().hex}"
    if default["BACKEND"].endswith("LocMemCache"):
        default["LOCATION"] = default["KEY_PREFIX"]
    settings.CACHES = {**settings.CACHES, "default": default}
