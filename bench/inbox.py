"""Inbox and search benchmark: the agent's main pages over a large, generated workspace.

    python bench/inbox.py                          # both backends, each in its own subprocess
    python bench/inbox.py --backend pg             # one backend in this process
    python bench/inbox.py --backend pg --scale 0.01   # 10,000 conversations, for development
    python bench/inbox.py --backend pg --keep --generate-only   # generate once, keep it ...
    python bench/inbox.py --backend pg --reuse loket_bench_<pid>  # ... measure it again and again

Per backend, on a throw-away database (PostgreSQL ``loket_bench_<pid>``, or SQLite in a temp
dir), after ``loket migrate`` and ``loket createadmin``:

1. generate one workspace with 1,000,000 conversations and ~5,000,000 messages at scale 1
   (20 agents, 5 teams, 6 channels, 30 labels, ~600,000 contacts; statuses mostly resolved with
   a few thousand open; English and Dutch text drawn from word lists with a skewed frequency,
   plus order numbers, so full-text search has frequent and rare words), directly in SQL with
   the secondary indexes dropped and rebuilt afterwards (PostgreSQL: ``generate_series`` in
   parallel sessions; SQLite: recursive CTEs in one transaction);
2. measure, through Django's test ``Client`` in-process against the real URLs (a signed-in
   owner), p50/p99 over repeated requests of: the first and a deep page of the inbox views
   All open, Mine, Unassigned and one team, the view counts, and two-word searches (frequent,
   mixed and rare words);
3. measure the queries under those pages directly (the same filters on ``Conversation``, newest
   first, LIMIT 50), and ``EXPLAIN ANALYZE`` any that misses its target.

Targets (PostgreSQL): inbox page p99 under 50 ms, search p99 under 150 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c
from ingest import Backend, loket, setup_django

BACKENDS = ("pg", "sqlite")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ADMIN_EMAIL = "bench@example.com"
WORKSPACE = "bench"
CONVERSATIONS = 1_000_000  # at scale 1; messages are ~5 per conversation
CONTACT_SHARE = 0.6  # contacts per conversation: some people write more than once
TEXT_POOL = 200_000  # distinct message texts at scale 1 (messages draw from them)
AGENTS = 20
TEAMS = ("Support", "Sales", "Billing", "Returns", "Klantenservice")
CHANNELS = ("Email", "WhatsApp NL", "WhatsApp BE", "Live chat", "Messenger", "Instagram")
LABELS = _words(
    "vip urgent refund complaint invoice shipping damaged warranty feedback b2b newsletter "
    "bug feature-request billing returns exchange lost-parcel cancellation address-change "
    "payment-failed discount gift-card loyalty repair spare-parts manual privacy gdpr "
    "escalated follow-up"
)
PAGE = 50  # conversations per inbox page, as the list partial loads them
DEEP_ROW = 5_000  # a deep page starts this far down a view (or at 90% of a shorter one)
REQUESTS = 200  # timed requests per measured page
WARMUP = 10
TARGET_INBOX_P99_MS = 50.0
TARGET_SEARCH_P99_MS = 150.0

# Customer-service vocabulary, most frequent first (picked with a skewed distribution).
EN_WORDS = _words("""
the i my you to a and is it order for of not have can this please with on your was be thanks
hi but we that received package delivery refund still when are help what do me would like an
at no if will there so get item return from all know just payment account back any time
invoice number been today could yet week days send again about need email tracking did how
problem wrong size want change address after one new get card charged twice shipping cancel
please got they has by store product broken damaged arrived missing box working sorry hello
update status should also why long wait waiting customer service phone call reply answer soon
morning evening month ago yesterday tomorrow link website app login password reset code
discount voucher gift coupon price paid money bank transfer credit receipt copy pdf colour
color black white blue red green large small medium replacement exchange label printer courier
parcel postnl dhl ups warehouse stock available order-status subscription renew monthly yearly
plan upgrade downgrade cancelled confirmation confirm screenshot photo attached error message
screen charger cable battery screen-protector headphones speaker laptop tablet manual warranty
repair technician appointment refundable policy days-left dispute chargeback complaint manager
supervisor urgent asap disappointed happy great thank-you excellent quick fast slow terrible
lovely appreciate understand explain instead unfortunately however actually already
""")
NL_WORDS = _words("""
de ik het een mijn is en van niet je in dat op te voor met heb bestelling u nog wel maar
graag zijn er al dank pakket levering hallo hoi goedemorgen wanneer kan wat hoe ontvangen
bedankt groeten retour terugbetaling factuur betaling geld rekening nummer vandaag gisteren
morgen week dagen weken verzonden bezorgd bezorging verzending adres wijzigen annuleren kapot
beschadigd ontbreekt doos werkt product artikel maat kleur zwart wit blauw rood groot klein
vragen vraag antwoord reactie telefoon bellen mail email klantenservice medewerker wachten
lang nog-steeds alweer opnieuw probleem fout verkeerd omruilen ruilen garantie reparatie
monteur afspraak korting kortingscode cadeaubon tegoedbon prijs betaald overboeking bank
bevestiging bestelnummer trackcode volgen postnl dhl pakketpunt afhalen magazijn voorraad
beschikbaar abonnement opzeggen maandelijks jaarlijks inloggen wachtwoord account app website
link foto bijlage schermafbeelding foutmelding scherm oplader kabel batterij koptelefoon
laptop handleiding klacht teleurgesteld blij tevreden snel langzaam vriendelijk helaas
eigenlijk echter begrijp uitleggen alsjeblieft alstublieft graag-gedaan fijne dag
""")
FIRST_NAMES = _words("""
Jan Piet Kees Anna Emma Sophie Lucas Daan Sem Noah Liam Julia Mila Tess Sara Eva Lotte Fleur
Noor Lisa Thomas Ruben Bram Lars Jesse Tim Max Finn Sven Femke Iris Anouk Sanne Laura Kim
John Mary James Linda Michael Sarah David Emily Daniel Olivia Oliver Charlotte Harry Amelia
George Isla Jack Grace Henry Ella William Chloe Sophia Ava Mia Ethan Mason Logan
""")
LAST_NAMES = _words("""
Jansen de-Vries van-den-Berg Bakker Visser Smit Meijer de-Boer Mulder de-Groot Bos Vos
Peters Hendriks van-Leeuwen Dekker Brouwer de-Wit Dijkstra Smits de-Graaf van-der-Meer Kok
Jacobs de-Haan Vermeulen van-den-Heuvel van-der-Veen van-den-Broek Smith Johnson Williams
Brown Jones Miller Davis Wilson Taylor Clark Walker Wright Robinson Thompson White Hughes
Edwards Green Hall Wood Harris Lewis Martin Jackson
""")
DOMAINS = ("gmail.com", "outlook.com", "hotmail.nl", "ziggo.nl", "kpnmail.nl", "icloud.com")

# Two-word searches, from frequent to rare (the GIN + ORDER BY planner trap lives at both ends).
SEARCHES = {
    "frequent": ["order refund", "bestelling levering", "package delivery", "dank pakket"],
    "mixed": ["charger missing", "factuur kapot", "refund voucher", "garantie oplader"],
    "rare": ["chargeback screenshot", "monteur schermafbeelding", "downgrade supervisor",
             "kortingscode foutmelding"],
}  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    conversations: int
    contacts: int
    texts: int

    @classmethod
    def at(cls, scale: float) -> Sizes:
        conversations = max(1_000, int(CONVERSATIONS * scale))
        return cls(
            conversations=conversations,
            contacts=max(500, int(conversations * CONTACT_SHARE)),
            texts=max(2_000, int(TEXT_POOL * scale)) // 2 * 2,  # even: half English, half Dutch
        )


@dataclass(frozen=True)
class Workspace:
    """The rows made through Django before the bulk load (ids the generator refers to)."""

    workspace_id: int
    owner_user_id: int
    members: list[int]  # the owner first, then the agents
    teams: list[int]
    channels: list[int]
    labels: list[int]


def create_workspace_rows() -> Workspace:
    from loket.connectors.registry import get_connector
    from loket.inbox.models import Label
    from loket.inbox.services.channels import create_channel
    from loket.tenancy.models import Membership, Role, User
    from loket.tenancy.models import Workspace as WorkspaceModel
    from loket.tenancy.services import add_member, create_team

    workspace = WorkspaceModel.objects.get(slug=WORKSPACE)
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER)
    agents = [
        add_member(
            workspace,
            User.objects.create_user(
                f"agent{i}@example.com", None, name=f"{FIRST_NAMES[i]} {LAST_NAMES[i]}"
            ),
        )
        for i in range(AGENTS)
    ]
    members = [owner, *agents]
    teams = [create_team(workspace, name, members[i :: len(TEAMS)]) for i, name in enumerate(TEAMS)]
    channels = [
        create_channel(workspace, get_connector("api"), name=name, config={"outbound_url": ""})[0]
        for name in CHANNELS
    ]
    labels = [Label.objects.create(workspace=workspace, name=name) for name in LABELS]
    return Workspace(
        workspace_id=workspace.pk,
        owner_user_id=owner.user_id,
        members=[m.pk for m in members],
        teams=[t.pk for t in teams],
        channels=[ch.pk for ch in channels],
        labels=[label.pk for label in labels],
    )


def load_workspace_rows() -> Workspace:
    """The same ids from a database generated earlier (``--keep``), for ``--reuse``."""
    from loket.inbox.models import Channel, Label
    from loket.tenancy.models import Membership, Role, Team
    from loket.tenancy.models import Workspace as WorkspaceModel

    workspace = WorkspaceModel.objects.get(slug=WORKSPACE)
    owner = Membership.objects.get(workspace=workspace, role=Role.OWNER)
    agents = Membership.objects.filter(workspace=workspace).exclude(pk=owner.pk).order_by("pk")

    def ids(model) -> list[int]:
        return list(
            model.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)
        )

    return Workspace(
        workspace_id=workspace.pk,
        owner_user_id=owner.user_id,
        members=[owner.pk, *agents.values_list("pk", flat=True)],
        teams=ids(Team),
        channels=ids(Channel),
        labels=ids(Label),
    )


# --- generation: PostgreSQL ------------------------------------------------------------------
# Ids are given explicitly so that they grow with time whichever session inserts them (message
# id = conversation id * 10 + position), as they do in a real inbox; sequences are moved past
# them at the end. Texts come from a pool of distinct texts; "(g * 2654435761) % n" spreads a
# row number over the pool.
PG_TEXTS = """
INSERT INTO bench_text
SELECT g, initcap(w[1]) || ' ' || array_to_string(w[2:], ' ') || '.'
FROM (
    SELECT g, ARRAY(
        SELECT CASE
            WHEN random() < 0.04 THEN '#' || (100000 + floor(random() * 900000)::int)
            WHEN g % 2 = 0 THEN (%(en)s::text[])[1 + floor(%(en_n)s * power(random(), 2.2))::int]
            ELSE (%(nl)s::text[])[1 + floor(%(nl_n)s * power(random(), 2.2))::int]
        END
        FROM generate_series(1, 4 + (g * 7) % 23)
    ) AS w
    FROM generate_series(1, %(texts)s::int) AS g
) AS s;
"""

PG_CONTACTS = """
INSERT INTO inbox_contact (id, workspace_id, name, email, phone, locale, attributes, created_at,
                           updated_at, load_remote_images)
