"""Reading a support mailbox over IMAP without ever losing a mail.

Loket keeps, per mailbox, the folder's UIDVALIDITY and the highest UID it has committed
(``MailboxState``). ``ImapMailbox.fetch_new`` reads every message above that UID with
``BODY.PEEK[]`` (so reading does not mark it read), hands the raw source and the next state to
a ``store`` callback that commits both in one transaction, and only after that marks the
message processed (``\\Seen``, or moved to another folder). A crash in between therefore leaves
at worst a stored message unmarked, never a marked message unstored; the next session finishes
the marking. Flags are not trusted to mean "processed": a mail somebody read in another client
is still fetched. ``MailboxPoller`` runs this in a loop, waiting with IDLE between rounds and
reconnecting with backoff. Every failure surfaces as ``ImapError`` with an admin-facing reason
and whether retrying may help.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import random
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError

logger = logging.getLogger(__name__)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"

# Response codes (RFC 5530) that mean "try again later" rather than "fix the configuration".
TRANSIENT_CODES = {"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", "CONTACTADMIN"}


class ImapError(Exception):
    """A clear, admin-facing reason why talking to the mailbox failed.

    ``transient`` is True for network trouble, timeouts and a busy server (retry with
    backoff) and False for what needs a person: bad credentials, a missing folder, a
    certificate that does not match.
    """

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __reduce__(self):
        # The default would call __init__ without ``transient`` when unpickling.
        return (_rebuild_error, (type(self), self.message, self.transient))


def _rebuild_error(cls: type[ImapError], message: str, transient: bool) -> ImapError:
    return cls(message, transient=transient)


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int = 993
    security: str = "tls"  # "tls" (implicit) | "starttls" | "none"
    username: str = ""
    password: str = field(default="", repr=False)
    oauth2_token: str = field(default="", repr=False)  # set: AUTHENTICATE XOAUTH2, not LOGIN
    folder: str = "INBOX"
    processed_action: str = "seen"  # "seen" (set \Seen) | "move" (to processed_folder)
    processed_folder: str = ""
    sent_folder: str = ""  # where sent copies are appended ("" = nowhere)
    timeout: float = 30.0
    # Not compared: a loader building a fresh context each time is still the same settings.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MailboxState:
    uidvalidity: int | None = None
    last_uid: int = 0  # highest UID already committed


def xoauth2_string(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's format)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive: finds a dead peer during a long IDLE, and keeps NAT state alive."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 30), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _server_text(exc: BaseException) -> tuple[str, str]:
    """(response code, human text) out of an imaplib/imapclient error."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text)
    # imaplib sometimes formats the server's bytes with repr(): "b'[CODE] text'".
    quoted = re.search(r"b(['\"])(.*)\1", text)
    if quoted:
        text = text[: quoted.start()] + quoted.group(2) + text[quoted.end() :]
    # imapclient prefixes "<command> failed: ".
    text = re.sub(r"^\w+ failed: ", "", text)
    code = ""
    match = re.search(r"\[([A-Z-]+)[^\]]*\]\s*", text)
    if match:
        code = match.group(1)
        text = text[: match.start()] + text[match.end() :]
    # Dovecot's timing suffix, "(0.001 + 0.000 secs)."
    text = re.sub(r"\s*\([\d.]+(?: \+ [\d.]+)* secs\)", "", text).strip()
    text = text.rstrip(".") or "no reason given"
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return code, text


