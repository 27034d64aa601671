"""Ingest benchmark: how many inbound messages per second Loket stores, and how fast it acks,
compared with the floor of the same database measured in the same run.

    python bench/ingest.py                  # both backends, each in its own subprocess
    python bench/ingest.py --backend pg     # one backend in this process

Per backend, on a throw-away database (PostgreSQL ``loket_bench_<pid>``, or SQLite in a temp dir):

1. floors, raw DB-API without Django, one OS process per client (1 and 4 clients):
   a single-row INSERT + commit, and the realistic ingest transaction (contact upsert,
   conversation find-or-create, message insert ON CONFLICT DO NOTHING, conversation update);
2. ``receive()`` in-process through ``journal.record`` (the path a webhook takes after
   verification), 1 and 4 threads;
3. the signed HTTP webhook against a real ``loket serve`` subprocess (uvicorn, the lean
   ``/hooks/`` ASGI route), 1 and 4 keep-alive clients, per-request ack latency;
4. a WhatsApp channel's webhook the same way: Meta-shaped text messages signed with
   X-Hub-Signature-256 (``ingest.whatsapp.<db>.msgs_per_s``, beside the API channel's figure);
5. a check that every 200 ack left exactly one stored message.

Every client sends new, distinct message ids over a pool of 1,000 contacts, warmed up first (one
message each), then 95% of messages go to a known contact (an open conversation) and 5% come
from a new contact (a new conversation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import _common as c

BACKENDS = ("pg", "sqlite")
CONTACTS = 1000
NEW_CONTACT_SHARE = 0.05
CLIENTS = 4
FLOOR_SECONDS = 3.0
RECEIVE_SECONDS = 5.0
RECEIVE_MAX = 20_000
HTTP_C1_SECONDS = 5.0
HTTP_C1_MAX = 1_500
HTTP_SECONDS = 20.0
HTTP_MAX = 3_000
TARGET_RATIO = 0.25  # of the 4-client realistic-transaction floor, PostgreSQL
TARGET_P99_MS = 50.0
ADMIN_EMAIL = "bench@example.com"
WORKSPACE = "bench"
TEXT = (
    "Hi, my order #48213 arrived yesterday but the charger is missing from the box. "
    "Can you send one, or should I return the whole thing?"
)


def pick_contact(rng, fresh: str) -> str:
    if rng.random() < NEW_CONTACT_SHARE:
        return f"new-{fresh}"
    return f"c-{rng.randrange(CONTACTS)}"


def message_body(phase: str, n: int, rng, *, warm: bool = False) -> bytes:
    contact = f"c-{(n - 1) % CONTACTS}" if warm else pick_contact(rng, f"{phase}-{n}")
    return json.dumps(
        {
            "id": f"{phase}-{n}",
            "contact": {"id": contact, "name": f"Customer {contact}"},
            "text": TEXT,
            "sent_at": dt.datetime.now(dt.UTC).isoformat(),
        },
        separators=(",", ":"),
    ).encode()


# --- the throw-away database -----------------------------------------------------------------
class Backend:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.var_dir = tmp / "var"
        self.secret_key = secrets.token_urlsafe(48)
        self.channel_prefix = f"loketbench{os.getpid()}"
        if name == "pg":
            self.db_name = f"loket_bench_{os.getpid()}"
            self.url = f"{c.PG_BASE_URL}/{self.db_name}"
        else:
            self.sqlite_path = self.var_dir / "loket.sqlite3"
            self.floor_path = tmp / "floor.sqlite3"

    @property
    def db_pids(self):
        """Lists the database server processes of this run (PostgreSQL), for CPU accounting."""
        if self.name != "pg":
            return None
        return lambda: c.pg_backend_pids(self.db_name)

    def meters(self, own: str, **pids) -> c.Meters:
        if self.db_pids:
            pids["db"] = self.db_pids
        return c.Meters(own, **pids)

    @property
    def label(self) -> str:
        return "PostgreSQL" if self.name == "pg" else "SQLite"

    def create(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.name == "pg":
            import psycopg
            from psycopg import sql

            with psycopg.connect(f"{c.PG_BASE_URL}/postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))

    def drop(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.name == "pg":
            import psycopg
            from psycopg import sql

            try:
                with psycopg.connect(f"{c.PG_BASE_URL}/postgres", autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(self.db_name)
                        )
                    )
            except psycopg.Error as exc:
                c.note(f"could not drop database {self.db_name}: {exc}")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every Loket process of this run (and of this one)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("LOKET_")
            and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="loket.settings",
            SECRET_KEY=self.secret_key,
            LOKET_VAR_DIR=str(self.var_dir),
            LOKET_INPROCESS_WORKERS="0",
            LOKET_LOG_LEVEL="WARNING",
            LOKET_CHANNEL_PREFIX=self.channel_prefix,
            PYTHONUNBUFFERED="1",
        )
        if self.name == "pg":
            # Production mode: PostgreSQL with the connection pool, realtime through Redis.
            env.update(DATABASE_URL=self.url, REDIS_URL=c.REDIS_URL)
        # SQLite: embedded mode (no DATABASE_URL), the database in LOKET_VAR_DIR, as `make run`.
        env.update(extra)
        return env


def loket(backend: Backend, *args: str) -> str:
    done = subprocess.run(
        [c.python(), "-m", "loket.cli", *args],
        env=backend.env(),
        cwd=backend.tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"loket {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


# --- floors: raw DB-API, no Django -------------------------------------------------------------
PG_FLOOR_DDL = """
CREATE SCHEMA bench_floor;
SET search_path = bench_floor;
CREATE TABLE single_row (
    id bigserial PRIMARY KEY, workspace_id bigint NOT NULL, payload text NOT NULL,
    created_at timestamptz NOT NULL);
