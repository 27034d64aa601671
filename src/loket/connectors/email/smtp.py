"""Sending mail through a workspace's SMTP server (submission with STARTTLS, implicit TLS, or
plain), and checking its settings.

Every failure becomes one ``SmtpError`` whose ``reason`` an admin or agent can act on and whose
``transient`` flag tells the caller whether to retry: 4xx replies, lost connections, timeouts
and TLS failures (an expired certificate gets renewed) are transient; 5xx replies and
configuration problems (wrong password, no STARTTLS or AUTH offered) are not.

Some recipients refused while others are accepted is not an error: the message goes to the
accepted ones and ``send`` returns an ``SmtpReply`` (a ``str``: the server's final reply) whose
``refused`` lists the others. Raising there would invite a retry that delivers the message twice
to everyone who already has it.

Credentials are sent as UTF-8 (RFC 4616; smtplib's own ``login`` only does ASCII) and never
appear in a reason.
"""

from __future__ import annotations

import base64
import copy
import email.message
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from loket.connectors.email.composing import ascii_address, check_address

__all__ = ["RefusedRecipient", "SmtpError", "SmtpReply", "SmtpSettings", "check", "send"]

SECURITY_CHOICES = ("tls", "starttls", "none")


@dataclass(frozen=True)
class RefusedRecipient:
    address: str
    code: int
    message: str  # the server's text, e.g. "5.1.1 user unknown"

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def reason(self) -> str:
        return f"the server refused recipient {self.address}: {self.code} {self.message}".rstrip()