class ImapMailbox:
    """One IMAP session on one mailbox; a context manager (connect, log in, select / log out).

    Not thread-safe: give each thread its own.
    """

    def __init__(self, settings: ImapSettings):
        self.settings = settings
        self.supports_idle = False
        self.supports_move = False
        # fetch_new stopped at its limit: call it again before waiting.
        self.has_more = False
        self._client: IMAPClient | None = None
        self._caught_up = False

    # -- session ----------------------------------------------------------------------------

    def __enter__(self) -> ImapMailbox:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Connect, secure, authenticate and select the folder."""
        self._validate()
        self.close()
        s = self.settings
        context = s.ssl_context or ssl.create_default_context()
        self._caught_up = False
        try:
            with self._errors(connecting=True):
                self._client = IMAPClient(
                    s.host,
                    s.port,
                    ssl=s.security == "tls",
                    ssl_context=context,
                    timeout=s.timeout,
                )
                _keepalive(self._client.socket())
                if s.security == "starttls":
                    try:
                        self._client.starttls(context)
                    except CapabilityError:
                        raise ImapError(
                            f"{s.host}:{s.port} does not offer STARTTLS"
                            " (use implicit TLS, usually port 993)",
                            transient=False,
                        ) from None
            with self._errors():
                self._authenticate()
                capabilities = self._require().capabilities()
                self.supports_idle = b"IDLE" in capabilities
                self.supports_move = b"MOVE" in capabilities
                self._select(s.folder)
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        """Log out (briefly: a dead server must not hold up a shutdown)."""
        client = self._client
        if client is None:
            return
        try:
            client.socket().settimeout(min(self.settings.timeout, 2.0))
            client.logout()
        except Exception:
            logger.debug("IMAP logout from %s failed", self.settings.host, exc_info=True)
        finally:
            self._drop()

    def check(self) -> None:
        """Connect, authenticate and open every folder the settings name; raises ImapError."""
        if self._client is None:
            with self:
                self._check_folders()
        else:
            self._check_folders()

    def _validate(self) -> None:
        s = self.settings
        problem = ""
        if s.security not in {"tls", "starttls", "none"}:
            problem = f'unknown security "{s.security}" (use tls, starttls or none)'
        elif s.processed_action not in {"seen", "move"}:
            problem = f'unknown processed action "{s.processed_action}" (use seen or move)'
        elif s.processed_action == "move" and not s.processed_folder:
            problem = "moving processed mail needs a folder to move it to"
        elif s.processed_action == "move" and s.processed_folder == s.folder:
            problem = "the processed folder must differ from the folder Loket reads"
        elif s.sent_folder and s.sent_folder == s.folder:
            # Sent copies would come back in as new mail.
            problem = "the sent folder must differ from the folder Loket reads"
        if problem:
            raise ImapError(problem, transient=False)

    def _check_folders(self) -> None:
        s = self.settings
        with self._errors():
            self._select(s.folder)
            for folder in (
                s.processed_folder if s.processed_action == "move" else "",
                s.sent_folder,
            ):
                if not folder:
                    continue
                try:
                    self._client.folder_status(folder, [b"UIDVALIDITY"])
                except imaplib.IMAP4.abort:
                    raise
                except imaplib.IMAP4.error as exc:
                    raise self._folder_error(folder, exc) from exc

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _require(self) -> IMAPClient:
        if self._client is None:
            raise ImapError("not connected to the mailbox", transient=True)
        return self._client

    def _authenticate(self) -> None:
        s = self.settings
        client = self._require()
        imap = client._imap
        if s.oauth2_token:
            challenges: list[bytes] = []

            def respond(challenge: bytes) -> bytes:
                # The first call sends the token; a second is the server's JSON error, which
                # XOAUTH2 asks the client to acknowledge with an empty response.
                challenges.append(challenge)
                return (
                    xoauth2_string(s.username, s.oauth2_token).encode()
                    if len(challenges) == 1
                    else b""
                )

            try:
                imap.authenticate("XOAUTH2", respond)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                detail = _oauth_detail(challenges[1:])
                raise self._login_error(exc, "XOAUTH2 " + detail if detail else "XOAUTH2") from exc
            return
        if b"LOGINDISABLED" in client.capabilities():
            raise ImapError(
                "login failed: the server refuses passwords on an unencrypted connection"
                " (use TLS or STARTTLS)",
                transient=False,
            )
        try:
            if (s.username + s.password).isascii():
                imap.login(imap._quote(s.username), s.password)
            elif b"AUTH=PLAIN" in client.capabilities():
                # LOGIN cannot carry non-ASCII; SASL PLAIN is UTF-8.
                plain = f"\0{s.username}\0{s.password}".encode()
                imap.authenticate("PLAIN", lambda _challenge: plain)
            else:
                raise ImapError(
                    "login failed: the username or password has non-ASCII characters and the"
                    " server does not offer AUTHENTICATE PLAIN",
                    transient=False,
                )
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise self._login_error(exc) from exc

    @staticmethod
    def _login_error(exc: BaseException, how: str = "") -> ImapError:
        code, text = _server_text(exc)
        prefix = f"login failed ({how})" if how else "login failed"
        if code in TRANSIENT_CODES:
            return ImapError(f"{prefix}: server temporarily unavailable ({text})", transient=True)
        return ImapError(f"{prefix}: {text}", transient=False)

    @staticmethod
    def _folder_error(folder: str, exc: BaseException) -> ImapError:
        code, text = _server_text(exc)
        if code in TRANSIENT_CODES:
            return ImapError(f'folder "{folder}" is unavailable: {text}', transient=True)
        if code in {"NONEXISTENT", "TRYCREATE"} or re.search(r"exist|not found", text, re.I):
            return ImapError(f'folder "{folder}" does not exist', transient=False)
        return ImapError(f'cannot open folder "{folder}": {text}', transient=False)

    def _select(self, folder: str) -> dict:
        client = self._require()
        try:
            info = client.select_folder(folder)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise self._folder_error(folder, exc) from exc
        # What SELECT itself announced is not news; only later EXISTS responses are.
        self._take_updates()
        return info

    @contextlib.contextmanager
    def _errors(self, *, connecting: bool = False) -> Iterator[None]:
        """Turn socket, TLS and IMAP failures into ImapError; a broken session is dropped."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            yield
        except ImapError as exc:
            if exc.transient:
                self._drop()
            raise
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            reason = exc.verify_message or exc.reason or str(exc)
            raise ImapError(
                f"TLS certificate not valid for host {self.settings.host}: {reason}",
                transient=False,
            ) from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            self._drop()
            raise ImapError(f"connection to {where} closed during TLS", transient=True) from exc
        except ssl.SSLError as exc:
            self._drop()
            if connecting:
                # Typically TLS spoken to a plain port or the reverse.
                raise ImapError(
                    f"TLS handshake with {where} failed: {exc.reason or exc}"
                    " (check the port and security setting)",
                    transient=False,
                ) from exc
            raise ImapError(f"TLS error on {where}: {exc.reason or exc}", transient=True) from exc
        except TimeoutError as exc:
            self._drop()
            what = "cannot connect to" if connecting else "no answer from"
            raise ImapError(f"{what} {where}: timed out", transient=True) from exc
        except socket.gaierror as exc:
            self._drop()
            # An unknown name is a typo; anything else (EAI_AGAIN) is DNS having a bad moment.
            unknown = exc.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)}
            raise ImapError(
                f"cannot resolve {self.settings.host}: {exc.strerror or exc}", transient=not unknown
            ) from exc
        except OSError as exc:
            self._drop()
            reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
            if connecting:
                raise ImapError(f"cannot connect to {where}: {reason}", transient=True) from exc
            raise ImapError(f"connection to {where} lost: {reason}", transient=True) from exc
        except imaplib.IMAP4.abort as exc:
            self._drop()
            _code, text = _server_text(exc)
            raise ImapError(f"connection to {where} lost: {text}", transient=True) from exc
        except imaplib.IMAP4.error as exc:
            code, text = _server_text(exc)
            transient = code in TRANSIENT_CODES or not code
            if transient:
                self._drop()
            raise ImapError(f"IMAP error from {where}: {text}", transient=transient) from exc

    # -- fetching ---------------------------------------------------------------------------

    def fetch_new(
        self,
        state: MailboxState,
        store: Callable[[int, bytes, MailboxState], None],
        *,
        limit: int = 50,
    ) -> MailboxState:
        """Store every message above ``state.last_uid`` (at most ``limit``), oldest first.

        ``store(uid, raw, new_state)`` must commit the raw source and ``new_state`` together
        and return only after the commit; the message is marked processed after that. If
        ``store`` raises, the exception propagates and nothing from that message on is marked.
        Returns the state after the last stored message.
        """
        s = self.settings
        with self._errors():
            info = self._select(s.folder)
            uidvalidity = info.get(b"UIDVALIDITY")
            last_uid = state.last_uid
            if state.uidvalidity is not None and uidvalidity != state.uidvalidity:
                # The old UIDs name nothing now; reading everything again is safe because the
                # caller deduplicates by Message-ID.
                logger.warning(
                    "IMAP folder %r on %s: UIDVALIDITY changed from %s to %s; reading it again",
                    s.folder,
                    s.host,
                    state.uidvalidity,
                    uidvalidity,
                )
                last_uid = 0
            elif last_uid:
                self._catch_up(last_uid)
            candidates: list[int] = []
            uidnext = info.get(b"UIDNEXT")
            if info.get(b"EXISTS", 1) and (uidnext is None or uidnext > last_uid + 1):
                # "n:*" always matches the highest UID, even one below n: filter.
                found = self._search(b"UID", f"{last_uid + 1}:*".encode())
                candidates = [uid for uid in found if uid > last_uid]
        self.has_more = len(candidates) > limit
        current = MailboxState(uidvalidity, last_uid)
        for uid in candidates[:limit]:
            with self._errors():
                raw = self._fetch_raw(uid)
            if raw is None:
                continue  # expunged since the search
            new_state = MailboxState(uidvalidity, uid)
            store(uid, raw, new_state)
            current = new_state
            with self._errors():
                self._mark_processed([uid])
        return current

    def _fetch_raw(self, uid: int) -> bytes | None:
        client = self._require()
        try:
            # PEEK: a plain BODY[] would set \Seen before the mail is stored.
            response = client.fetch([uid], [b"BODY.PEEK[]"])
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            code, _text = _server_text(exc)
            if code == "EXPUNGEISSUED":
                return None
            raise
        raw = response.get(uid, {}).get(b"BODY[]")
        return bytes(raw) if raw is not None else None

    def _mark_processed(self, uids: list[int]) -> None:
        s = self.settings
        client = self._require()
        if s.processed_action == "seen":
            client.add_flags(uids, [SEEN], silent=True)
            return
        try:
            if self.supports_move:
                client.move(uids, s.processed_folder)
            else:
                client.copy(uids, s.processed_folder)
                client.add_flags(uids, [DELETED], silent=True)
                self._expunge(uids)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            code, _text = _server_text(exc)
            if code in {"TRYCREATE", "NONEXISTENT"}:
                raise self._folder_error(s.processed_folder, exc) from exc
            raise

    def _expunge(self, uids: list[int]) -> None:
        client = self._require()
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            # Also removes what others flagged \Deleted, as any client's EXPUNGE does.
            client.expunge()

    def _search(self, *criteria: bytes) -> list[int]:
        return sorted(self._require().search(list(criteria)))

    def _catch_up(self, last_uid: int) -> None:
        """Finish marking what an interrupted session stored but did not mark (once a session).

        Each mail is marked right after its store, so in "seen" mode only ``last_uid`` can be
        pending. In "move" mode anything at or below ``last_uid`` still in the folder is
        stored already: a mail moved back in by a person gets a new, higher UID.
        """
        if self._caught_up:
            return
        self._caught_up = True
        if self.settings.processed_action == "seen":
            self._require().add_flags([last_uid], [SEEN], silent=True)
            return
        below = f"1:{last_uid}".encode()
        # "1:n" can match the highest UID when all are above n, as "n:*" can: filter.
        pending = [uid for uid in self._search(b"UID", below) if uid <= last_uid]
        if not pending:
            return
        if self.supports_move:
            self._mark_processed(pending)
            return
        # Without MOVE a \Deleted one was copied already; copying it again would duplicate it.
        copied = {uid for uid in self._search(b"UID", below, b"DELETED") if uid <= last_uid}
        if uncopied := [uid for uid in pending if uid not in copied]:
            self._mark_processed(uncopied)
        if copied:
            self._expunge(sorted(copied))

    # -- waiting ----------------------------------------------------------------------------

    def _take_updates(self) -> bool:
        """Whether the server announced new mail since the last look (and forget it)."""
        client = self._client
        if client is None:
            return False
        untagged = client._imap.untagged_responses
        exists = untagged.pop("EXISTS", None)
        recent = untagged.pop("RECENT", None) or []
        return bool(exists) or any(int(count) > 0 for count in recent)

    def wait_for_changes(self, timeout: float, *, stop: threading.Event | None = None) -> bool:
        """Wait up to ``timeout`` s for new mail; True when the server announced some.

        With IDLE the server pushes EXISTS at once; without it this sleeps and then asks with
        NOOP. ``stop`` ends the wait within half a second.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        client = self._require()
        if self._take_updates():
            return True  # announced during the previous commands: IDLE would not repeat it
        if not self.supports_idle:
            while (remaining := deadline - time.monotonic()) > 0:
                if stop is not None:
                    if stop.wait(min(remaining, 0.5)):
                        return False
                else:
                    time.sleep(remaining)
            with self._errors():
                client.noop()
                return self._take_updates()
        changed = False
        with self._errors():
            client.idle()
            while not changed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    break
                responses = client.idle_check(timeout=min(remaining, 0.5) if stop else remaining)
                changed = self._announces_mail(responses)
                if not responses and self._peer_closed():
                    raise ImapError(
                        f"{self.settings.host}:{self.settings.port} closed the connection",
                        transient=True,
                    )
            _text, responses = client.idle_done()
            changed = self._announces_mail(responses) or changed
        self._take_updates()
        return changed

    def _announces_mail(self, responses: list) -> bool:
        changed = False
        for response in responses:
            if response and response[0] == b"BYE":
                words = (
                    w.decode("utf-8", "replace") if isinstance(w, bytes) else str(w)
                    for w in response[1:]
                )
                text = " ".join(words)
                raise ImapError(
                    f"{self.settings.host}:{self.settings.port} closed the connection: {text}",
                    transient=True,
                )
            kind = response[1] if len(response) >= 2 else None
            # "* 0 RECENT" follows expunges; only a positive count means arrivals.
            if kind == b"EXISTS" or (kind == b"RECENT" and response[0]):
                changed = True
        return changed

    def _peer_closed(self) -> bool:
        """Whether the server hung up (idle_check cannot tell EOF from silence)."""
        client = self._client
        if client is None:
            return True
        hangup = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)
        poller = select.poll()
        poller.register(client.socket().fileno(), select.POLLIN | hangup)
        return any(events & hangup for _fd, events in poller.poll(0))

    # -- sending ----------------------------------------------------------------------------

    def append_sent(self, raw: bytes) -> None:
        """Keep a copy of a sent mail in the sent folder, already read (no-op without one)."""
        folder = self.settings.sent_folder
        if not folder:
            return
        with self._errors():
            try:
                self._require().append(folder, raw, flags=[SEEN])
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                code, text = _server_text(exc)
                if code in {"TRYCREATE", "NONEXISTENT"}:
                    raise self._folder_error(folder, exc) from exc
                if code in {"OVERQUOTA", "LIMIT"}:
                    raise ImapError(
                        f'cannot save to folder "{folder}": {text}', transient=False
                    ) from exc
                raise


def _oauth_detail(challenges: list[bytes]) -> str:
    """The status out of an XOAUTH2 error challenge (JSON such as {"status": "401", ...})."""
    for challenge in challenges:
        with contextlib.suppress(ValueError):
            data = json.loads(challenge or b"{}")
            if isinstance(data, dict) and data.get("status"):
                return f"status {data['status']}"
    return ""


class MailboxPoller:
    """Keep a mailbox read: fetch, wait (IDLE or a poll interval), repeat; reconnect on failure.

    Run ``run()`` in a thread; it returns within about a second once ``stop`` is set (a
    connection attempt in progress can take up to the settings' timeout). Settings are loaded
    on each connect and compared after each wait, so a change reconnects; the state is loaded
    on each connect and otherwise carried from ``fetch_new``. Non-transient errors go to
    ``on_error`` at once and back off long; transient ones back off exponentially (capped,
    jittered) and are reported once they repeat ``report_after`` times in a row.
    """

    def __init__(
        self,
        settings_loader: Callable[[], ImapSettings],
        state_loader: Callable[[], MailboxState],
        store: Callable[[int, bytes, MailboxState], None],
        *,
        idle_timeout: float = 25 * 60,
        poll_interval: float = 60,
        stop: threading.Event | None = None,
        on_error: Callable[[ImapError], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        limit: int = 50,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
        error_backoff: float = 300.0,
        max_error_backoff: float = 3600.0,
        report_after: int = 5,
    ):
        self.settings_loader = settings_loader
        self.state_loader = state_loader
        self.store = store
        # RFC 2177: re-issue IDLE at least every 29 minutes or the server may drop us.
        self.idle_timeout = min(idle_timeout, 29 * 60)
        self.poll_interval = poll_interval
        self.stop = stop or threading.Event()
        self.on_error = on_error
        self.on_connected = on_connected
        self.limit = limit
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.error_backoff = error_backoff
        self.max_error_backoff = max_error_backoff
        self.report_after = report_after
        self.failures = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._session()
            except ImapError as exc:
                self._failed(exc)
            except Exception as exc:
                # The store callback or a loader failed (a database outage, say): retry later.
                logger.exception("IMAP poller: storing or loading failed")
                self._failed(ImapError(f"storing mail failed: {exc}", transient=True))

    def _session(self) -> None:
        settings = self.settings_loader()
        with ImapMailbox(settings) as mailbox:
            state = self.state_loader()
            connected = False
            while not self.stop.is_set():
                state = mailbox.fetch_new(state, self.store, limit=self.limit)
                if not connected:
                    connected = True
                    self.failures = 0
                    if self.on_connected is not None:
                        self.on_connected()
                if mailbox.has_more:
                    continue
                wait = self.idle_timeout if mailbox.supports_idle else self.poll_interval
                mailbox.wait_for_changes(wait, stop=self.stop)
                if self.stop.is_set() or self.settings_loader() != settings:
                    return

    def _failed(self, exc: ImapError) -> None:
        self.failures += 1
        if exc.transient:
            delay = min(self.max_backoff, self.min_backoff * 2 ** (self.failures - 1))
            report = self.failures >= self.report_after
        else:
            delay = min(self.max_error_backoff, self.error_backoff * 2 ** (self.failures - 1))
            report = True
        delay *= random.uniform(0.5, 1.0)  # several mailboxes on one server do not retry in step
        logger.warning("IMAP poller: %s; retrying in %.1f s", exc, delay)
        if report and self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                logger.exception("IMAP poller: on_error failed")
        self.stop.wait(delay)