SELECT g, %(ws)s, f || ' ' || replace(l, '-', ' '),
       CASE WHEN g % 5 = 0 THEN ''
            ELSE lower(f) || '.' || lower(replace(l, '-', '')) || g || '@'
                 || (%(domains)s::text[])[1 + g % 6]
       END,
       CASE WHEN g % 3 = 0 THEN '' ELSE '+316' || lpad(((g * 7919) % 100000000)::text, 8, '0') END,
       CASE WHEN g % 2 = 0 THEN 'en' ELSE 'nl' END, '{}',
       now() - (%(n)s - g) * interval '1 day' * 730 / %(n)s, now(), false
FROM (
    SELECT g, (%(first)s::text[])[1 + (g * 31) % %(first_n)s] AS f,
           (%(last)s::text[])[1 + (g * 17) % %(last_n)s] AS l
    FROM generate_series(1, %(n)s::bigint) AS g
) AS s;
"""

# Status by age: the newest 3% hold most open, pending and snoozed conversations; a few old
# ones were never closed.
PG_CONVERSATIONS = """
INSERT INTO inbox_conversation (
    id, workspace_id, channel_id, contact_id, number, subject, status, priority, assignee_id,
    team_id, language, custom_attributes, snoozed_until, created_at, updated_at,
    last_message_at, last_inbound_at, last_outbound_at, waiting_since, first_response_at,
    resolved_at, merged_into_id, sla_clock)
