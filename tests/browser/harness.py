"""Browser end-to-end harness: a real ``loket serve`` on the test database, a world to act in
(workspace ``acme``, its owner, two agents, a team, an API channel) and logged-in Chromium pages.

The pieces are plain classes and functions; ``tests/browser/conftest.py`` turns them into
fixtures. See that module's docstring for how a test uses them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from loket.connectors import signing
from loket.connectors.registry import get_connector
from loket.inbox.models import Channel, Message
from loket.inbox.services.channels import create_channel
from loket.tenancy.models import Membership, Role, Team, User, Workspace
from loket.tenancy.services import add_member, create_api_token, create_team, create_workspace
from tests.processes import free_port, subprocess_env, wait_for_http

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
FAILURES = SCREENSHOTS / "failures"

PASSWORD = "Loket-e2e-pw-1"  # every world user's password (for tests of the real login form)
WAIT = 15.0  # seconds: a bound on how long the server may take, not a speed claim


# --- the server -------------------------------------------------------------------------------
@dataclass
class LoketServer:
    """One ``loket serve`` subprocess on a free loopback port, logging to ``log_path``."""

    port: int
    process: subprocess.Popen = field(repr=False)
    log_path: Path
    env: dict[str, str] = field(repr=False)  # the whole environment: never in a report

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int = 0, limit: int = 20_000) -> str:
        """The log written since byte ``offset`` (its last ``limit`` characters)."""
        if not self.log_path.exists():
            return "(no log)"
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return text if len(text) <= limit else "…" + text[-limit:]

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"loket serve exited with {self.process.returncode}; its log:\n{self.log_since()}"
            )


def server_env(var_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """What the browser tests' server runs with: the test database of this pass (SQLite file or
    PostgreSQL ``test_…``), Redis when the pass has it, a channel prefix of its own on Redis, an
    in-process task worker (replies are really sent), the fast test password hasher."""
    env = subprocess_env(
        var_dir,
        LOKET_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LOKET_TESTING="1",  # the test process hashes passwords with the fast test hasher
        LOKET_INPROCESS_WORKERS="1",
        LOKET_WORKER_POLL_SECONDS="0.2",
        LOKET_ACCESS_LOG="1",
        # Concurrent runs on one Redis must not hear each other (workspace ids repeat).
        LOKET_CHANNEL_PREFIX=f"loket-e2e-{uuid.uuid4().hex[:12]}",
        **extra,
    )
    # Lifted for the test process only (see conftest): the server must keep Django's checks.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# `loket serve`, plus request tracebacks in the log (tests/browser/serve.py).
SERVE = [sys.executable, "-m", "tests.browser.serve", "serve"]


@contextmanager
def _process(args: list[str], env: dict[str, str], log_path: Path):
    """Like tests.processes.loket_process, for SERVE: SIGTERM on exit, then SIGKILL."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_server(var_dir: Path, **extra_env: str) -> Iterator[LoketServer]:
    """Start ``loket serve`` against the current test database; stop it on exit. Call after the
    test database exists (the ``django_db_setup`` fixture)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = var_dir / "serve.log"
    env = server_env(var_dir, port, **extra_env)
    with _process([*SERVE, "--port", str(port)], env, log_path) as p:
        server = LoketServer(port=port, process=p, log_path=log_path, env=env)
        try:
            wait_for_http(server.url("/healthz"), timeout=60, process=p)
        except BaseException:
            print(f"----- loket serve ({log_path}) -----\n{server.log_since()}")
            raise
        yield server


# --- the world --------------------------------------------------------------------------------
@dataclass
class Person:
    """A user of the world: ``key`` is how tests name them (``"agent-a"``)."""

    key: str
    email: str
    name: str
    password: str
    membership: Membership

    @property
    def user(self) -> User:
        return self.membership.user


PEOPLE = [
    # key, email, name, role
    ("owner", "owner@acme.example", "Olga Owner", Role.OWNER),
    ("agent-a", "agent-a@example.com", "Anna Agent", Role.AGENT),
    ("agent-b", "agent-b@example.com", "Bram Agent", Role.AGENT),
]


@dataclass
class AgentApp:
    """The running server plus one workspace's data, created through the real services and
    committed (the tests run with ``transactional_db``), so the server sees it."""

    server: LoketServer
    workspace: Workspace
    people: dict[str, Person] = field(repr=False)
    team: Team = field(repr=False)
    channel: Channel = field(repr=False)
    secret: str = field(repr=False)  # the API channel's signing secret
    # tests.jobs.receiver.Receiver: where the channel's replies are POSTed (answers 200).
    outbound: Any = field(repr=False)
    _api: httpx.Client | None = field(default=None, repr=False)

    @property
    def owner(self) -> Person:
        return self.people["owner"]

    @property
    def agent_a(self) -> Person:
        return self.people["agent-a"]

    @property
    def agent_b(self) -> Person:
        return self.people["agent-b"]

    def person(self, who: str | Person) -> Person:
        if isinstance(who, Person):
            return who
        for person in self.people.values():
            if who in (person.key, person.email):
                return person
        raise KeyError(f"no person {who!r} in the world (have: {', '.join(self.people)})")

    def add_person(self, key: str, email: str, name: str, role: str = Role.AGENT) -> Person:
        """Another member of the workspace (password: ``harness.PASSWORD``)."""
        self.people[key] = _person(self.workspace, key, email, name, role)
        return self.people[key]

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    @property
    def webhook_url(self) -> str:
        return self.url(f"/hooks/api/{self.channel.uuid}/")

    def post_webhook(self, payload: dict | bytes, *, secret: str | None = None) -> httpx.Response:
        """POST a delivery to the API channel's webhook, signed (with ``secret`` if given)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(secret or self.secret, body),
        }
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=WAIT)

    def ingest(
        self,
        text: str,
        *,
        contact: str | dict | None = None,
        message_id: str | None = None,
        **extra: Any,
    ) -> Message:
        """A customer message through the API channel's signed webhook on the running server;
        returns the stored message. ``contact`` is the customer's id on the channel or a whole
        contact object (``{"id", "name", "email", "phone"}``); by default "Noor de Vries".
        ``extra`` goes into the payload as is (``attachments=[...]``, ``sent_at=...``)."""
        if contact is None:
            contact = {"id": "cust-noor", "name": "Noor de Vries", "email": "noor@example.org"}
        elif isinstance(contact, str):
            contact = {"id": contact}
        message_id = message_id or f"e2e-{uuid.uuid4().hex[:16]}"
        payload = {"id": message_id, "contact": contact, "text": text, **extra}
        response = self.post_webhook(payload)
        assert response.status_code == 200, (response.status_code, response.text)
        # 200 means stored and committed: the row is visible to this process now.
        return Message.objects.get(channel=self.channel, external_id=message_id)

    @property
    def api(self) -> httpx.Client:
        """An HTTP client for the running server's REST API (``/api/v1``) as the owner."""
        if self._api is None:
            _, token = create_api_token(self.owner.membership, name="e2e")
            self._api = httpx.Client(
                base_url=self.url("/api/v1"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=WAIT,
            )
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def _person(workspace: Workspace, key: str, email: str, name: str, role: str) -> Person:
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email, PASSWORD, name=name
    )
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if membership is None:
        membership = add_member(workspace, user, role=role)
    return Person(key, email, name, PASSWORD, membership)