class SmtpError(Exception):
    """Sending or checking failed. ``reason`` is for people; ``transient`` says retry later
    (with backoff) rather than give up; ``code`` is the SMTP reply code when there was one;
    ``refused`` lists the recipients when the server refused all of them."""

    def __init__(
        self,
        reason: str,
        *,
        transient: bool,
        code: int | None = None,
        refused: tuple[RefusedRecipient, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.code = code
        self.refused = refused

    def __reduce__(self):  # picklable despite the keyword-only arguments
        return _rebuild_error, (self.reason, self.transient, self.code, self.refused)


def _rebuild_error(reason, transient, code, refused) -> SmtpError:
    return SmtpError(reason, transient=transient, code=code, refused=refused)


class SmtpReply(str):
    """The server's final reply to the message data, e.g. "250 2.0.0 Ok: queued as ABC".

    ``accepted``: the recipients the message went to. ``refused``: the ones the server refused
    at RCPT TO (each with ``reason``, e.g. "the server refused recipient bob@x: 550 5.1.1 user
    unknown", and ``transient``); the message was not delivered to them."""

    accepted: tuple[str, ...]
    refused: tuple[RefusedRecipient, ...]

    def __new__(
        cls,
        reply: str,
        accepted: tuple[str, ...] = (),
        refused: tuple[RefusedRecipient, ...] = (),
    ) -> SmtpReply:
        result = super().__new__(cls, reply)
        result.accepted = accepted
        result.refused = refused
        return result


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"  # "tls" (implicit, usually 465) | "starttls" | "none"
    username: str = ""
    password: str = ""
    oauth2_token: str = ""  # AUTH XOAUTH2 (Google, Microsoft 365) when set, with username
    timeout: float = 30.0
    local_hostname: str | None = None
    ssl_context: ssl.SSLContext | None = None  # default: system CAs, hostname checked


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


def _reply(code: int, raw: bytes | str) -> str:
    return f"{code} {_text(raw)}".rstrip()


def _error_from_reply(what: str, code: int, raw: bytes | str) -> SmtpError:
    return SmtpError(f"{what}: {_reply(code, raw)}", transient=not 500 <= code < 600, code=code)


class _Session:
    """One SMTP conversation; ``stage`` names what was going on for the error reasons."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.security not in SECURITY_CHOICES:
            raise SmtpError(
                f"unknown security setting {settings.security!r} (use tls, starttls or none)",
                transient=False,
            )
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self.stage = "connect"
        self.client: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return self.settings.ssl_context or ssl.create_default_context()

    def open(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            self.client = smtplib.SMTP_SSL(
                s.host,
                s.port,
                local_hostname=s.local_hostname,
                timeout=s.timeout,
                context=self._context(),
            )
        else:
            self.client = smtplib.SMTP(
                s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout
            )
        client = self.client
        self.stage = "EHLO"
        code, text = client.ehlo()
        if code != 250:
            code, text = client.helo()
            if code != 250:
                raise _error_from_reply("the server refused EHLO/HELO", code, text)
        if s.security == "starttls":
            self.stage = "STARTTLS"
            if not client.has_extn("starttls"):
                raise SmtpError(
                    f"{self.where} does not offer STARTTLS; choose security 'tls' (usually "
                    "port 465) or 'none'",
                    transient=False,
                )
            # smtplib checks the certificate against the host name given to the constructor.
            client.starttls(context=self._context())
            self.stage = "EHLO"
            code, text = client.ehlo()
            if code != 250:
                raise _error_from_reply("the server refused EHLO after STARTTLS", code, text)
        if s.oauth2_token or s.username:
            self.stage = "AUTH"
            self._login()
        return client

    def _auth(self, command: str, *args: str) -> tuple[int, bytes]:
        assert self.client is not None
        return self.client.docmd(command, " ".join(args))

    def _login(self) -> None:
        assert self.client is not None
        s = self.settings
        if not self.client.has_extn("auth"):
            hint = "" if isinstance(self.client.sock, ssl.SSLSocket) else " without TLS"
            raise SmtpError(
                f"login failed: {self.where} does not offer AUTH{hint}", transient=False
            )
        offered = self.client.esmtp_features["auth"].upper().split()

        def b64(value: str) -> str:
            return base64.b64encode(value.encode("utf-8")).decode("ascii")

        if s.oauth2_token:
            if "XOAUTH2" not in offered:
                raise SmtpError(
                    f"login failed: the server does not offer XOAUTH2 (it offers "
                    f"{' '.join(offered) or 'nothing'})",
                    transient=False,
                )
            token = f"user={s.username}\x01auth=Bearer {s.oauth2_token}\x01\x01"
            code, text = self._auth("AUTH", "XOAUTH2", b64(token))
            if code == 334:
                # The error details come as a challenge; an empty line gets the final reply.
                code, text = self._auth("")
        elif "PLAIN" in offered:
            code, text = self._auth("AUTH", "PLAIN", b64(f"\0{s.username}\0{s.password}"))
            if code == 334:  # a server that does not take the initial response
                code, text = self._auth(b64(f"\0{s.username}\0{s.password}"))
        elif "LOGIN" in offered:
            code, text = self._auth("AUTH", "LOGIN")
            if code == 334:
                code, text = self._auth(b64(s.username))
            if code == 334:
                code, text = self._auth(b64(s.password))
        else:
            raise SmtpError(
                f"login failed: no supported AUTH mechanism (the server offers "
                f"{' '.join(offered) or 'nothing'})",
                transient=False,
            )
        if code not in (235, 503):  # 503: already authenticated
            raise _error_from_reply("login failed", code, text)

    def close(self, *, send_quit: bool) -> None:
        # QUIT is a courtesy: once the message is accepted nothing may turn into an error.
        if self.client is None:
            return
        try:
            if send_quit:
                self.client.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self.client.close()

    def translate(self, error: BaseException) -> SmtpError:
        """The SmtpError for an exception raised during ``stage``."""
        if isinstance(error, SmtpError):
            return error
        where, stage = self.where, self.stage
        if isinstance(error, ssl.SSLCertVerificationError):
            return SmtpError(
                f"the TLS certificate of {self.settings.host} could not be verified: "
                f"{error.verify_message or error}",
                transient=True,
            )
        if isinstance(error, ssl.SSLError):
            hint = ""
            if error.reason == "WRONG_VERSION_NUMBER" and self.settings.security == "tls":
                hint = " (the port does not seem to speak implicit TLS; try 'starttls')"
            return SmtpError(
                f"TLS with {where} failed: {error.reason or error}{hint}", transient=True
            )
        if isinstance(error, smtplib.SMTPServerDisconnected):
            timed_out = isinstance(error.__context__, TimeoutError)
            if stage == "connect":
                detail = "timed out waiting for the greeting" if timed_out else "no greeting"
                return SmtpError(f"cannot connect to {where}: {detail}", transient=True)
            if timed_out:
                detail = f"timed out waiting for the server's reply to {stage}"
            else:
                detail = f"the server closed the connection during {stage}"
            if stage == "DATA":
                detail += " (the message may or may not have been delivered)"
            return SmtpError(f"{where}: {detail}", transient=True)
        if isinstance(error, smtplib.SMTPResponseException):
            what = {
                "connect": f"cannot connect to {where}",
                "STARTTLS": "the server refused STARTTLS",
                "DATA": "the server refused the message",
            }.get(stage, f"{stage} failed")
            return _error_from_reply(what, error.smtp_code, error.smtp_error)
        if isinstance(error, TimeoutError):
            if stage == "connect":
                return SmtpError(f"cannot connect to {where}: timed out", transient=True)
            return SmtpError(f"{where}: timed out during {stage}", transient=True)
        if isinstance(error, socket.gaierror):
            return SmtpError(
                f"cannot connect to {where}: the host name does not resolve ({error.strerror})",
                transient=True,
            )
        if isinstance(error, OSError):
            detail = error.strerror or str(error) or error.__class__.__name__
            if stage == "connect":
                return SmtpError(f"cannot connect to {where}: {detail}", transient=True)
            return SmtpError(f"{where}: connection lost during {stage}: {detail}", transient=True)
        if isinstance(error, smtplib.SMTPException):
            return SmtpError(f"{where}: {stage} failed: {error}", transient=False)
        raise error


def check(settings: SmtpSettings) -> None:
    """Connect, EHLO, STARTTLS, log in and QUIT; raises SmtpError with the reason it failed."""
    session = _Session(settings)
    try:
        session.open()
        session.stage = "NOOP"
        code, text = session.client.noop()  # type: ignore[union-attr]
        if code != 250:
            raise _error_from_reply("the server did not answer NOOP", code, text)
    except Exception as error:
        session.close(send_quit=False)
        raise session.translate(error) from error
    session.close(send_quit=True)


def _serialise(message: email.message.Message) -> bytes:
    if message.get("Bcc") is not None or message.get("Resent-Bcc") is not None:
        # Blind copies are an envelope matter; a message built elsewhere may still carry them.
        message = copy.deepcopy(message)
        del message["Bcc"]
        del message["Resent-Bcc"]
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def send(
    settings: SmtpSettings,
    message: email.message.Message,
    *,
    envelope_from: str,
    recipients: Sequence[str],
) -> SmtpReply:
    """Send ``message`` (its own bytes, CRLF) to ``recipients`` with MAIL FROM ``envelope_from``.

    Returns an SmtpReply: the server's final reply text, with ``.accepted`` and ``.refused``.
    A partial refusal does not raise: check ``.refused`` and show each ``.reason``.
    Raises SmtpError when nothing was sent: connection, TLS or login failure, the sender or the
    message refused, or every recipient refused (``transient`` unless all refusals were 5xx;
    the refusals are in ``.refused``). SMTPUTF8 and BODY=8BITMIME are declared when needed.
    """
    unique: dict[str, str] = {}
    try:
        for recipient in recipients:
            if str(recipient).strip():
                address = check_address(recipient)
                unique.setdefault(address.casefold(), address)
        envelope_from = check_address(envelope_from) if envelope_from.strip() else ""
    except ValueError as error:  # also what keeps CR/LF out of the SMTP commands
        raise SmtpError(str(error), transient=False) from error
    if not unique:
        raise SmtpError("the message has no recipients", transient=False)
    data = _serialise(message)
    head, _, body = data.partition(b"\r\n\r\n")

    # The envelope in ASCII where possible (IDNA domains); a non-ASCII mailbox needs SMTPUTF8.
    def envelope(address: str) -> str:
        return ascii_address(address) or address

    sender = envelope(envelope_from) if envelope_from else ""  # "" is the null sender <>
    rcpts = [(original, envelope(original)) for original in unique.values()]
    needs_utf8 = not head.isascii() or not all(
        a.isascii() for a in [sender, *(r for _, r in rcpts)]
    )
    eight_bit = not body.isascii()

    session = _Session(settings)
    try:
        client = session.open()
        options: list[str] = []
        if needs_utf8:
            if not client.has_extn("smtputf8"):
                raise SmtpError(
                    "the server does not support SMTPUTF8, needed for the non-ASCII address or "
                    "header in this message",
                    transient=False,
                )
            options.append("SMTPUTF8")
        if eight_bit or needs_utf8:
            if client.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            elif eight_bit:
                raise SmtpError(
                    "the server does not accept 8-bit message data (no 8BITMIME)", transient=False
                )
        limit = client.esmtp_features.get("size", "").strip()
        if limit.isdigit() and int(limit) and len(data) > int(limit):
            raise SmtpError(
                f"the message is {len(data)} bytes; the server accepts at most {int(limit)}",
                transient=False,
            )
        if client.has_extn("size"):
            options.append(f"SIZE={len(data)}")

        session.stage = "MAIL FROM"
        code, text = client.mail(sender, options)
        if code != 250:
            raise _error_from_reply(f"the server refused the sender <{sender}>", code, text)

        session.stage = "RCPT TO"
        accepted: list[str] = []
        refused: list[RefusedRecipient] = []
        for original, address in rcpts:
            code, text = client.rcpt(address)
            if code in (250, 251):
                accepted.append(original)
            else:
                refused.append(RefusedRecipient(original, code, _text(text)))
        if not accepted:
            session.stage = "RSET"
            client.rset()
            raise SmtpError(
                "the server refused all recipients: " + "; ".join(r.reason for r in refused),
                transient=any(not 500 <= r.code < 600 for r in refused),
                code=refused[0].code,
                refused=tuple(refused),
            )

        session.stage = "DATA"
        code, text = client.data(data)
        if code != 250:
            raise _error_from_reply("the server refused the message", code, text)
    except Exception as error:
        session.close(send_quit=False)
        raise session.translate(error) from error
    session.close(send_quit=True)
    return SmtpReply(_reply(code, text), tuple(accepted), tuple(refused))
