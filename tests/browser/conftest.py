"""Fixtures for browser end-to-end tests (Playwright for Python in Debian's Chromium).

    from playwright.sync_api import expect

    def test_two_agents_see_a_message_live(agent_app, browser_pages):
        a, b = browser_pages("agent-a", "agent-b")  # one logged-in Page per user, own contexts
        a.goto(agent_app.url("/w/acme/"))
        agent_app.ingest(text="Hallo, waar is mijn bestelling?")  # signed webhook, API channel
        expect(a.get_by_text("Hallo, waar is mijn bestelling?")).to_be_visible()

What there is:

- ``loket_server`` (package): one real ``loket serve`` (uvicorn, websockets, one in-process task
  worker) on a free loopback port against this pass's test database (the SQLite test file, or
  PostgreSQL's ``test_…`` database with REDIS_URL, so PostgreSQL runs go through Redis pub/sub).
  Its log is attached to the report of every failing test that used it.
- ``agent_app`` (function, ``transactional_db``): the server plus a fresh world, committed so the
  server sees it — workspace ``acme`` ("Acme"); ``owner`` Olga Owner (owner@acme.example),
  ``agent-a`` Anna Agent (agent-a@example.com), ``agent-b`` Bram Agent (agent-b@example.com),
  all with password ``harness.PASSWORD``; team "Support" (both agents); API channel "Webshop"
  (default team Support) whose replies go to ``agent_app.outbound`` (a local receiver that
  answers 200). ``agent_app.url(path)``, ``agent_app.ingest(text, contact=..., message_id=...)``
  (returns the stored Message), ``agent_app.post_webhook(payload)``, ``agent_app.api`` (httpx
  client for /api/v1 as the owner), ``agent_app.person("agent-a")``, ``agent_app.add_person()``.
  pytest-django empties every table after each test, so each test starts from this world.
- ``browser_pages(*who, locale="en", login="session")``: one Page per person (key, email or
  Person), each in its own browser context (viewport 1440x900, ``locale`` as the browser
  language). ``login="session"`` stores a session in the database and sets its cookie (fast);
  ``login="form"`` signs in through the real login form; ``login=None`` leaves them signed out.
  The pages start blank (``page.goto(agent_app.url("/w/acme/"))``), or on ``goto="/w/acme/"``
  with their agent websocket connected (``harness.wait_connected(page)``: do that before
  ingesting whatever a page should see arrive live). Extra keyword arguments go to
  ``Browser.new_context`` (e.g. ``viewport={"width": 390, "height": 844}``).
- ``screenshot(page, name)``: saves ``var/screenshots/<name>.png``.
- On a failing test every page opened through ``browser_pages`` leaves a screenshot and its
  console log under ``var/screenshots/failures/``, with the server log next to them.
- ``chromium`` (package): the Browser, for tests that want their own contexts.

Playwright's sync API keeps an asyncio loop marked as running in the main thread while it is
started, which makes Django refuse ORM calls from the test ("SynchronousOnlyOperation").
Inside ``tests/browser`` that check is lifted (``DJANGO_ALLOW_ASYNC_UNSAFE``) for the test
process only, and Playwright is stopped when the package's last test ends, so the rest of the
suite runs as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from tests.browser import harness
from tests.conftest import require
from tests.connectors import providers
from tests.jobs.receiver import running_receiver

HERE = Path(__file__).resolve().parent
_SERVER = pytest.StashKey[tuple[harness.LoketServer, int]]()
_REPORTS = pytest.StashKey[dict]()

# Generous for a 2-core machine running two backends' worth of tests; still a bound, not a wait.
expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.subprocess)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed and _SERVER in item.stash:
        server, offset = item.stash[_SERVER]
        report.sections.append((f"loket serve log ({server.log_path})", server.log_since(offset)))
    return report


def _artifact_name(node) -> str:
    """``test_harness-test_x[param]`` for ``tests/browser/test_harness.py::test_x[param]``."""
    path, _, name = node.nodeid.partition("::")
    return harness.safe_name(f"{Path(path).stem}-{name}")


def _failed(node) -> bool:
    reports = node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="package", autouse=True)
def _django_async_unsafe_allowed():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package", autouse=True)
def _flush_again_after_a_deadlock():
    """Each browser test ends with Django's flush (one TRUNCATE of every table) while the
    package's ``loket serve`` keeps running its periodic jobs. On PostgreSQL the TRUNCATE's
    table locks can deadlock with a job's writes; PostgreSQL then aborts one of them (CI saw it
    abort the flush). The flush is one transaction, rolled back whole, so it is simply run again."""
    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations

    real = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(5):
            try:
                return real(self, sql_list)
            except OperationalError as exc:
                if "deadlock detected" not in str(exc) or attempt == 4:
                    raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(scope="package")
def meta_graph():
    """A local Meta Graph API (tests.connectors.providers.FakeProvider) the server's WhatsApp,
    Messenger and Instagram channels talk to; tests add routes and ``reset()`` it."""
    with providers.running() as fake:
        yield fake


@pytest.fixture(scope="package")
def loket_server(django_db_setup, tmp_path_factory, meta_graph):
    if settings.REDIS_URL:  # the PostgreSQL pass: the server's websockets fan out over Redis
        require(harness.redis_answers(settings.REDIS_URL), f"Redis at {settings.REDIS_URL}")
    # Failure artifacts are about the last run of this backend's pass.
    shutil.rmtree(harness.failures_dir(), ignore_errors=True)
    # One server for the whole package: a second one on the same database would run jobs too,
    # and publish their realtime events to its own in-memory channel layer (SQLite pass), where
    # no browser listens. The demo endpoints are on for the ferry bot's look-up.
    with harness.running_server(
        tmp_path_factory.mktemp("loket-serve"),
        LOKET_META_GRAPH_URL=meta_graph.url,
        LOKET_DEMO_ENDPOINTS="1",
    ) as server:
        yield server


@pytest.fixture
def agent_app(loket_server, transactional_db, request):
    loket_server.assert_alive()
    request.node.stash[_SERVER] = (loket_server, loket_server.log_size())
    with running_receiver() as outbound:
        app = harness.build_world(loket_server, outbound)
        try:
            yield app
        finally:
            app.close()
            if _failed(request.node):
                log = harness.failures_dir() / f"{_artifact_name(request.node)}-serve.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(loket_server.log_since(request.node.stash[_SERVER][1]))


@pytest.fixture(scope="package")
def chromium():
    require(harness.CHROMIUM.exists(), f"Chromium ({harness.CHROMIUM})")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(harness.CHROMIUM), args=harness.launch_args()
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def browser_pages(chromium, agent_app, request):
    records: list[harness.PageRecord] = []
    contexts = []

    def open_pages(
        *who,
        locale: str = "en",
        login: str | None = "session",
        goto: str | None = None,
        **context_options,
    ):
        assert login in ("session", "form", None), login
        pages = []
        for entry in who:
            person = agent_app.person(entry)
            context = chromium.new_context(
                **{"viewport": {"width": 1440, "height": 900}, "locale": locale, **context_options}
            )
            context.set_default_timeout(15_000)
            contexts.append(context)
            if login == "session":
                context.add_cookies(
                    [harness.session_cookie(person.user, agent_app.server.base_url)]
                )
            page = context.new_page()
            record = harness.PageRecord(person.key, page)
            record.watch()
            records.append(record)
            if login == "form":
                harness.log_in(page, agent_app.server.base_url, person.email, person.password)
            if goto is not None:
                page.goto(agent_app.url(goto))
                if login is not None:
                    harness.wait_connected(page)
            pages.append(page)
        return pages

    try:
        yield open_pages
    finally:
        if _failed(request.node):
            harness.save_failure_artifacts(_artifact_name(request.node), records)
        for context in contexts:
            context.close()


@pytest.fixture
def screenshot():
    return harness.screenshot
