"""Loket's own inbound SMTP receiver, for a forwarding address (support@ → Loket).

An aiosmtpd handler that says yes to a message only once it is safely stored: RCPT TO is checked
with ``accepts``, the message is handed to ``store`` in a worker thread (both callbacks may use
the database synchronously, which Django refuses on an event loop), and 250 is answered only
after ``store`` returned. Any failure in between is a 4xx so the sending server keeps the message
and retries; only ``StoreRejected`` is a permanent 5xx. A retry after a lost 250 can deliver the
same message twice; the parser deduplicates on Message-ID.

``ReceivedMail.raw`` is the DATA bytes exactly as received (CRLF line ends, dot-unstuffed) with
one ``Received:`` trace header of ours prepended (RFC 5321 §4.4).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime, localtime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = [
    "ListeningController",
    "LoketSmtpHandler",
    "ReceivedMail",
    "StoreRejected",
    "start_server",
]

log = logging.getLogger(__name__)

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, try again later"


class StoreRejected(Exception):
    """Raised by the store callback to refuse a message for good (answered 554 5.6.0 with the
    exception's text), e.g. "message too large for this workspace"."""


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str  # the reverse-path; "" for the null sender <> (bounces, auto-replies)
    recipients: tuple[str, ...]  # the accepted RCPT TO addresses, lowercased, no repeats
    raw: bytes  # our Received: header + the DATA bytes as received
    peer: str  # client IP
    helo: str = ""  # the name the client gave in EHLO/HELO
    tls: bool = False  # received over TLS (STARTTLS or implicit)


def _reply_text(text: str, limit: int = 200) -> str:
    # One line of printable ASCII: a reply must not be split or carry bytes a client chokes on.
    cleaned = " ".join(str(text).split())
    return cleaned.encode("ascii", "replace").decode("ascii")[:limit] or "rejected"


def _trace_token(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.:\[\]_-]", "", value or "")[:100] or "unknown"


class LoketSmtpHandler:
    """The aiosmtpd handler (see the module docstring).

    ``accepts(address)`` gets the lowercased RCPT TO address and says whether Loket takes mail
    for it: False → 550 5.1.1; raising → 451 4.3.0. ``store(mail)`` must have committed when it
    returns: 250. ``StoreRejected`` → 554 5.6.0 <its text>; any other exception → 451 4.3.0.
    Both run in worker threads; a Django caller should wrap them in ``close_old_connections``.
    """

    def __init__(
        self,
        *,
        accepts: Callable[[str], bool],
        store: Callable[[ReceivedMail], None],
        max_message_bytes: int = 35 * 1024 * 1024,
        hostname: str = "loket",
        max_recipients: int = 100,  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
    ) -> None:
        self.accepts = accepts
        self.store = store
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname
        self.max_recipients = max_recipients

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        address = address.strip().lower()
        if address in envelope.rcpt_tos:
            return "250 2.1.5 OK"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            accepted = await asyncio.to_thread(self.accepts, address)
        except Exception:
            log.exception("smtpd: accepts(%r) failed", address)
            return TEMPORARY_FAILURE
        if not accepted:
            return f"550 5.1.1 <{_reply_text(address)}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    def _received_header(self, server: SMTP, session: Session, envelope: Envelope) -> bytes:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        if _is_tls(server):
            protocol += "S"
        # Name the recipient only when there is one: several would disclose blind copies.
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        return (
            f"Received: from {_trace_token(session.host_name or '')} ([{_trace_token(peer)}])"
            f"\r\n\tby {_trace_token(self.hostname)} (Loket) with {protocol}{recipient};"
            f"\r\n\t{format_datetime(localtime())}\r\n"
        ).encode("ascii", "replace")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        mail = ReceivedMail(
            mail_from="" if mail_from == "<>" else mail_from,
            recipients=tuple(envelope.rcpt_tos),
            raw=self._received_header(server, session, envelope) + content,
            peer=session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or ""),
            helo=session.host_name or "",
            tls=_is_tls(server),
        )
        try:
            await asyncio.to_thread(self.store, mail)
        except StoreRejected as rejected:
            log.info("smtpd: message from %r refused: %s", mail.mail_from, rejected)
            return f"554 5.6.0 {_reply_text(str(rejected))}"
        except Exception:
            log.exception("smtpd: storing a message from %r failed", mail.mail_from)
            return TEMPORARY_FAILURE
        return "250 2.0.0 OK: stored"


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _LoketSMTP(SMTP):
    """aiosmtpd's SMTP with RFC 3463 enhanced status codes on its own size refusals, and lenient
    about line length: RFC 5321 says 1000 octets, but mail from sloppy senders would otherwise
    be refused for good (Postfix accepts it too). Command lines stay limited to 512."""

    line_length_limit = 64 * 1024

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("552 Error"):
            status = (
                f"552 5.3.4 Message too big: the limit is {self.data_size_limit} bytes"
                if self.data_size_limit
                else "552 5.3.4 Message too big"
            )
        await super().push(status)


class ListeningController(Controller):
    """An aiosmtpd Controller that may be given port 0: it then listens on a free port and sets
    ``port`` to it once started, so callers (and tests) never race for a port."""

    def __init__(self, handler: Any, *, smtp_class: type[SMTP] = SMTP, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.smtp_class = smtp_class

    def factory(self) -> SMTP:
        return self.smtp_class(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_server(
    handler: LoketSmtpHandler,
    *,
    host: str = "127.0.0.1",
    port: int = 2525,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    implicit_tls: bool = False,
) -> ListeningController:
    """Listen on ``host``:``port`` (0: a free port, then read ``.port``) in a background thread
    and return the started controller; ``.stop()`` stops it.

    ``tls_context`` offers STARTTLS (``require_starttls``: refuse mail before it), or with
    ``implicit_tls`` wraps every connection in TLS from the start (SMTPS)."""
    if implicit_tls and tls_context is None:
        raise ValueError("implicit_tls needs a tls_context")
    controller = ListeningController(
        handler,
        smtp_class=_LoketSMTP,
        hostname=host,
        port=port,
        ssl_context=tls_context if implicit_tls else None,
        server_hostname=handler.hostname,
        data_size_limit=handler.max_message_bytes,
        tls_context=None if implicit_tls else tls_context,
        require_starttls=bool(tls_context) and require_starttls and not implicit_tls,
        enable_SMTPUTF8=True,
        ident="Loket ESMTP",
    )
    controller.start()
    return controller
