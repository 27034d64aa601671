"""Fixtures for the email channel: a real Dovecot per test, settings for it, a deduping store."""

from __future__ import annotations

import dataclasses
import email
import threading
from collections.abc import Callable

import pytest

from loket.connectors.email.imap import ImapSettings, MailboxState
from tests.conftest import require
from tests.connectors.email import dovecot as dovecot_module


@pytest.fixture
def dovecot():
    """A fresh Dovecot (about 0.1 s to start and to stop), so no test sees another's mail."""
    require(dovecot_module.available(), "dovecot-imapd (/usr/sbin/dovecot)")
    server = dovecot_module.Dovecot.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ca_bundle(dovecot, settings, tmp_path):
    """LOKET_EMAIL_CA_FILE naming the test IMAP and SMTP servers' self-signed certificates."""
    from tests.connectors.email import smtp_servers

    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(dovecot.cafile.read_bytes() + b"\n" + smtp_servers.certificate()[0])
    settings.LOKET_EMAIL_CA_FILE = str(bundle)
    return bundle


@pytest.fixture
def imap_settings(dovecot) -> Callable[..., ImapSettings]:
    """``imap_settings(**overrides)``: implicit TLS to the test server, trusting its cert."""

    def make(**overrides) -> ImapSettings:
        base = ImapSettings(
            host=dovecot.host,
            port=dovecot.tls_port,
            security="tls",
            username=dovecot.username,
            password=dovecot.password,
            timeout=5.0,
            ssl_context=dovecot.ssl_context(),
        )
        return dataclasses.replace(base, **overrides)

    return make


def make_mail(n: int, *, body: str = "", message_id: str | None = None) -> bytes:
    message_id = message_id or f"<mail-{n}@customer.example>"
    body = body or f"Hello, this is mail number {n}."
    return (
        f"From: Customer {n} <customer{n}@customer.example>\r\n"
        "To: support@loket.example\r\n"
        f"Subject: Question {n}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw)["Message-ID"]


class Store:
    """What the caller of fetch_new does: commit the mail and the state together, once.

    Mails are kept by Message-ID (the caller's dedupe); ``stored`` counts every mail the
    database ended up holding, ``calls`` every delivery, so redeliveries show.
    """

    def __init__(self):
        self.mails: dict[str, bytes] = {}
        self.state = MailboxState()
        self.calls: list[tuple[int, str]] = []
        self.stored: list[str] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def __call__(self, uid: int, raw: bytes, new_state: MailboxState) -> None:
        with self.lock:
            mid = message_id(raw)
            self.calls.append((uid, mid))
            if mid not in self.mails:
                self.mails[mid] = raw
                self.stored.append(mid)
            self.state = new_state
            self.arrived.notify_all()

    def load_state(self) -> MailboxState:
        with self.lock:
            return self.state

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.stored) >= count, timeout)


@pytest.fixture
def store() -> Store:
    return Store()