def build_world(server: LoketServer, outbound) -> AgentApp:
    """Workspace ``acme`` with its owner, agents A and B in team "Support", and an API channel
    "Webshop" (default team Support) whose replies go to ``outbound``."""
    _, owner_email, owner_name, _ = PEOPLE[0]
    owner_user = User.objects.create_user(owner_email, PASSWORD, name=owner_name)
    workspace = create_workspace(slug="acme", name="Acme", owner=owner_user)
    people = {key: _person(workspace, key, email, name, role) for key, email, name, role in PEOPLE}
    team = create_team(
        workspace, "Support", [people["agent-a"].membership, people["agent-b"].membership]
    )
    channel, shown_once = create_channel(
        workspace,
        get_connector("api"),
        name="Webshop",
        config={"outbound_url": outbound.url},
        default_team=team,
    )
    secret = shown_once.get("secret") or channel.secrets["secret"]
    return AgentApp(server, workspace, people, team, channel, secret, outbound)


# --- logging in -------------------------------------------------------------------------------
def session_cookie(user: User, base_url: str) -> dict:
    """A signed-in session for ``user``, stored in the test database as a password login would
    store it (Django's auth keys and allauth's record of the authentication), as a cookie for
    ``context.add_cookies``. A workspace that requires 2FA wants a real login: use
    :func:`log_in`."""
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db", (
        "session_cookie writes the session to the database the server reads; with "
        f"{settings.SESSION_ENGINE} log in through the form instead"
    )
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = "allauth.account.auth_backends.AuthenticationBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    # What allauth's record_authentication() keeps (for its "recently authenticated" checks).
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "email": user.email}
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": session.session_key,
        "url": base_url,
        "httpOnly": True,
        "sameSite": "Lax",
    }


