"""Loket's inbound SMTP receiver, driven by smtplib over loopback."""

from __future__ import annotations

import asyncio
import re
import smtplib
import threading
import time
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser

import pytest

from loket.connectors.email.smtpd import (
    LoketSmtpHandler,
    ReceivedMail,
    StoreRejected,
    start_server,
)
from tests.connectors.email.smtp_servers import client_ssl_context, server_ssl_context

HOST = "127.0.0.1"
LIMIT = 64 * 1024


def message_bytes(body: str = "Where is my order?", *, message_id: str = "<q-1@customer.test>"):
    return (
        "From: Alice <alice@customer.test>\r\n"
        "To: support@acme.test\r\n"
        "Subject: Order 42\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
        "\r\n"
        f"{body}\r\n"
        ".a line that starts with a dot\r\n"
    ).encode()


class Inbox:
    """accepts/store callbacks with knobs: fail, reject, or block on a gate."""

    def __init__(self) -> None:
        self.addresses = {"support@acme.test", "sales@acme.test"}
        self.stored: list[ReceivedMail] = []
        self.store_calls = 0
        self.accepts_calls: list[str] = []
        self.failures = 0  # the next N stores raise RuntimeError
        self.reject: str | None = None  # store raises StoreRejected(reject)
        self.gate: threading.Event | None = None  # store waits for it
        self.entered = threading.Event()
        self.on_loop: list[bool] = []  # whether each callback ran on an event loop

    @staticmethod
    def _on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def accepts(self, address: str) -> bool:
        self.on_loop.append(self._on_loop())
        self.accepts_calls.append(address)
        if address == "broken@acme.test":
            raise RuntimeError("database is down")
        return address in self.addresses

    def store(self, mail: ReceivedMail) -> None:
        self.on_loop.append(self._on_loop())
        self.store_calls += 1
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is down")
        if self.reject:
            raise StoreRejected(self.reject)
        self.stored.append(mail)


@contextmanager
def running(inbox: Inbox, **options):
    handler_options = {
        key: options.pop(key) for key in ("max_message_bytes", "max_recipients") if key in options
    }
    handler = LoketSmtpHandler(
        accepts=inbox.accepts,
        store=inbox.store,
        hostname="mx.loket.test",
        **{"max_message_bytes": LIMIT, **handler_options},
    )
    controller = start_server(handler, host=HOST, port=0, **options)
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def server(inbox):
    with running(inbox) as controller:
        yield controller


def client(controller, **kwargs) -> smtplib.SMTP:
    return smtplib.SMTP(HOST, controller.port, local_hostname="client.test", timeout=10, **kwargs)


# --- accepting and storing ------------------------------------------------------------------------


def test_accepted_mail_is_stored_once_before_the_250(server, inbox):
    data = message_bytes()
    with client(server) as smtp:
        refused = smtp.sendmail("alice@customer.test", ["Support@ACME.test"], data)
    assert refused == {}
    (mail,) = inbox.stored
    assert inbox.store_calls == 1
    assert mail.mail_from == "alice@customer.test"
    assert mail.recipients == ("support@acme.test",)
    assert mail.peer == "127.0.0.1"
    assert mail.helo == "client.test"
    assert mail.tls is False
    # The DATA bytes exactly (dot-unstuffed), after one Received: header of ours.
    assert mail.raw.endswith(data)
    trace = mail.raw[: -len(data)].decode("ascii")
    assert re.fullmatch(
        r"Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
        r"\tby mx\.loket\.test \(Loket\) with ESMTP\r\n"
        r"\tfor <support@acme\.test>;\r\n"
        r"\t\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\r\n",
        trace,
    )
    parsed = BytesParser(policy=policy.default).parsebytes(mail.raw)
    assert parsed["Message-ID"] == "<q-1@customer.test>"
    assert parsed["Received"].startswith("from client.test")
    # Both callbacks ran off the event loop (in worker threads), where Django allows queries.
    assert inbox.on_loop == [False, False]


def test_recipients_are_lowercased_deduplicated_and_all_listed(server, inbox):
    with client(server) as smtp:
        smtp.sendmail(
            "alice@customer.test",
            ["Support@acme.test", "support@ACME.TEST", "sales@acme.test"],
            message_bytes(),
        )
    (mail,) = inbox.stored
    assert mail.recipients == ("support@acme.test", "sales@acme.test")
    assert b"\tfor <" not in mail.raw  # several recipients: none named in the trace header


def test_the_null_sender_is_accepted_as_empty(server, inbox):
    with client(server) as smtp:
        smtp.sendmail("<>", ["support@acme.test"], message_bytes())
    assert inbox.stored[0].mail_from == ""


def test_unknown_recipients_get_550_and_nothing_is_stored(server, inbox):
    with client(server) as smtp:
        smtp.ehlo()
        assert smtp.mail("alice@customer.test")[0] == 250
        code, text = smtp.rcpt("nobody@acme.test")
        assert (code, text) == (550, b"5.1.1 <nobody@acme.test>: no such mailbox here")
        with pytest.raises(smtplib.SMTPDataError) as no_recipient:
            smtp.data(message_bytes())
        assert no_recipient.value.smtp_code == 503
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("alice@customer.test", ["nobody@acme.test"], message_bytes())
        refused = smtp.sendmail(
            "alice@customer.test", ["nobody@acme.test", "support@acme.test"], message_bytes()
        )
    assert refused == {"nobody@acme.test": (550, b"5.1.1 <nobody@acme.test>: no such mailbox here")}
    assert inbox.store_calls == 1
    assert inbox.stored[0].recipients == ("support@acme.test",)