CREATE SEQUENCE conversation_number;
CREATE TABLE contact (
    id bigserial PRIMARY KEY, workspace_id bigint NOT NULL, channel_id bigint NOT NULL,
    external_id varchar(255) NOT NULL, name varchar(200) NOT NULL DEFAULT '',
    email varchar(254) NOT NULL DEFAULT '', phone varchar(40) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    UNIQUE (channel_id, external_id));
CREATE INDEX contact_ws_email ON contact (workspace_id, email);
CREATE TABLE conversation (
    id bigserial PRIMARY KEY, workspace_id bigint NOT NULL, channel_id bigint NOT NULL,
    contact_id bigint NOT NULL REFERENCES contact (id), number bigint NOT NULL,
    status varchar(10) NOT NULL, subject varchar(255) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    last_message_at timestamptz NOT NULL, last_inbound_at timestamptz,
    waiting_since timestamptz, resolved_at timestamptz,
    UNIQUE (workspace_id, number));
CREATE INDEX conv_thread ON conversation (contact_id, channel_id, last_message_at DESC);
CREATE INDEX conv_ws_status ON conversation (workspace_id, status, last_message_at DESC, id DESC);
CREATE INDEX conv_ws_recent ON conversation (workspace_id, last_message_at DESC, id DESC);
CREATE TABLE message (
    id bigserial PRIMARY KEY, workspace_id bigint NOT NULL,
    conversation_id bigint NOT NULL REFERENCES conversation (id), channel_id bigint NOT NULL,
    direction varchar(3) NOT NULL, author_type varchar(10) NOT NULL,
    author_contact_id bigint REFERENCES contact (id), text text NOT NULL,
    external_id varchar(255), data jsonb NOT NULL DEFAULT '{}', sent_at timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (channel_id, external_id));
CREATE INDEX message_timeline ON message (conversation_id, created_at, id);
INSERT INTO contact (workspace_id, channel_id, external_id, name, created_at, updated_at)
    SELECT 1, 1, 'c-' || g, 'Customer c-' || g, now(), now() FROM generate_series(0, %s) g;
INSERT INTO conversation (workspace_id, channel_id, contact_id, number, status, created_at,
                          updated_at, last_message_at)
    SELECT 1, 1, id, nextval('conversation_number'), 'open', now(), now(), now() FROM contact;
ANALYZE;
"""

SQLITE_FLOOR_DDL = """
CREATE TABLE single_row (
    id INTEGER PRIMARY KEY, workspace_id bigint NOT NULL, payload text NOT NULL,
    created_at datetime NOT NULL);
CREATE TABLE contact (
    id INTEGER PRIMARY KEY, workspace_id bigint NOT NULL, channel_id bigint NOT NULL,
    external_id varchar(255) NOT NULL, name varchar(200) NOT NULL DEFAULT '',
    email varchar(254) NOT NULL DEFAULT '', phone varchar(40) NOT NULL DEFAULT '',
    created_at datetime NOT NULL, updated_at datetime NOT NULL,
    UNIQUE (channel_id, external_id));
CREATE INDEX contact_ws_email ON contact (workspace_id, email);
CREATE TABLE conversation (
    id INTEGER PRIMARY KEY, workspace_id bigint NOT NULL, channel_id bigint NOT NULL,
    contact_id bigint NOT NULL REFERENCES contact (id), number bigint NOT NULL,
    status varchar(10) NOT NULL, subject varchar(255) NOT NULL DEFAULT '',
    created_at datetime NOT NULL, updated_at datetime NOT NULL,
    last_message_at datetime NOT NULL, last_inbound_at datetime,
    waiting_since datetime, resolved_at datetime,
    UNIQUE (workspace_id, number));