SELECT g, %(ws)s, (%(channels)s::bigint[])[1 + (g * 2654435761 + 1) % %(channels_n)s],
       1 + (g * 7919) % %(contacts)s, g,
       CASE WHEN (g * 2654435761 + 1) % %(channels_n)s = 0
            THEN 'Question about order #' || (100000 + g % 900000)
            ELSE '' END,
       status, CASE WHEN r2 < 0.03 THEN 3 WHEN r2 < 0.08 THEN 2 ELSE 0 END,
       CASE WHEN r3 < (CASE WHEN status IN ('open', 'pending') THEN 0.15 ELSE 0.03 END) THEN NULL
            ELSE (%(members)s::bigint[])[1 + (g * 2654435761 + 2) % %(members_n)s] END,
       CASE WHEN r4 < 0.2 THEN NULL
            ELSE (%(teams)s::bigint[])[1 + (g * 2654435761 + 3) % %(teams_n)s] END,
       CASE WHEN g % 2 = 0 THEN 'en' ELSE 'nl' END, '{}',
       CASE WHEN status = 'snoozed' THEN now() + interval '2 days' END,
       at - interval '3 hours', at, at, at - interval '20 minutes', at - interval '1 hour',
       CASE WHEN status IN ('open', 'pending') THEN at END, at - interval '2 hours',
       CASE WHEN status IN ('resolved', 'closed') THEN at END, NULL, '{}'
FROM (
    SELECT g, r2, r3, r4,
           now() - (%(n)s - g) * interval '1 day' * 730 / %(n)s - r2 * interval '1 hour' AS at,
           CASE WHEN g > %(n)s * 0.97 THEN
                CASE WHEN r < 0.17 THEN 'open' WHEN r < 0.203 THEN 'pending'
                     WHEN r < 0.22 THEN 'snoozed' ELSE 'resolved' END
                ELSE CASE WHEN r < 0.0005 THEN 'open' WHEN r < 0.02 THEN 'closed'
                          ELSE 'resolved' END
           END AS status
    FROM (SELECT g, random() AS r, random() AS r2, random() AS r3, random() AS r4
          FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g) AS r
) AS s;
"""

PG_LABELS = """
INSERT INTO inbox_conversation_labels (conversation_id, label_id)
SELECT g, (%(labels)s::bigint[])[1 + g % %(labels_n)s]
FROM generate_series(1, %(n)s::bigint) AS g WHERE g % 3 = 0
UNION ALL
SELECT g, (%(labels)s::bigint[])[1 + (g / 7 + 1) % %(labels_n)s]
FROM generate_series(1, %(n)s::bigint) AS g
WHERE g % 7 = 0 AND (g / 7 + 1) % %(labels_n)s <> g % %(labels_n)s;
"""

# 1 to 9 messages per conversation (5 on average): the customer first, then replies, with an
# internal note or an activity line now and then. English conversations draw English texts.
PG_MESSAGES = """
INSERT INTO inbox_message (
    id, workspace_id, conversation_id, channel_id, direction, kind, author_type,
    author_member_id, author_contact_id, text, html, external_id, status, error, send_attempts,
    data, sent_at, created_at, status_changed_at)