def test_accepts_raising_is_a_temporary_failure(server, inbox):
    with client(server) as smtp:
        smtp.ehlo()
        smtp.mail("alice@customer.test")
        assert smtp.rcpt("broken@acme.test") == (451, b"4.3.0 Temporary failure, try again later")
        assert smtp.rcpt("support@acme.test")[0] == 250  # the session goes on
    assert inbox.store_calls == 0


def test_too_many_recipients_are_deferred(inbox):
    inbox.addresses |= {"a@acme.test", "b@acme.test", "c@acme.test"}
    with running(inbox, max_recipients=2) as controller, client(controller) as smtp:
        refused = smtp.sendmail(
            "alice@customer.test", ["a@acme.test", "b@acme.test", "c@acme.test"], message_bytes()
        )
    assert refused == {"c@acme.test": (452, b"4.5.3 Too many recipients")}
    assert inbox.stored[0].recipients == ("a@acme.test", "b@acme.test")


def test_the_250_waits_for_store_and_the_server_stays_responsive(server, inbox):
    inbox.gate = threading.Event()
    outcome: dict[str, object] = {}

    def deliver():
        with client(server) as smtp:
            outcome["refused"] = smtp.sendmail(
                "alice@customer.test", ["support@acme.test"], message_bytes()
            )
        outcome["at"] = time.monotonic()

    sender = threading.Thread(target=deliver)
    sender.start()
    try:
        assert inbox.entered.wait(10)
        time.sleep(0.3)
        assert sender.is_alive() and outcome == {}  # store has not returned: no reply yet
        # Meanwhile the event loop serves others: store runs in a worker thread.
        with client(server) as other:
            assert other.noop()[0] == 250
        released = time.monotonic()
    finally:
        inbox.gate.set()
        sender.join(10)
    assert outcome["refused"] == {}
    assert outcome["at"] >= released
    assert len(inbox.stored) == 1


def test_a_failing_store_is_451_and_a_retry_succeeds(server, inbox):
    inbox.failures = 1
    with client(server) as smtp, pytest.raises(smtplib.SMTPDataError) as failure:
        smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes())
    assert (failure.value.smtp_code, failure.value.smtp_error) == (
        451,
        b"4.3.0 Temporary failure, try again later",
    )
    assert inbox.stored == []
    with client(server) as smtp:  # the sending server's retry
        assert smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes()) == {}
    assert inbox.store_calls == 2
    assert len(inbox.stored) == 1


def test_store_rejected_is_a_permanent_554(server, inbox):
    inbox.reject = "message too large for this workspace\r\n250 fake"
    with client(server) as smtp, pytest.raises(smtplib.SMTPDataError) as failure:
        smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes())
    assert failure.value.smtp_code == 554
    assert failure.value.smtp_error == b"5.6.0 message too large for this workspace 250 fake"
    assert inbox.stored == []


def test_a_message_too_big_is_552_with_or_without_size(server, inbox):
    big = message_bytes(("y" * 76 + "\r\n") * 1000)
    assert len(big) > LIMIT
    with client(server) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == str(LIMIT)  # SIZE advertised
        # Declared with SIZE: refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as failure:
            smtp.sendmail("alice@customer.test", ["support@acme.test"], big)
        assert failure.value.smtp_code == 552
        assert failure.value.smtp_error.startswith(b"5.3.4 ")
        # Not declared: refused after the data, which was read and dropped.
        smtp.rset()
        smtp.mail("alice@customer.test")
        smtp.rcpt("support@acme.test")
        code, text = smtp.data(big)
        assert (code, text) == (552, f"5.3.4 Message too big: the limit is {LIMIT} bytes".encode())
        # The session is still usable.
        assert smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes()) == {}
    assert inbox.store_calls == 1


def test_long_lines_from_sloppy_senders_are_accepted(server, inbox):
    data = message_bytes("z" * 5000)
    with client(server) as smtp:
        assert smtp.sendmail("alice@customer.test", ["support@acme.test"], data) == {}
    assert inbox.stored[0].raw.endswith(data)


# --- TLS ----------------------------------------------------------------------------------------


def test_starttls_when_a_context_is_given(inbox):
    with running(inbox, tls_context=server_ssl_context(), require_starttls=True) as controller:
        with client(controller) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            assert smtp.mail("alice@customer.test")[0] == 530  # STARTTLS first
        with client(controller) as smtp:
            smtp.starttls(context=client_ssl_context())
            smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes())
    (mail,) = inbox.stored
    assert mail.tls is True
    assert b" with ESMTPS" in mail.raw


def test_implicit_tls(inbox):
    context = client_ssl_context()
    with (
        running(inbox, tls_context=server_ssl_context(), implicit_tls=True) as controller,
        smtplib.SMTP_SSL(HOST, controller.port, local_hostname="c.test", context=context) as smtp,
    ):
        smtp.sendmail("alice@customer.test", ["support@acme.test"], message_bytes())
    assert inbox.stored[0].tls is True


def test_start_server_listens_where_asked_and_stops(inbox):
    with running(inbox) as controller:
        port = controller.port
        assert port != 0
        with client(controller) as smtp:
            assert smtp.noop()[0] == 250
    with pytest.raises(OSError):
        smtplib.SMTP(HOST, port, timeout=2)