CREATE INDEX conv_thread ON conversation (contact_id, channel_id, last_message_at DESC);
CREATE INDEX conv_ws_status ON conversation (workspace_id, status, last_message_at DESC, id DESC);
CREATE INDEX conv_ws_recent ON conversation (workspace_id, last_message_at DESC, id DESC);
CREATE TABLE message (
    id INTEGER PRIMARY KEY, workspace_id bigint NOT NULL,
    conversation_id bigint NOT NULL REFERENCES conversation (id), channel_id bigint NOT NULL,
    direction varchar(3) NOT NULL, author_type varchar(10) NOT NULL,
    author_contact_id bigint REFERENCES contact (id), text text NOT NULL,
    external_id varchar(255), data text NOT NULL DEFAULT '{}', sent_at datetime,
    created_at datetime NOT NULL,
    UNIQUE (channel_id, external_id));
CREATE INDEX message_timeline ON message (conversation_id, created_at, id);
"""

PG = {
    "insert": "INSERT INTO single_row (workspace_id, payload, created_at) VALUES (1, %s, %s)",
    "upsert_contact": (
        "WITH ins AS ("
        " INSERT INTO contact (workspace_id, channel_id, external_id, name, created_at,"
        " updated_at) VALUES (1, 1, %(ext)s, %(name)s, %(now)s, %(now)s)"
        " ON CONFLICT (channel_id, external_id) DO NOTHING RETURNING id)"
        " SELECT id FROM ins UNION ALL"
        " SELECT id FROM contact WHERE channel_id = 1 AND external_id = %(ext)s LIMIT 1"
    ),
    "find_conversation": (
        "SELECT id, status FROM conversation WHERE contact_id = %s AND channel_id = 1"
        " ORDER BY last_message_at DESC LIMIT 1 FOR UPDATE"
    ),
    "create_conversation": (
        "INSERT INTO conversation (workspace_id, channel_id, contact_id, number, status,"
        " created_at, updated_at, last_message_at)"
        " VALUES (1, 1, %s, nextval('conversation_number'), 'open', %s, %s, %s) RETURNING id"
    ),
    "insert_message": (
        "INSERT INTO message (workspace_id, conversation_id, channel_id, direction, author_type,"
        " author_contact_id, text, external_id, sent_at, created_at)"
        " VALUES (1, %s, 1, 'in', 'contact', %s, %s, %s, %s, %s)"
        " ON CONFLICT (channel_id, external_id) DO NOTHING RETURNING id"
    ),
    "update_conversation": (
        "UPDATE conversation SET last_message_at = %s, last_inbound_at = %s, updated_at = %s,"
        " waiting_since = COALESCE(waiting_since, %s) WHERE id = %s"
    ),
}

SQLITE = {
    "insert": PG["insert"].replace("%s", "?"),
    "find_contact": "SELECT id FROM contact WHERE channel_id = 1 AND external_id = ?",
    "create_contact": (
        "INSERT INTO contact (workspace_id, channel_id, external_id, name, created_at,"
        " updated_at) VALUES (1, 1, ?, ?, ?, ?)"
        " ON CONFLICT (channel_id, external_id) DO NOTHING RETURNING id"
    ),
    "find_conversation": (
        "SELECT id, status FROM conversation WHERE contact_id = ? AND channel_id = 1"
        " ORDER BY last_message_at DESC LIMIT 1"
    ),
    "create_conversation": (
        "INSERT INTO conversation (workspace_id, channel_id, contact_id, number, status,"
        " created_at, updated_at, last_message_at) VALUES (1, 1, ?,"
        " (SELECT COALESCE(MAX(number), 0) + 1 FROM conversation WHERE workspace_id = 1),"
        " 'open', ?, ?, ?) RETURNING id"
    ),
    "insert_message": PG["insert_message"].replace("%s", "?"),
    "update_conversation": PG["update_conversation"].replace("%s", "?"),
}

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-20000",
)


def _pg_connect(backend: Backend):
    import psycopg

    return psycopg.connect(backend.url, options="-c search_path=bench_floor")


def _sqlite_connect(backend: Backend):
    import sqlite3

    conn = sqlite3.connect(backend.floor_path, timeout=30, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    return conn


def prepare_floor(backend: Backend) -> None:
    if backend.name == "pg":
        import psycopg

        with psycopg.connect(backend.url, autocommit=True) as conn:
            # The seed count is a trusted int, not user input.
            conn.execute(PG_FLOOR_DDL.replace("%s", str(CONTACTS - 1)).encode())
        return
    conn = _sqlite_connect(backend)
    conn.executescript(SQLITE_FLOOR_DDL)
    now = dt.datetime.now(dt.UTC).isoformat()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO contact (workspace_id, channel_id, external_id, name, created_at, updated_at)"
        " VALUES (1, 1, ?, ?, ?, ?)",
        [(f"c-{i}", f"Customer c-{i}", now, now) for i in range(CONTACTS)],
    )
    conn.execute(
        "INSERT INTO conversation (workspace_id, channel_id, contact_id, number, status,"
        " created_at, updated_at, last_message_at)"
        " SELECT 1, 1, id, id, 'open', ?, ?, ? FROM contact",
        (now, now, now),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def insert_work(backend: Backend):
    payload = TEXT

    def work(index: int, seconds: float, gate):
        if backend.name == "pg":
            conn = _pg_connect(backend)
            cur = conn.cursor()

            def op(i: int) -> None:
                cur.execute(PG["insert"], (payload, dt.datetime.now(dt.UTC)))
                conn.commit()
        else:
            conn = _sqlite_connect(backend)

            def op(i: int) -> None:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(SQLITE["insert"], (payload, dt.datetime.now(dt.UTC).isoformat()))
                conn.execute("COMMIT")

        try:
            return c.timed_loop(op, seconds, gate)
        finally:
            conn.close()

    return work


def realistic_work(backend: Backend):
    import random

    def work(index: int, seconds: float, gate):
        rng = random.Random(index + 7)
        tag = f"f{os.getpid()}"  # message ids distinct per client process
        if backend.name == "pg":
            conn = _pg_connect(backend)
            cur = conn.cursor()

            def op(i: int) -> None:
                now = dt.datetime.now(dt.UTC)
                ext = pick_contact(rng, f"{tag}-{i}")
                cur.execute(
                    PG["upsert_contact"], {"ext": ext, "name": f"Customer {ext}", "now": now}
                )
                contact_id = cur.fetchone()[0]
                cur.execute(PG["find_conversation"], (contact_id,))
                row = cur.fetchone()
                if row is None or row[1] != "open":
                    cur.execute(PG["create_conversation"], (contact_id, now, now, now))
                    conversation_id = cur.fetchone()[0]
                else:
                    conversation_id = row[0]
                cur.execute(
                    PG["insert_message"],
                    (conversation_id, contact_id, TEXT, f"{tag}-{i}", now, now),
                )
                cur.fetchall()
                cur.execute(PG["update_conversation"], (now, now, now, now, conversation_id))
                conn.commit()
        else:
            conn = _sqlite_connect(backend)

            def op(i: int) -> None:
                now = dt.datetime.now(dt.UTC).isoformat()
                ext = pick_contact(rng, f"{tag}-{i}")
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(SQLITE["find_contact"], (ext,)).fetchone()
                if row is None:
                    row = conn.execute(
                        SQLITE["create_contact"], (ext, f"Customer {ext}", now, now)
                    ).fetchone()
                contact_id = row[0]
                row = conn.execute(SQLITE["find_conversation"], (contact_id,)).fetchone()
                if row is None or row[1] != "open":
                    row = conn.execute(
                        SQLITE["create_conversation"], (contact_id, now, now, now)
                    ).fetchone()
                conversation_id = row[0]
                conn.execute(
                    SQLITE["insert_message"],
                    (conversation_id, contact_id, TEXT, f"{tag}-{i}", now, now),
                ).fetchall()
                conn.execute(SQLITE["update_conversation"], (now, now, now, now, conversation_id))
                conn.execute("COMMIT")

        try:
            return c.timed_loop(op, seconds, gate)
        finally:
            conn.close()

    return work


def measure_floors(backend: Backend) -> dict[str, c.Run]:
    prepare_floor(backend)
    prefix = f"ingest.floor.{backend.name}"
    floors = {}
    for kind, work, per, unit in (
        ("insert_commit", insert_work(backend), "row", "rows"),
        ("realistic_tx", realistic_work(backend), "tx", "tx"),
    ):
        for clients in (1, CLIENTS):
            run = c.run_processes(work, clients, FLOOR_SECONDS, db_pids=backend.db_pids)
            floors[f"{kind}.c{clients}"] = run
            run.report(f"{prefix}.{kind}.c{clients}.{unit}_per_s", f"{unit}/s", per)
    return floors


# --- Loket in-process: receive() through the journal --------------------------------------------
def setup_django(backend: Backend, **extra_env: str) -> None:
    os.environ.clear()
    os.environ.update(backend.env(**extra_env))
    os.chdir(backend.tmp)
    import django

    django.setup()


def run_on_throwaway(
    name: str,
    scenario: str,
    measure: Callable[[Backend], bool],
    *,
    admin_email: str,
    workspace: str,
    env: dict[str, str] | None = None,
) -> bool:
    """``measure(backend)`` on a throw-away database of backend ``name`` (PostgreSQL
    ``loket_bench_<pid>`` or SQLite in a temp dir): migrated, with an owner of ``workspace``,
    Django set up in this process (with ``env`` added to its environment); dropped afterwards,
    whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-bench-{scenario}-{name}-"))
    backend = Backend(name, tmp)
    started = time.monotonic()
    c.note(f"{backend.label}: throw-away database, load average {c.load_average()}")
    try:
        backend.create()
        loket(backend, "migrate", "--noinput")
        loket(
            backend, "createadmin", "--email", admin_email, "--workspace", workspace,
            "--password", "bench-password-not-used",
        )  # fmt: skip
        setup_django(backend, **(env or {}))
        return measure(backend)
    except Exception as exc:
        c.verdict("check", False, f"{scenario}.{name}", f"benchmark error: {exc!r}")
        raise
    finally:
        from inbox import close_django

        close_django()
        backend.drop()
        c.note(f"{backend.label}: done in {time.monotonic() - started:.0f}s")