SELECT v.id * 10 + i, v.workspace_id, v.id, v.channel_id,
       CASE WHEN kind = 'message' AND i % 2 = 1 THEN 'in' ELSE 'out' END, kind,
       CASE WHEN kind = 'message' AND i % 2 = 1 THEN 'contact' ELSE 'member' END,
       CASE WHEN kind = 'message' AND i % 2 = 1 THEN NULL ELSE v.assignee_id END,
       CASE WHEN kind = 'message' AND i % 2 = 1 THEN v.contact_id END,
       CASE WHEN kind = 'activity' THEN 'status' ELSE t.body END, '',
       CASE WHEN kind = 'message' AND i % 2 = 1 THEN 'bench-' || (v.id * 10 + i) END,
       CASE WHEN kind = 'message' AND i % 2 = 0 THEN 'delivered' ELSE '' END, '', 0, '{}', NULL,
       v.last_message_at - (k - i) * interval '17 minutes', NULL
FROM inbox_conversation v
CROSS JOIN LATERAL (SELECT 1 + (v.id * 31) % 9 AS k) AS n
CROSS JOIN LATERAL generate_series(1, n.k) AS i
CROSS JOIN LATERAL (
    SELECT CASE WHEN i > 1 AND (v.id + i) % 19 = 0 THEN 'note'
                WHEN i > 1 AND (v.id + i) % 23 = 0 THEN 'activity'
                ELSE 'message' END AS kind
) AS m
JOIN bench_text t ON t.id = 2 * (((v.id * 10 + i) * 2654435761) % %(half)s) + 1 + v.id % 2
WHERE v.id BETWEEN %(lo)s AND %(hi)s;
"""


def _pg_secondary_indexes(cur, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes a bulk load would maintain row by row: all but primary
    keys and those behind a constraint."""
    cur.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)
        """,
        (list(tables),),
    )
    return cur.fetchall()


def _parallel(jobs: list, workers: int) -> None:
    """Run callables on ``workers`` threads (each job opens its own connection)."""
    queue = list(jobs)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                job = queue.pop(0)
            try:
                job()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def generate_pg(backend: Backend, sizes: Sizes, ws: Workspace) -> None:
    import psycopg

    def connect():
        conn = psycopg.connect(backend.url, autocommit=True)
        # A throw-away database: no foreign-key triggers during the load, no waiting for fsync.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        return conn

    tables = ("inbox_message", "inbox_conversation", "inbox_contact", "inbox_conversation_labels")
    workers = max(2, os.cpu_count() or 2)
    n = sizes.conversations
    common = {
        "ws": ws.workspace_id,
        "n": n,
        "contacts": sizes.contacts,
        "channels": ws.channels,
        "channels_n": len(ws.channels),
        "members": ws.members,
        "members_n": len(ws.members),
        "teams": ws.teams,
        "teams_n": len(ws.teams),
        "labels": ws.labels,
        "labels_n": len(ws.labels),
    }
    with connect() as conn:
        indexes = _pg_secondary_indexes(conn.cursor(), tables)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')  # names from pg_indexes
        with generating("texts"):
            conn.execute("CREATE UNLOGGED TABLE bench_text (id integer PRIMARY KEY, body text)")
            conn.execute(
                _pct(PG_TEXTS),
                {"en": list(EN_WORDS), "en_n": len(EN_WORDS), "nl": list(NL_WORDS),
                 "nl_n": len(NL_WORDS), "texts": sizes.texts},
            )  # fmt: skip
        with generating("contacts"):
            conn.execute(
                _pct(PG_CONTACTS),
                {"ws": ws.workspace_id, "n": sizes.contacts, "domains": list(DOMAINS),
                 "first": list(FIRST_NAMES), "first_n": len(FIRST_NAMES), "last": list(LAST_NAMES),
                 "last_n": len(LAST_NAMES)},
            )  # fmt: skip

    chunk = 50_000

    def slices():
        return [(lo, min(lo + chunk - 1, n)) for lo in range(1, n + 1, chunk)]

    def conversations(lo: int, hi: int):
        def job():
            with connect() as conn:
                conn.execute(_pct(PG_CONVERSATIONS), {**common, "lo": lo, "hi": hi})

        return job

    def messages(lo: int, hi: int):
        def job():
            with connect() as conn:
                conn.execute(_pct(PG_MESSAGES), {"half": sizes.texts // 2, "lo": lo, "hi": hi})

        return job

    with generating("conversations"):
        _parallel([conversations(lo, hi) for lo, hi in slices()], workers)
    with generating("messages"):
        _parallel([messages(lo, hi) for lo, hi in slices()], workers)
    with connect() as conn:
        conn.execute(_pct(PG_LABELS), common)
        for table in tables:
            highest = f"SELECT coalesce(max(id), 1) FROM {table}"  # noqa: S608 - fixed names
            conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({highest}))", (table,))
        conn.execute(
            "UPDATE tenancy_workspace SET next_conversation_number = %s WHERE id = %s",
            (n + 1, ws.workspace_id),
        )
        conn.execute("DROP TABLE bench_text")

    def build(definition: str):
        def job():
            with connect() as conn:
                conn.execute(definition)

        return job

    # The GIN index takes longest: start it first, the btrees share the other worker(s).
    indexes.sort(key=lambda index: "USING gin" not in index[1])
    with generating("indexes"):
        _parallel([build(definition) for _, definition in indexes], workers)

    def vacuum(table: str):
        def job():
            with connect() as conn:
                conn.execute(f"VACUUM (ANALYZE) {table}")

        return job

    with generating("vacuum"):
        _parallel([vacuum(table) for table in tables], workers)


def _pct(sql: str) -> str:
    """psycopg placeholders: ``%(name)s`` stays, every other ``%`` (modulo) is doubled."""
    return sql.replace("%", "%%").replace("%%(", "%(")


@contextlib.contextmanager
def generating(what: str):
    """Notes how long a generation step took."""
    started = time.monotonic()
    yield
    c.note(f"generated {what} in {time.monotonic() - started:.1f}s")


# --- generation: SQLite ----------------------------------------------------------------------
# One connection, no journal during the load (the file is thrown away on failure), recursive CTEs
# for the rows and small lookup tables instead of arrays. Pseudo-random numbers come from hashes
# of the row number: SQLite may evaluate random() once per reference, which would make a row's
# status and its timestamps disagree.
def _sqlite_time(us: str) -> str:
    """SQL for a Django-format UTC timestamp from an expression in microseconds since 1970."""
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', ({us}) / 1000000, 'unixepoch')"
        f" || '.' || printf('%06d', ({us}) % 1000000)"
    )


def _h(expr: str, salt: int) -> str:
    """SQL for a pseudo-random number in [0, 1) from an integer expression."""
    return f"((({expr}) * {2654435761 + salt * 40503}) % 1000003) / 1000003.0"


SQLITE_SERIES = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)"

SQLITE_CONTACTS = f"""
INSERT INTO inbox_contact (id, workspace_id, name, email, phone, locale, attributes, created_at,
                           updated_at, load_remote_images)
{SQLITE_SERIES}
SELECT x, :ws, f.name || ' ' || replace(l.name, '-', ' '),
       CASE WHEN x % 5 = 0 THEN ''
            ELSE lower(f.name) || '.' || lower(replace(l.name, '-', '')) || x || '@'
                 || d.name END,
       CASE WHEN x % 3 = 0 THEN ''
            ELSE '+316' || substr('0000000' || ((x * 7919) % 100000000), -8) END,
       CASE WHEN x % 2 = 0 THEN 'en' ELSE 'nl' END, '{{}}',
       {_sqlite_time(":now_us - (:n - x) * 63072000000000 / :n")}, {_sqlite_time(":now_us")}, 0
