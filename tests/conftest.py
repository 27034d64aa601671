"""Shared fixtures. Tests build data through real services; the helpers here are thin."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config, items):
    # Backend-specific tests belong to their pass (.ci/run runs the suite on both backends);
    # deselected, not skipped, in the other pass.
    other = "sqlite" if is_postgres() else "postgres"
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker(other) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Browser tests last: Playwright's sync API runs on greenlets, and CPython 3.11 can trip
    # over the interpreter state they leave behind (ast.parse raised "AST constructor recursion
    # depth mismatch" in a later test).
    keep.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    items[:] = keep


def require(condition: bool, what: str) -> None:
    """A missing real dependency fails under CI and skips on a developer's machine."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def _allow_private_http(settings):
    settings.LOKET_HTTP_ALLOW_PRIVATE = True
    # The sweeps over new messages read them at once (tests/knowledge/test_languages.py checks
    # the settling itself).
    settings.LOKET_SWEEP_SETTLE_SECONDS = 0


@pytest.fixture(scope="session", autouse=True)
def _embeddings_remembered_per_text():
    """The suite embeds the same texts again and again (every test that seeds the demo indexes
    its 45 articles: ~25 s of the model each time). The model is deterministic, so each text is
    embedded by the real model once per test process and remembered."""
    from loket.knowledge import embeddings

    real = embeddings.embed
    seen: dict[str, object] = {}

    def embed(texts):
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in seen))
        if missing:
            for text, row in zip(missing, real(missing), strict=True):
                seen[text] = row
        if not texts:
            return real(texts)
        import numpy as np

        return np.stack([seen[t] for t in texts])

    embeddings.embed = embed
    yield
    embeddings.embed = real


@pytest.fixture(autouse=True)
def _fresh_memos():
    """Per-process memories of workspaces start empty: a rolled-back test's workspace id comes
    back (SQLite) and must not inherit what an earlier test's workspace had."""
    from loket import memo

    memo.forget_everything()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """A request in Dutch leaves Dutch active in the test's thread (LocaleMiddleware activates,
    nothing deactivates): each test starts in the default language, whatever ran before it."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def workspace(db):
    return factories.workspace("acme")


@pytest.fixture
def owner(workspace):
    return factories.owner_of(workspace)


@pytest.fixture
def admin(workspace):
    from loket.tenancy.models import Role
    from loket.tenancy.services import add_member

    return add_member(workspace, factories.user("admin@acme.example", "Ada Admin"), role=Role.ADMIN)


@pytest.fixture
def supervisor(workspace):
    from loket.tenancy.models import Role
    from loket.tenancy.services import add_member

    user = factories.user("sup@acme.example", "Sue Supervisor")
    return add_member(workspace, user, role=Role.SUPERVISOR)


@pytest.fixture
def agent(workspace):
    from loket.tenancy.models import Role
    from loket.tenancy.services import add_member

    return add_member(workspace, factories.user("agent@acme.example", "Abe Agent"), role=Role.AGENT)


@pytest.fixture
def api_channel(workspace):
    return factories.api_channel(workspace)


@pytest.fixture
def api(owner):
    return factories.ApiClient(owner)


@pytest.fixture
def post_webhook(client):
    """POST a signed API-channel delivery through the Django webhook view."""

    def post(channel, payload, *, secret=None, signature=None, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        header = signature or factories.signature(secret or channel.secrets["secret"], body)
        return client.post(
            f"/hooks/api/{channel.uuid}/",
            data=body,
            content_type="application/json",
            headers={"X-Loket-Signature": header},
        )

    return post


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup, django_db_blocker):
    """Pooled PostgreSQL connections would keep the test database from being dropped."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for conn in connections.all():
            if hasattr(conn, "close_pool"):
                conn.close_pool()


def pytest_sessionfinish(session, exitstatus):
    """Django drops the SQLite test database file but not its WAL and shared-memory files."""
    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME") or ""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and test_name:
        for leftover in Path(test_name).parent.glob(Path(test_name).name + "*-[ws][ah][lm]"):
            leftover.unlink(missing_ok=True)