def create_receive_channel():
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel
    from loket.tenancy.models import Workspace

    workspace = Workspace.objects.get(slug=WORKSPACE)
    channel, _ = create_channel(
        workspace, get_connector("api"), name="bench receive", config={"outbound_url": ""}
    )
    return channel


def receive_factory(channel, phase: str, *, warm: bool = False):
    from django.db import connection

    from loket.inbox.services import journal

    meta = {"content_type": "application/json"}

    def setup(index: int):
        def op(n: int, rng) -> str:
            body = message_body(phase, n, rng, warm=warm)
            outcome = journal.record(channel, body, meta, content_type="application/json")
            return "ok" if outcome.status == "processed" else f"status_{outcome.status}"

        return op, connection.close

    return setup


def bench_receive(backend: Backend, channel) -> dict[str, c.Run]:
    prefix = f"ingest.receive.{backend.name}"
    warm = c.run_threads(
        CLIENTS, receive_factory(channel, "rw", warm=True), total=CONTACTS, seconds=300
    )
    expect_all_ok(warm, f"{prefix}.warmup")
    runs = {}
    for clients in (1, CLIENTS):
        run = c.run_threads(
            clients,
            receive_factory(channel, f"r{clients}"),
            total=RECEIVE_MAX,
            seconds=RECEIVE_SECONDS,
            seed=clients,
            meters=backend.meters("loket"),
        )
        runs[f"c{clients}"] = run
        name = f"{prefix}.msgs_per_s" if clients == CLIENTS else f"{prefix}.c1.msgs_per_s"
        run.report(name, "msg/s", "msg")
        expect_all_ok(run, name)
    runs["warmup"] = warm
    return runs