FROM g
JOIN bench_first f ON f.i = (x * 31) % :first_n
JOIN bench_last l ON l.i = (x * 17) % :last_n
JOIN bench_domain d ON d.i = x % 6
"""  # noqa: S608 - fixed SQL, values are parameters

SQLITE_CONVERSATIONS = f"""
INSERT INTO inbox_conversation (
    id, workspace_id, channel_id, contact_id, number, subject, status, priority, assignee_id,
    team_id, language, custom_attributes, snoozed_until, created_at, updated_at,
    last_message_at, last_inbound_at, last_outbound_at, waiting_since, first_response_at,
    resolved_at, merged_into_id, sla_clock)
SELECT x, :ws, ch.id, 1 + (x * 7919) % :contacts, x,
       CASE WHEN (x * 2654435761 + 1) % :channels_n = 0
            THEN 'Question about order #' || (100000 + x % 900000)
            ELSE '' END,
       status, CASE WHEN r2 < 0.03 THEN 3 WHEN r2 < 0.08 THEN 2 ELSE 0 END,
       CASE WHEN r3 < (CASE WHEN status IN ('open', 'pending') THEN 0.15 ELSE 0.03 END)
            THEN NULL ELSE mb.id END,
       CASE WHEN r4 < 0.2 THEN NULL ELSE tm.id END,
       CASE WHEN x % 2 = 0 THEN 'en' ELSE 'nl' END, '{{}}',
       CASE WHEN status = 'snoozed' THEN {_sqlite_time(":now_us + 172800000000")} END,
       {_sqlite_time("at - 10800000000")}, {_sqlite_time("at")}, {_sqlite_time("at")},
       {_sqlite_time("at - 1200000000")}, {_sqlite_time("at - 3600000000")},
       CASE WHEN status IN ('open', 'pending') THEN {_sqlite_time("at")} END,
       {_sqlite_time("at - 7200000000")},
       CASE WHEN status IN ('resolved', 'closed') THEN {_sqlite_time("at")} END, NULL, '{{}}'
