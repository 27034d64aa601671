"""A real, throw-away Dovecot IMAP server for the email channel's tests.

``Dovecot.start()`` writes a dovecot.conf into a fresh temporary directory and runs
``/usr/sbin/dovecot -F`` on two free loopback ports: plain IMAP (with STARTTLS) and implicit
TLS, with a self-signed certificate made here with ``cryptography``. Mail is Maildir under the
same directory and users live in a passwd-file, so nothing outside the directory is touched.
When the tests run as root, mail processes run as ``nobody`` and the login and internal
processes as Debian's ``dovenull``/``dovecot`` accounts (``nobody`` when those are missing);
otherwise everything runs as the current user. The helpers talk to the server over IMAP, as a
second mail client would.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")


def available() -> bool:
    return DOVECOT.is_file() and os.access(DOVECOT, os.X_OK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_certificate(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> tuple[Path, Path]:
    """A self-signed certificate (it is its own CA) for ``hosts``; returns (cert, key) paths."""
    from tests.certs import self_signed

    cert_pem, key_pem = self_signed("Loket test IMAP", hosts)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path


def _account(name: str, fallback: str = "nobody") -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return pwd.getpwnam(fallback)


CONFIG = """\
# Generated for one test run; every path is inside {root}.
base_dir = {root}/run
state_dir = {root}/state
instance_name = loket-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1

ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2

# Plain passwords are fine on loopback (Dovecot counts it as secured anyway); a failed login
# answers within 0.5 s instead of after 2 s. Dovecot 2.3's XOAUTH2 checks the bearer
# token like a password against the passdb, which lets the tests log in with it.
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}

mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
{chroot}}}
# No growing delay for an address after failed logins (tests fail logins on purpose).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{chroot}}}
{unchroot}
"""

# Without root there is no chroot() and no other account to switch to.
UNCHROOT = """\
service ipc {
  chroot =
}
service old-stats {
  chroot =
}
service auth-worker {
  user = $default_internal_user
}
"""


@dataclass
class Dovecot:
    """A running Dovecot; ``start()`` makes one, ``stop()`` ends it and removes its files."""

    root: Path
    port: int
    tls_port: int
    cafile: Path
    users: dict[str, str]
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    _admin: dict[str, imaplib.IMAP4] = field(default_factory=dict)

    @property
    def username(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.username]

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cafile))

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        users: dict[str, str] | None = None,
        *,
        extra_config: str = "",
        timeout: float = 10.0,
    ) -> Dovecot:
        users = users or {"agent": "s3cret-pass", "other": "other-pass"}
        # Not under pytest's tmp_path: that one is private to root, and the mail and login
        # processes run as other accounts.
        root = Path(tempfile.mkdtemp(prefix="loket-dovecot-"))
        try:
            root.chmod(0o755)
            cert, key = make_certificate(root)
            (root / "passwd").write_text(
                "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items())
            )
            home = root / "home"
            home.mkdir()
            if os.geteuid() == 0:
                mail = pwd.getpwnam("nobody")
                internal = _account("dovecot")
                login = _account("dovenull")
                os.chown(home, mail.pw_uid, mail.pw_gid)
                # dovecot reads the passwd-file as root before dropping privileges, but its
                # auth process runs as the internal user.
                os.chown(root / "passwd", internal.pw_uid, internal.pw_gid)
                chroot, unchroot = "", ""
                names = (internal.pw_name, internal.pw_gid, login.pw_name, mail.pw_uid, mail.pw_gid)
            else:
                me = pwd.getpwuid(os.geteuid())
                chroot, unchroot = "  chroot =\n", UNCHROOT
                names = (me.pw_name, os.getegid(), me.pw_name, me.pw_uid, os.getegid())
            internal_user, internal_gid, login_user, mail_uid, mail_gid = names

            internal_group = grp.getgrgid(internal_gid).gr_name
            last_error = ""
            for _attempt in range(3):
                server = cls(
                    root=root, port=free_port(), tls_port=free_port(), cafile=cert, users=users
                )
                server.config.write_text(
                    CONFIG.format(
                        root=root,
                        port=server.port,
                        tls_port=server.tls_port,
                        cert=cert,
                        key=key,
                        internal_user=internal_user,
                        internal_group=internal_group,
                        login_user=login_user,
                        mail_uid=mail_uid,
                        mail_gid=mail_gid,
                        chroot=chroot,
                        unchroot=unchroot,
                    )
                    + extra_config
                )
                try:
                    server._run(timeout)
                    return server
                except RuntimeError as exc:
                    # Another process may have taken a port between free_port() and bind().
                    last_error = str(exc)
                    server._terminate()
                    if "Address already in use" not in last_error:
                        break
            raise RuntimeError(last_error)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _run(self, timeout: float) -> None:
        with open(self.root / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Its own process group, so that teardown reaches every child it forked.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode}:\n"
                    + (self.root / "stderr.log").read_text(errors="replace")
                    + self.log
                )
            try:
                conn = imaplib.IMAP4(self.host, self.port, timeout=1.0)
                try:
                    _login(conn, self.username, self.password)
                finally:
                    conn.shutdown()
                return
            except (OSError, imaplib.IMAP4.error) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dovecot did not accept a login: {exc}\n{self.log}"
                    ) from exc
                time.sleep(0.02)

    def _terminate(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            # The whole group at once, so every process gets to end its own way. The master
            # would then sleep a second waiting for its children; the server is thrown away
            # with its directory, so it gets a moment only.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
        # Whatever is left, the master included.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.process = None

    def stop(self) -> None:
        for conn in self._admin.values():
            with contextlib.suppress(OSError):
                conn.shutdown()
        self._admin.clear()
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- a second mail client --------------------------------------------------------------

    def connect(self, user: str | None = None) -> imaplib.IMAP4:
        """A fresh, logged-in plain IMAP connection (the caller closes it)."""
        user = user or self.username
        conn = imaplib.IMAP4(self.host, self.port, timeout=10.0)
        _login(conn, user, self.users[user])
        return conn

    def _conn(self, user: str | None) -> imaplib.IMAP4:
        user = user or self.username
        conn = self._admin.get(user)
        if conn is not None:
            try:
                conn.noop()
                return conn
            except (OSError, imaplib.IMAP4.error):
                self._admin.pop(user, None)
        conn = self._admin[user] = self.connect(user)
        return conn

    def append(
        self, raw: bytes, folder: str = "INBOX", flags=(), *, user: str | None = None
    ) -> int:
        """APPEND a message; returns its UID."""
        conn = self._conn(user)
        flag_list = "(" + " ".join(flags) + ")" if flags else None
        typ, data = conn.append(_quote(folder), flag_list, None, raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND to {folder} failed: {data}")
        match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        return int(match.group(1)) if match else 0

    def _select(self, conn: imaplib.IMAP4, folder: str, readonly: bool = True) -> None:
        typ, data = conn.select(_quote(folder), readonly=readonly)
        if typ != "OK":
            raise RuntimeError(f"SELECT {folder} failed: {data}")

    def flags(self, folder: str = "INBOX", *, user: str | None = None) -> dict[int, set[str]]:
        """UID -> flags (without \\Recent) of every message in ``folder``; changes nothing."""
        conn = self._conn(user)
        self._select(conn, folder)
        _typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        result: dict[int, set[str]] = {}
        for item in data:
            if not item:
                continue
            line = item if isinstance(item, bytes) else item[0]
            uid = re.search(rb"UID (\d+)", line)
            flags = re.search(rb"FLAGS \(([^)]*)\)", line)
            if uid:
                # \Recent belongs to whichever session saw the mail first: not a stored flag.
                found = set(flags.group(1).decode().split()) if flags else set()
                result[int(uid.group(1))] = found - {"\\Recent"}
        conn.close()
        return result

    def messages(self, folder: str = "INBOX", *, user: str | None = None) -> list[bytes]:
        """The raw source of every message in ``folder`` in UID order (read with PEEK)."""
        conn = self._conn(user)
        self._select(conn, folder)
        _typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        found = []
        for item in data:
            if isinstance(item, tuple):
                found.append((int(re.search(rb"UID (\d+)", item[0]).group(1)), item[1]))
        conn.close()
        return [raw for _uid, raw in sorted(found)]

    def set_flags(self, uid: int, flags, folder: str = "INBOX", *, user: str | None = None):
        conn = self._conn(user)
        self._select(conn, folder, readonly=False)
        conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(" + " ".join(flags) + ")")
        conn.close()

    def create_folder(self, name: str, *, user: str | None = None) -> None:
        typ, data = self._conn(user).create(_quote(name))
        if typ != "OK":
            raise RuntimeError(f"CREATE {name} failed: {data}")

    def delete_folder(self, name: str, *, user: str | None = None) -> None:
        typ, data = self._conn(user).delete(_quote(name))
        if typ != "OK":
            raise RuntimeError(f"DELETE {name} failed: {data}")

    def uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        _typ, data = self._conn(user).status(_quote(folder), "(UIDVALIDITY)")
        return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))

    def change_uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        """Give ``folder`` a new UIDVALIDITY (as after a server migration); returns it."""
        new = self.uidvalidity(folder, user=user) + 1000
        subprocess.run(
            [
                str(DOVEADM),
                "-c",
                str(self.config),
                "mailbox",
                "update",
                "-u",
                user or self.username,
                "--uid-validity",
                str(new),
                folder,
            ],
            check=True,
            capture_output=True,
            timeout=10,
        )
        return new

    def kick(self, user: str | None = None) -> None:
        """Disconnect every session of ``user`` (as a server restart would), the helper's too."""
        subprocess.run(
            [str(DOVEADM), "-c", str(self.config), "kick", user or self.username],
            check=True,
            capture_output=True,
            timeout=10,
        )
        conn = self._admin.pop(user or self.username, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _login(conn: imaplib.IMAP4, user: str, password: str) -> None:
    # SASL PLAIN rather than LOGIN: imaplib sends LOGIN's arguments as ASCII only.
    plain = f"\0{user}\0{password}".encode()
    conn.authenticate("PLAIN", lambda _challenge: plain)