def expect_all_ok(run: c.Run, name: str) -> None:
    if run.failed:
        c.note(f"{name}: {run.failed} operations failed: {dict(run.outcomes)}")


# --- Loket over HTTP: the signed webhook ---------------------------------------------------------
def serve_processes(backend: Backend) -> int:
    """Production shape on PostgreSQL: N `loket serve` processes behind a load balancer, one per
    core (Redis carries realtime between them); the clients are spread over them round-robin, as
    a load balancer would. Embedded SQLite serves from one process."""
    if backend.name != "pg":
        return 1
    return int(os.environ.get("LOKET_BENCH_SERVE_PROCESSES", os.cpu_count() or 1))


Servers = list[tuple[int, subprocess.Popen]]  # (port, process)


def start_servers(backend: Backend) -> Servers:
    count = serve_processes(backend)
    c.note(f"{count} `loket serve` process(es), clients spread round-robin")
    ports = [c.free_port() for _ in range(count)]
    servers = []
    for index, port in enumerate(ports):
        log = open(backend.tmp / f"serve-{index}.log", "wb")  # noqa: SIM115 - as long as the server
        process = subprocess.Popen(
            [c.python(), "-m", "loket.cli", "serve", "--port", str(port)],
            # Meta is unreachable here: the WhatsApp channel's template sync fails at once.
            env=backend.env(
                LOKET_PUBLIC_URL=f"http://127.0.0.1:{ports[0]}",
                LOKET_META_GRAPH_URL="http://127.0.0.1:9",
            ),
            cwd=backend.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append((port, process))
    return servers


def stop_servers(servers: Servers) -> None:
    for _, server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    for _, server in servers:
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def server_log_tail(backend: Backend, lines: int = 30) -> str:
    tails = []
    for log in sorted(backend.tmp.glob("serve-*.log")):
        text = log.read_text(errors="replace")
        tails.append(f"--- {log.name}\n" + "\n".join(text.splitlines()[-lines:]))
    return "\n".join(tails)


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"loket serve exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"loket serve did not answer on port {port} within {timeout:.0f}s")


def create_http_channel(port: int, token: str) -> dict:
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/channels",
        json={"kind": "api", "name": "bench http", "config": {"outbound_url": ""}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )
    if response.status_code != 201:
        raise RuntimeError(f"creating the channel failed: {response.status_code} {response.text}")
    return response.json()


def api_request(secret: str, phase: str, *, warm: bool = False):
    """An API-channel delivery: the JSON body signed in X-Loket-Signature."""
    key = secret.encode()

    def make(n: int, rng) -> tuple[bytes, dict[str, str]]:
        body = message_body(phase, n, rng, warm=warm)
        ts = str(int(time.time()))
        digest = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {
            "Content-Type": "application/json",
            "X-Loket-Signature": f"t={ts},v1={digest}",
        }

    return make


def whatsapp_body(phone_number_id: str, phase: str, n: int, rng, *, warm: bool = False) -> bytes:
    """A WhatsApp Cloud API webhook with one text message, shaped like Meta's."""
    contact = f"c-{(n - 1) % CONTACTS}" if warm else pick_contact(rng, f"{phase}-{n}")
    wa_id = "316" + hashlib.sha256(contact.encode()).hexdigest()[:8].translate(
        str.maketrans("abcdef", "123456")
    )
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "31201234567",
                             "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": f"Customer {contact}"}, "wa_id": wa_id}],
                "messages": [{"from": wa_id, "id": f"wamid.{phase}-{n}",
                              "timestamp": str(int(time.time())), "type": "text",
                              "text": {"body": TEXT}}],
            }}]}],
        },
        separators=(",", ":"),
    ).encode()  # fmt: skip