FROM (
    SELECT x, r2, r3, r4,
           :now_us - (:n - x) * 63072000000000 / :n - CAST(r2 * 3600000000 AS INTEGER) AS at,
           CASE WHEN x > :n * 0.97 THEN
                CASE WHEN r < 0.17 THEN 'open' WHEN r < 0.203 THEN 'pending'
                     WHEN r < 0.22 THEN 'snoozed' ELSE 'resolved' END
                ELSE CASE WHEN r < 0.0005 THEN 'open' WHEN r < 0.02 THEN 'closed'
                          ELSE 'resolved' END
           END AS status
    FROM (
        {SQLITE_SERIES} SELECT x, {_h("x", 1)} AS r, {_h("x", 2)} AS r2, {_h("x", 3)} AS r3,
               {_h("x", 4)} AS r4 FROM g
    )
)
JOIN bench_channel ch ON ch.i = (x * 2654435761 + 1) % :channels_n
JOIN bench_member mb ON mb.i = (x * 2654435761 + 2) % :members_n
JOIN bench_team tm ON tm.i = (x * 2654435761 + 3) % :teams_n
"""  # noqa: S608 - fixed SQL, values are parameters

SQLITE_LABELS = f"""
INSERT INTO inbox_conversation_labels (conversation_id, label_id)
{SQLITE_SERIES}
SELECT x, lb.id FROM g JOIN bench_label lb ON lb.i = x % :labels_n WHERE x % 3 = 0
UNION ALL
SELECT x, lb.id FROM g JOIN bench_label lb ON lb.i = (x / 7 + 1) % :labels_n
WHERE x % 7 = 0 AND (x / 7 + 1) % :labels_n <> x % :labels_n
"""  # noqa: S608 - fixed SQL, values are parameters

SQLITE_MESSAGES = """
INSERT INTO inbox_message (
    id, workspace_id, conversation_id, channel_id, direction, kind, author_type,
    author_member_id, author_contact_id, text, html, external_id, status, error, send_attempts,
    data, sent_at, created_at, status_changed_at)
SELECT v.id * 10 + n.i, v.workspace_id, v.id, v.channel_id,
       CASE WHEN kind = 'message' AND n.i % 2 = 1 THEN 'in' ELSE 'out' END, kind,
       CASE WHEN kind = 'message' AND n.i % 2 = 1 THEN 'contact' ELSE 'member' END,
       CASE WHEN kind = 'message' AND n.i % 2 = 1 THEN NULL ELSE v.assignee_id END,
       CASE WHEN kind = 'message' AND n.i % 2 = 1 THEN v.contact_id END,
       CASE WHEN kind = 'activity' THEN 'status' ELSE t.body END, '',
       CASE WHEN kind = 'message' AND n.i % 2 = 1 THEN 'bench-' || (v.id * 10 + n.i) END,
       CASE WHEN kind = 'message' AND n.i % 2 = 0 THEN 'delivered' ELSE '' END, '', 0, '{}',
       NULL, datetime(v.last_message_at, '-' || ((1 + (v.id * 31) % 9 - n.i) * 17) || ' minutes')
             || substr(v.last_message_at, 20), NULL
FROM inbox_conversation v
JOIN bench_i n ON n.i <= 1 + (v.id * 31) % 9
JOIN (SELECT 'message' AS kind UNION ALL SELECT 'note' UNION ALL SELECT 'activity') AS m
  ON m.kind = CASE WHEN n.i > 1 AND (v.id + n.i) % 19 = 0 THEN 'note'
                   WHEN n.i > 1 AND (v.id + n.i) % 23 = 0 THEN 'activity' ELSE 'message' END