def log_in(page, base_url: str, email: str, password: str, *, expect_url: str | None = None):
    """Sign in through the real login form (allauth's ``login`` and ``password`` fields). Waits
    until the browser has left the login page (or reached ``expect_url``, a regex)."""
    page.goto(base_url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    password_field = page.locator("input[name=password]")
    password_field.fill(password)
    password_field.press("Enter")
    if expect_url is not None:
        page.wait_for_url(re.compile(expect_url))
    else:
        page.wait_for_url(lambda url: "/accounts/login/" not in url)


def wait_connected(page, timeout: float = 10.0) -> None:
    """Wait until the page's agent websocket is open (``window.Loket.connected``, app.js)."""
    page.wait_for_function(
        "() => window.Loket !== undefined && window.Loket.connected === true",
        timeout=timeout * 1000,
    )


# --- artifacts ---------------------------------------------------------------------------------
def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of ``page`` as ``var/screenshots/<name>.png`` (an artifact for people)."""
    path = SCREENSHOTS / f"{safe_name(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150] or "unnamed"


@dataclass
class PageRecord:
    """A page the harness opened, with what its console said."""

    who: str
    page: Any
    console: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))
        self.page.on(
            "requestfailed",
            lambda r: self.console.append(f"[requestfailed] {r.method} {r.url}: {r.failure}"),
        )
        self.page.on(
            "response",
            lambda r: r.status >= 500 and self.console.append(f"[http {r.status}] {r.url}"),
        )


def failures_dir() -> Path:
    """``var/screenshots/failures/<backend>/``: one per pass (sqlite, postgresql)."""
    from django.db import connection

    return FAILURES / connection.vendor


def save_failure_artifacts(
    test_name: str, records: list[PageRecord], directory: Path | None = None
) -> list[Path]:
    """For a failed test: each open page's screenshot, URL and console log as
    ``<test>-<who>.{png,log}`` in ``directory`` (:func:`failures_dir`)."""
    directory = directory or failures_dir()
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    for record in records:
        stem = directory / safe_name(f"{test_name}-{record.who}")
        try:
            if not record.page.is_closed():
                record.page.screenshot(path=f"{stem}.png", full_page=True, timeout=5_000)
                saved.append(Path(f"{stem}.png"))
        except Exception as exc:  # a crashed page: keep going, the log still helps
            record.console.append(f"[harness] no screenshot: {exc}")
        url = "(closed)" if record.page.is_closed() else record.page.url
        Path(f"{stem}.log").write_text(f"url: {url}\n" + "\n".join(record.console) + "\n")
        saved.append(Path(f"{stem}.log"))
    return saved


def launch_args() -> list[str]:
    """Chromium refuses to run as root with its sandbox (CI runs as root)."""
    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