def whatsapp_request(app_secret: str, phone_number_id: str, phase: str, *, warm: bool = False):
    """A WhatsApp delivery signed as Meta signs it (X-Hub-Signature-256 over the raw body)."""
    key = app_secret.encode()

    def make(n: int, rng) -> tuple[bytes, dict[str, str]]:
        body = whatsapp_body(phone_number_id, phase, n, rng, warm=warm)
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    return make


def http_factory(ports: list[int], path: str, make_request):
    def setup(index: int):
        port = ports[index % len(ports)]  # round-robin, like a load balancer
        conn = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)]

        def op(n: int, rng) -> str:
            body, headers = make_request(n, rng)
            try:
                conn[0].request("POST", path, body=body, headers=headers)
                response = conn[0].getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn[0].close()
                conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                return f"error_{type(exc).__name__}"
            return "ok" if response.status == 200 else f"http_{response.status}"

        return op, lambda: conn[0].close()

    return setup


def bench_http(backend: Backend, servers: Servers, channel: dict):
    prefix = f"ingest.http.{backend.name}"
    ports = [port for port, _ in servers]
    path = urlsplit(channel["webhook_url"]).path
    secret = channel["secret"]

    def server_pids() -> list[int]:
        return [process.pid for _, process in servers]

    warm = c.run_threads(
        CLIENTS,
        http_factory(ports, path, api_request(secret, "hw", warm=True)),
        total=CONTACTS,
        seconds=300,
    )
    expect_all_ok(warm, f"{prefix}.warmup")
    runs = {"warmup": warm}
    c1 = c.run_threads(
        1,
        http_factory(ports, path, api_request(secret, "h1")),
        total=HTTP_C1_MAX,
        seconds=HTTP_C1_SECONDS,
        meters=backend.meters("client", server=server_pids),
    )
    runs["c1"] = c1
    c1.report(f"{prefix}.c1.msgs_per_s", "msg/s", "msg")
    expect_all_ok(c1, f"{prefix}.c1")
    c4 = c.run_threads(
        CLIENTS,
        http_factory(ports, path, api_request(secret, "h4")),
        total=HTTP_MAX,
        seconds=HTTP_SECONDS,
        seed=CLIENTS,
        meters=backend.meters("client", server=server_pids),
    )
    runs[f"c{CLIENTS}"] = c4
    c4.report(f"{prefix}.msgs_per_s", "msg/s", "msg")
    c.figure(f"{prefix}.requests", sum(c4.outcomes.values()), "req")
    c.figure(f"{prefix}.errors", c4.failed, "req")
    expect_all_ok(c4, prefix)
    return runs