JOIN bench_text t ON t.id = 2 * (((v.id * 10 + n.i) * 2654435761) % :half) + 1 + v.id % 2
"""


def make_texts(count: int, seed: int = 7) -> list[tuple[int, str]]:
    """The SQLite pool (PostgreSQL builds its own in SQL the same way): odd ids Dutch, even
    English, 4 to 26 words, a skewed word frequency, now and then an order number."""
    rng = random.Random(seed)
    texts = []
    for i in range(1, count + 1):
        words = EN_WORDS if i % 2 == 0 else NL_WORDS
        picked = [
            f"#{rng.randrange(100000, 1000000)}"
            if rng.random() < 0.04
            else words[int(len(words) * rng.random() ** 2.2)]
            for _ in range(4 + (i * 7) % 23)
        ]
        texts.append((i, f"{picked[0].capitalize()} {' '.join(picked[1:])}."))
    return texts


def generate_sqlite(backend: Backend, sizes: Sizes, ws: Workspace) -> None:
    import sqlite3

    from django.db import connections

    connections.close_all()  # the load needs the file to itself
    conn = sqlite3.connect(backend.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-500000")
    conn.execute("PRAGMA temp_store=MEMORY")
    tables = ("inbox_message", "inbox_conversation", "inbox_contact", "inbox_conversation_labels")
    marks = ",".join("?" * len(tables))
    # Secondary indexes and the search triggers, rebuilt after the load.
    saved = conn.execute(
        f"SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ({marks})"  # noqa: S608
        " AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        tables,
    ).fetchall()
    for kind, name, _ in saved:
        conn.execute(f'DROP {kind.upper()} "{name}"')  # names from sqlite_master
    conn.execute("BEGIN")
    for table, values in (
        ("bench_first", FIRST_NAMES),
        ("bench_last", LAST_NAMES),
        ("bench_domain", DOMAINS),
        ("bench_member", ws.members),
        ("bench_team", ws.teams),
        ("bench_channel", ws.channels),
        ("bench_label", ws.labels),
        ("bench_i", range(1, 10)),
    ):
        column = (
            "name" if table in ("bench_first", "bench_last", "bench_domain", "bench_i") else "id"
        )
        conn.execute(f"CREATE TEMP TABLE {table} (i INTEGER PRIMARY KEY, {column})")
        conn.executemany(
            f"INSERT INTO {table} VALUES (?, ?)",  # noqa: S608 - fixed names
            list(enumerate(values)) if table != "bench_i" else [(v, v) for v in values],
        )
    conn.execute("CREATE TEMP TABLE bench_text (id INTEGER PRIMARY KEY, body TEXT)")
    with generating("texts"):
        conn.executemany("INSERT INTO bench_text VALUES (?, ?)", make_texts(sizes.texts))
    now_us = int(time.time() * 1_000_000)
    params = {
        "ws": ws.workspace_id,
        "n": sizes.conversations,
        "now_us": now_us,
        "contacts": sizes.contacts,
        "channels_n": len(ws.channels),
        "members_n": len(ws.members),
        "teams_n": len(ws.teams),
        "labels_n": len(ws.labels),
        "half": sizes.texts // 2,
    }
    with generating("contacts"):
        conn.execute(
            SQLITE_CONTACTS,
            {**params, "n": sizes.contacts, "first_n": len(FIRST_NAMES),
             "last_n": len(LAST_NAMES)},
        )  # fmt: skip
    with generating("conversations"):
        conn.execute(SQLITE_CONVERSATIONS, params)
        conn.execute(SQLITE_LABELS, params)
    with generating("messages"):
        conn.execute(SQLITE_MESSAGES, params)
    conn.execute(
        "UPDATE tenancy_workspace SET next_conversation_number = ? WHERE id = ?",
        (sizes.conversations + 1, ws.workspace_id),
    )
    conn.execute("COMMIT")
    with generating("indexes"):
        for kind, _, sql in saved:
            if kind == "index":
                conn.execute(sql)
    for kind, _, sql in saved:
        if kind == "trigger":
            conn.execute(sql)
    with generating("search index"):
        from loket.inbox import search

        conn.execute("BEGIN")
        for sql in search.SQLITE_REINDEX:
            conn.execute(sql)
        conn.execute("COMMIT")
    with generating("analyze"):
        conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def report_sizes(name: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table, what in (
            ("inbox_conversation", "conversations"),
            ("inbox_message", "messages"),
            ("inbox_contact", "contacts"),
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            c.figure(f"inbox.{name}.{what}", cursor.fetchone()[0], "rows")
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
        else:
            cursor.execute("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
            size = cursor.fetchone()[0]
    c.figure(f"inbox.{name}.database_mb", size / 1e6, "MB")


# --- measurements ----------------------------------------------------------------------------
def timed(call, times: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def report(name: str, latencies: list[float]) -> float:
    """Prints p50/p99 in ms; returns the p99."""
    p50, p99 = c.percentile(latencies, 50) * 1000, c.percentile(latencies, 99) * 1000
    c.figure(f"{name}.p50_ms", p50, "ms")
    c.figure(f"{name}.p99_ms", p99, "ms")
    return p99


class Pages:
    """Django's test client, signed in as the workspace owner, against the real URLs."""

    def __init__(self, ws: Workspace) -> None:
        from django.test import Client

        from loket.tenancy.models import User

        self.client = Client()
        self.client.force_login(User.objects.get(pk=ws.owner_user_id))
        self.base = f"/w/{WORKSPACE}/"
        self.failures: list[str] = []

    def get(self, path: str, *, expect: str = "", htmx: bool = False):
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.client.get(self.base + path, headers=headers)
        if response.status_code != 200 or (expect and expect not in response.text):
            self.failures.append(f"{path}: {response.status_code}")
        return response


def inbox_views(ws: Workspace) -> dict[str, tuple[str, object]]:
    """view key -> (URL view parameter, the same filter on Conversation)."""
    from django.db.models import Q

    team = ws.teams[0]
    return {
        "all_open": ("all", Q()),
        "mine": ("mine", Q(assignee_id=ws.members[0])),
        "unassigned": ("unassigned", Q(assignee__isnull=True)),
        "team": (f"team:{team}", Q(team_id=team)),
    }


def view_queryset(ws: Workspace, condition):
    from loket.inbox.models import Conversation

    return (
        Conversation.objects.filter(
            workspace_id=ws.workspace_id, status="open", merged_into__isnull=True
        )
        .filter(condition)
        .order_by("-last_message_at", "-id")
    )


