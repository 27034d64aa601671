"""Real SMTP receivers on loopback for the email tests (no smtplib mocks).

``RecordingServer`` is an aiosmtpd server on a free port that records every message it accepts
(envelope + raw bytes, parseable with ``.message``), optionally behind STARTTLS or implicit TLS
with a self-signed certificate made here, requiring AUTH PLAIN/LOGIN (and XOAUTH2) with given
credentials, and following a ``Script`` of failures: refuse a recipient or the sender, answer the
message data with 451/554, drop the connection, or be slow.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import ssl
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from loket.connectors.email.smtp import SmtpSettings
from loket.connectors.email.smtpd import ListeningController
from tests.certs import self_signed

HOST = "127.0.0.1"


# --- TLS --------------------------------------------------------------------------------------


@functools.cache
def certificate() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): self-signed for localhost and 127.0.0.1, its own CA."""
    return self_signed("localhost", ("localhost", HOST))


@functools.cache
def _certificate_files() -> tuple[str, str]:
    # load_cert_chain only reads files; the directory lives as long as the test process.
    directory = Path(tempfile.mkdtemp(prefix="loket-smtp-tls-"))
    cert_pem, key_pem = certificate()
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key_pem)
    return str(directory / "cert.pem"), str(directory / "key.pem")


def server_ssl_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_certificate_files())
    return context


def client_ssl_context() -> ssl.SSLContext:
    """A client context that trusts the test certificate (and checks the host name)."""
    return ssl.create_default_context(cadata=certificate()[0].decode("ascii"))


# --- the recording server -----------------------------------------------------------------------


@dataclass
class Script:
    """Scripted failures; replies are full SMTP reply lines such as "550 5.1.1 user unknown"."""

    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # lowercased address → reply
    refuse_mail: str | None = None  # reply to MAIL FROM
    data_reply: str | None = None  # reply to the message data instead of 250
    drop_at: str | None = None  # "MAIL" | "RCPT" | "DATA": close the connection instead
    delay: dict[str, float] = field(default_factory=dict)  # command → seconds before replying


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    login: str | None  # who authenticated, if anyone
    tls: bool

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


class RecordingHandler:
    def __init__(
        self, script: Script, credentials: dict[str, str], oauth_tokens: dict[str, str]
    ) -> None:
        self.script = script
        self.credentials = credentials
        self.oauth_tokens = oauth_tokens
        self.received: list[Received] = []
        self.commands: list[str] = []  # MAIL/RCPT/DATA as they arrived, for assertions

    async def _scripted(self, server: SMTP, command: str) -> None:
        self.commands.append(command)
        if command in self.script.delay:
            await asyncio.sleep(self.script.delay[command])
        if self.script.drop_at == command:
            server.transport.close()
            await asyncio.sleep(5)  # cancelled when aiosmtpd sees the connection go

    async def handle_MAIL(self, server, session, envelope, address, options):
        await self._scripted(server, "MAIL")
        if self.script.refuse_mail:
            return self.script.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        await self._scripted(server, "RCPT")
        reply = self.script.refuse_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._scripted(server, "DATA")
        if self.script.data_reply:
            return self.script.data_reply
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                mail_options=tuple(envelope.mail_options),
                login=session.auth_data if session.authenticated else None,
                tls=server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 2.0.0 Ok: queued as TEST42"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8")
            password = auth_data.password.decode("utf-8")
            if login in self.credentials and self.credentials[login] == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        # As Gmail does it: the initial response, and on failure a 334 challenge carrying JSON
        # that the client answers with an empty line before the final 535.
        try:
            fields = base64.b64decode(args[1]).decode("utf-8").split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except (IndexError, ValueError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 bad XOAUTH2")
        if self.oauth_tokens.get(user) == token:
            return AuthResult(success=True, auth_data=user)
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


class _QuietController(ListeningController):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without TLS; the plain-text tests want exactly that.
            warnings.simplefilter("ignore", UserWarning)
            return super().factory()


class RecordingServer:
    """Use as a context manager. ``tls``: "none", "starttls" (required before MAIL) or
    "implicit". With ``credentials`` ({user: password}) or ``oauth_tokens`` AUTH is required."""

    def __init__(
        self,
        *,
        tls: str = "none",
        credentials: dict[str, str] | None = None,
        oauth_tokens: dict[str, str] | None = None,
        script: Script | None = None,
        auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN", "XOAUTH2"),
        data_size_limit: int | None = 10 * 1024 * 1024,
    ) -> None:
        assert tls in ("none", "starttls", "implicit")
        self.tls = tls
        self.handler = RecordingHandler(script or Script(), credentials or {}, oauth_tokens or {})
        require_auth = bool(credentials or oauth_tokens)
        excluded = [m for m in ("PLAIN", "LOGIN", "XOAUTH2") if m not in auth_mechanisms]
        if not oauth_tokens and "XOAUTH2" not in excluded:
            excluded.append("XOAUTH2")
        context = server_ssl_context() if tls != "none" else None
        self.controller = _QuietController(
            self.handler,
            hostname=HOST,
            port=0,
            ssl_context=context if tls == "implicit" else None,
            tls_context=context if tls == "starttls" else None,
            require_starttls=tls == "starttls",
            authenticator=self.handler.authenticate,
            auth_required=require_auth,
            # aiosmtpd only counts STARTTLS as TLS; on implicit TLS it must not demand more.
            auth_require_tls=tls == "starttls",
            auth_exclude_mechanism=excluded,
            data_size_limit=data_size_limit,
            server_hostname="mx.test",
        )

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def settings(self, **overrides) -> SmtpSettings:
        """SmtpSettings for this server (security matching, trusting the test certificate)."""
        values = {
            "host": HOST,
            "port": self.port,
            "security": {"none": "none", "starttls": "starttls", "implicit": "tls"}[self.tls],
            "timeout": 5.0,
            "local_hostname": "client.test",
            "ssl_context": client_ssl_context(),
        }
        values.update(overrides)
        return SmtpSettings(**values)

    def __enter__(self) -> RecordingServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.controller.stop()


# --- sockets that misbehave ---------------------------------------------------------------------


@contextmanager
def silent_listener():
    """A port that accepts TCP connections (in the kernel backlog) but never greets: yields it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def trusted_server(settings, folder: Path):
    """A recording STARTTLS server (login desk / smtp-pass) whose certificate Loket trusts."""
    bundle = folder / "ca.pem"
    bundle.write_bytes(certificate()[0])
    settings.LOKET_EMAIL_CA_FILE = str(bundle)
    with RecordingServer(tls="starttls", credentials={"desk": "smtp-pass"}) as server:
        yield server


def forwarding_channel(workspace, server):
    """An email channel whose mail arrives forwarded (no IMAP) and leaves through ``server``."""
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel

    channel, _ = create_channel(
        workspace,
        get_connector("email"),
        name="Support mail",
        config={
            "address": "support@shop.example",
            "inbound": "forward",
            "smtp_host": server.host,
            "smtp_port": server.port,
            "smtp_security": "starttls",
            "smtp_username": "desk",
            "smtp_password": "smtp-pass",
        },
    )
    return channel