WHATSAPP_PHONE_NUMBER_ID = "106540352242922"


def create_whatsapp_channel(port: int, token: str) -> tuple[dict, str]:
    import httpx

    app_secret = secrets.token_hex(16)
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/channels",
        json={
            "kind": "whatsapp",
            "name": "bench whatsapp",
            "config": {
                "phone_number_id": WHATSAPP_PHONE_NUMBER_ID,
                "business_account_id": "102290129340398",
                "access_token": "EAAbench" + secrets.token_hex(16),
                "app_secret": app_secret,
                "verify_token": secrets.token_hex(8),
            },
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=60.0,
    )
    if response.status_code != 201:
        raise RuntimeError(f"creating the channel failed: {response.status_code} {response.text}")
    return response.json(), app_secret


def bench_whatsapp(backend: Backend, servers: Servers, channel: dict, app_secret: str):
    """WhatsApp text messages through the real webhook endpoint, signature checked, 4 clients."""
    prefix = f"ingest.whatsapp.{backend.name}"
    ports = [port for port, _ in servers]
    path = urlsplit(channel["webhook_url"]).path

    def request(phase: str, *, warm: bool = False):
        return whatsapp_request(app_secret, WHATSAPP_PHONE_NUMBER_ID, phase, warm=warm)

    warm = c.run_threads(
        CLIENTS, http_factory(ports, path, request("ww", warm=True)), total=CONTACTS, seconds=300
    )
    expect_all_ok(warm, f"{prefix}.warmup")
    run = c.run_threads(
        CLIENTS,
        http_factory(ports, path, request("w4")),
        total=HTTP_MAX,
        seconds=HTTP_SECONDS,
        seed=CLIENTS + 1,
        meters=backend.meters("client", server=lambda: [p.pid for _, p in servers]),
    )
    run.report(f"{prefix}.msgs_per_s", "msg/s", "msg")
    c.figure(f"{prefix}.errors", run.failed, "req")
    expect_all_ok(run, prefix)
    return {"warmup": warm, f"c{CLIENTS}": run}


def stored_messages(channel_id: int) -> tuple[int, int]:
    from loket.inbox.models import InboundEvent, Message

    return (
        Message.objects.filter(channel_id=channel_id).count(),
        InboundEvent.objects.filter(channel_id=channel_id, status="processed").count(),
    )