def measure(backend: Backend, ws: Workspace, sizes: Sizes) -> bool:
    from django.db import connection
    from django.db.models import Q

    from loket.inbox.selectors import encode_cursor

    name = backend.name
    pages = Pages(ws)
    ok = True
    worst_page = (0.0, "")
    slow_queries = []
    for key, (view, condition) in inbox_views(ws).items():
        queryset = view_queryset(ws, condition)
        total = queryset.count()
        deep = max(1, min(DEEP_ROW, int(total * 0.9)))
        at, pk = queryset.values_list("last_message_at", "pk")[deep - 1]
        cursor = encode_cursor(at, pk)
        c.note(f"view {key}: {total} open conversations, deep page after row {deep}")
        first_url = f"inbox/list/?view={view}&status=open"
        deep_url = f"{first_url}&cursor={cursor}"
        for page, url in (("first", first_url), ("deep", deep_url)):
            expect = "data-number" if page == "first" or total > deep else ""
            p99 = report(
                f"inbox.{name}.{key}.{page}",
                timed(lambda u=url, e=expect: pages.get(u, expect=e, htmx=True), REQUESTS),
            )
            worst_page = max(worst_page, (p99, f"{key}.{page}"))
        # The query under the page, without the view and the template.
        after = Q(last_message_at__lt=at) | Q(last_message_at=at, pk__lt=pk)
        for page, rows in (("first", queryset), ("deep", queryset.filter(after))):
            p99 = report(
                f"inbox.{name}.query.{key}.{page}",
                timed(lambda r=rows: list(r[:PAGE]), REQUESTS),
            )
            if p99 >= TARGET_INBOX_P99_MS / 5:
                slow_queries.append((f"{key}.{page}", rows[:PAGE]))
    counts_p99 = report(
        f"inbox.{name}.counts",
        timed(lambda: pages.get("inbox/counts/", htmx=True), REQUESTS // 2),
    )
    worst_search = (0.0, "")
    for kind, queries in SEARCHES.items():
        latencies = []
        for query in queries:
            url = f"search/?q={query.replace(' ', '+')}"
            latencies += timed(lambda u=url: pages.get(u, htmx=True), REQUESTS // len(queries))
        p99 = report(f"inbox.{name}.search.{kind}", latencies)
        worst_search = max(worst_search, (p99, kind))
    found = pages.get("search/?q=order+refund", htmx=True).text.count("<mark>")
    ok &= c.verdict(
        "check",
        not pages.failures and found > 0,
        f"inbox.{name}.responses",
        f"non-200 or unexpected responses {len(pages.failures)}"
        f"{' e.g. ' + pages.failures[0] if pages.failures else ''}; marks in a search {found}",
    )
    for what, rows in slow_queries:
        c.note(f"plan of {what}:")
        for line in rows.explain(
            **({"analyze": True} if connection.vendor == "postgresql" else {})
        ).splitlines():
            c.note(f"  {line}")
    if name == "pg":
        ok &= c.verdict(
            "target",
            worst_page[0] < TARGET_INBOX_P99_MS,
            "inbox.pg.page",
            f"worst inbox page p99 {worst_page[0]:.1f} ms ({worst_page[1]}), need < "
            f"{TARGET_INBOX_P99_MS:.0f} ms; counts p99 {counts_p99:.1f} ms",
        )
        ok &= c.verdict(
            "target",
            worst_search[0] < TARGET_SEARCH_P99_MS,
            "inbox.pg.search",
            f"worst two-word search p99 {worst_search[0]:.1f} ms ({worst_search[1]} words), "
            f"need < {TARGET_SEARCH_P99_MS:.0f} ms",
        )
    return ok


# --- one backend -----------------------------------------------------------------------------
def run_backend(
    name: str,
    scale: float,
    *,
    keep: bool = False,
    generate_only: bool = False,
    reuse: str = "",
) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-bench-inbox-{name}-"))
    backend = Backend(name, tmp)
    if reuse:
        backend.db_name, keep = reuse, True
        backend.url = f"{c.PG_BASE_URL}/{reuse}"
        backend.var_dir.mkdir(parents=True, exist_ok=True)
    sizes = Sizes.at(scale)
    ok = True
    started = time.monotonic()
    c.note(
        f"{backend.label}: throw-away database, scale {scale:g} ({sizes.conversations} "
        f"conversations), load average {c.load_average()}"
    )
    try:
        if reuse:
            setup_django(backend)
            ok &= measure(backend, load_workspace_rows(), sizes)
            return ok
        backend.create()
        loket(backend, "migrate", "--noinput")
        loket(backend, "createadmin", "--email", ADMIN_EMAIL, "--workspace", WORKSPACE,
              "--password", "bench-password-not-used")  # fmt: skip
        setup_django(backend)
        ws = create_workspace_rows()
        generated = time.monotonic()
        if name == "pg":
            generate_pg(backend, sizes, ws)
        else:
            generate_sqlite(backend, sizes, ws)
        c.figure(f"inbox.{name}.generate_s", time.monotonic() - generated, "s")
        report_sizes(name)
        if not generate_only:
            ok &= measure(backend, ws, sizes)
    except Exception as exc:
        ok = c.verdict("check", False, f"inbox.{name}", f"benchmark error: {exc!r}")
        raise
    finally:
        close_django()
        if keep:
            c.note(f"kept: {backend.url if name == 'pg' else backend.sqlite_path}")
        else:
            backend.drop()
        c.note(
            f"{backend.label}: done in {time.monotonic() - started:.0f}s, "
            f"load average {c.load_average()}"
        )
    return ok


def close_django() -> None:
    if "django" not in sys.modules:
        return
    try:
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            conn.close()
            if hasattr(conn, "close_pool"):
                conn.close_pool()
    except Exception as exc:
        c.note(f"closing database connections failed: {exc!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, help="one backend (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1,000,000 conversations")
    parser.add_argument("--no-machine", action="store_true", help="skip the machine facts")
    parser.add_argument("--keep", action="store_true", help="keep the database (development)")
    parser.add_argument("--generate-only", action="store_true", help="generate, do not measure")
    parser.add_argument(
        "--reuse", metavar="DBNAME", default="", help="measure a kept PostgreSQL database"
    )
    args = parser.parse_args(argv)
    if args.reuse:
        args.backend = "pg"
    if not args.no_machine:
        c.print_machine()
    if args.backend:
        ok = run_backend(
            args.backend,
            args.scale,
            keep=args.keep,
            generate_only=args.generate_only,
            reuse=args.reuse,
        )
        return 0 if ok else 1
    worst = 0
    for backend in BACKENDS:
        command = [c.python(), __file__, "--backend", backend, "--no-machine"]
        command += ["--scale", str(args.scale)]
        done = subprocess.run(command, check=False)
        worst = max(worst, done.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