# --- one backend ---------------------------------------------------------------------------------
def run_backend(name: str) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-bench-{name}-"))
    backend = Backend(name, tmp)
    servers: Servers = []
    ok = True
    started = time.monotonic()
    c.note(f"{backend.label}: throw-away database, load average {c.load_average()}")
    try:
        backend.create()
        loket(backend, "migrate", "--noinput")
        password = secrets.token_urlsafe(24)
        loket(
            backend, "createadmin", "--email", ADMIN_EMAIL, "--workspace", WORKSPACE,
            f"--password={password}",  # one "=" so a password starting with "-" is not an option
        )  # fmt: skip

        floors = measure_floors(backend)  # forks clients: before Django and its threads exist

        setup_django(backend)
        receive_channel = create_receive_channel()
        receive_runs = bench_receive(backend, receive_channel)

        token = loket(backend, "token", "create", "--workspace", WORKSPACE, "--email", ADMIN_EMAIL)
        servers = start_servers(backend)
        try:
            for port, process in servers:
                wait_ready(port, process)
        except Exception:
            print(server_log_tail(backend), file=sys.stderr)
            raise
        channel = create_http_channel(servers[0][0], token.strip())
        http_runs = bench_http(backend, servers, channel)
        whatsapp, app_secret = create_whatsapp_channel(servers[0][0], token.strip())
        whatsapp_runs = bench_whatsapp(backend, servers, whatsapp, app_secret)
        stop_servers(servers)
        servers = []

        # Ratios: each Loket figure over the floor with the same number of clients.
        db = backend.name
        for kind, runs in (("receive", receive_runs), ("http", http_runs)):
            for clients in (1, CLIENTS):
                suffix = "" if clients == CLIENTS else f".c{clients}"
                realistic = floors[f"realistic_tx.c{clients}"].rate
                insert = floors[f"insert_commit.c{clients}"].rate
                rate = runs[f"c{clients}"].rate
                c.figure(
                    f"ingest.{kind}.{db}{suffix}.ratio_to_realistic_floor", rate / realistic, "x"
                )
                c.figure(f"ingest.{kind}.{db}{suffix}.ratio_to_insert_floor", rate / insert, "x")

        # What the CPU time per message allows: one `loket serve` process (one core at most,
        # the GIL), and the whole machine (every core busy with server, database and client).
        c4 = http_runs[f"c{CLIENTS}"]
        ops = sum(c4.outcomes.values())
        if ops and c4.cpu.get("server"):
            server_ms = c.per_op_ms(c4.cpu["server"], ops)
            total_ms = c.per_op_ms(sum(c4.cpu.values()), ops)
            c.figure(f"ingest.http.{db}.one_process_bound_msgs_per_s", 1000 / server_ms, "msg/s")
            c.figure(
                f"ingest.http.{db}.machine_bound_msgs_per_s",
                (os.cpu_count() or 1) * 1000 / total_ms,
                "msg/s",
            )
        if db == "pg":
            c.figure(
                "ingest.http.pg.target_msgs_per_s",
                TARGET_RATIO * floors[f"realistic_tx.c{CLIENTS}"].rate,
                "msg/s",
            )

        # WhatsApp beside the API channel's webhook (the foundation's ingest figure).
        api_rate = http_runs[f"c{CLIENTS}"].rate
        whatsapp_rate = whatsapp_runs[f"c{CLIENTS}"].rate
        c.figure(f"ingest.whatsapp.{db}.ratio_to_api_webhook", whatsapp_rate / api_rate, "x")
        c.figure(
            f"ingest.whatsapp.{db}.ratio_to_realistic_floor",
            whatsapp_rate / floors[f"realistic_tx.c{CLIENTS}"].rate,
            "x",
        )
        acked = sum(run.ok for run in whatsapp_runs.values())
        stored, journaled = stored_messages(whatsapp["id"])
        ok &= c.verdict(
            "check",
            stored == acked == journaled,
            f"ingest.whatsapp.{db}.stored_equals_acked",
            f"acked {acked} stored {stored} journaled {journaled}",
        )

        # Every 200 is a stored message, and nothing else was stored.
        acked = sum(run.ok for run in http_runs.values())
        stored, journaled = stored_messages(channel["id"])
        c.figure(f"ingest.http.{db}.acked", acked, "msg")
        c.figure(f"ingest.http.{db}.stored", stored, "msg")
        ok &= c.verdict(
            "check",
            stored == acked == journaled,
            f"ingest.http.{db}.stored_equals_acked",
            f"acked {acked} stored {stored} journaled {journaled}",
        )
        done = sum(run.ok for run in receive_runs.values())
        stored, journaled = stored_messages(receive_channel.pk)
        ok &= c.verdict(
            "check",
            stored == done == journaled,
            f"ingest.receive.{db}.stored_equals_processed",
            f"processed {done} stored {stored} journaled {journaled}",
        )
        ok &= c.verdict(
            "check",
            c4.failed == 0 and http_runs["c1"].failed == 0,
            f"ingest.http.{db}.all_acked",
            f"non-200 or failed requests {c4.failed + http_runs['c1'].failed}",
        )

        if db == "pg":
            floor = floors[f"realistic_tx.c{CLIENTS}"].rate
            ratio = c4.rate / floor
            passed = ratio >= TARGET_RATIO and c4.p99_ms < TARGET_P99_MS
            ok &= c.verdict(
                "target",
                passed,
                "ingest.http.pg",
                f"{c4.rate:.0f} msg/s = {ratio:.2f} x realistic floor {floor:.0f} tx/s "
                f"(need >= {TARGET_RATIO:.2f}), ack p99 {c4.p99_ms:.1f} ms "
                f"(need < {TARGET_P99_MS:.0f} ms), {CLIENTS} clients",
            )
    except Exception as exc:
        ok = c.verdict("check", False, f"ingest.{name}", f"benchmark error: {exc!r}")
        raise
    finally:
        if servers:
            stop_servers(servers)
        if "django" in sys.modules:
            try:
                from django.db import connections

                for conn in connections.all(initialized_only=True):
                    conn.close()
                    if hasattr(conn, "close_pool"):
                        conn.close_pool()
            except Exception as exc:
                c.note(f"closing database connections failed: {exc!r}")
        backend.drop()
        c.note(
            f"{backend.label}: done in {time.monotonic() - started:.0f}s, "
            f"load average {c.load_average()}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    return c.main_per_backend(__file__, __doc__, BACKENDS, run_backend, argv)


if __name__ == "__main__":
    sys.exit(main())
