"""Reports benchmark: the report pages over a workspace with 1,000,000 conversations, and the
per-conversation CSV export of all of them.

    python bench/reports.py --backend pg                      # 1,000,000 conversations
    python bench/reports.py --backend pg --conversations 100000
    python bench/reports.py --backend pg --fresh              # generate the cached database anew
    python bench/reports.py --backend sqlite                  # 100,000 conversations

Per backend:

1. generate one workspace (time zone Europe/Amsterdam, 20 agents in 5 teams, a supervisor,
   6 channels, 30 labels) with N conversations spread over 400 days (more in office hours, fewer
   at weekends, growing over time) and their report facts — created, first and next responses,
   resolutions, reopenings, customer ratings — with day and hour in the workspace's time zone,
   bulk-loaded with COPY (PostgreSQL) or executemany (SQLite) from one seeded Python generator;
   contacts and a few labels per conversation too. Messages are not generated: the reports read
   the rollups (and the export the conversations and facts), never messages. Then the daily
   rollups and hourly volumes are made by the real code, ``loket.reports.rollups.roll()`` over
   every day, and checked against the facts;
2. measure, through Django's test ``Client`` signed in as a supervisor (middleware, queries,
   templates), the overview, agents and busiest-hours pages over the last 90 days, unfiltered
   and filtered by one channel (p50/p99 over 50 requests after a warm-up), the API's
   ``/api/v1/reports/…`` endpoints the same way, and the queries under the pages alone;
   ``EXPLAIN ANALYZE`` of the rollup queries when a page misses its target;
3. stream the per-conversation CSV export of every conversation (``loket.reports.exports``) to
   /dev/null in a fresh process: rows/s, RSS at 10%, 50% and 100% of the rows, peak RSS.

The PostgreSQL database is kept between runs as ``loket_bench_reports`` (with a fixed
SECRET_KEY: it is a benchmark's) and used again when it was generated for the same number of
conversations by the same generator and the same migrations; ``--fresh`` drops it first,
``--drop`` drops it at the end. SQLite works in a temporary directory, every run anew.

Targets (PostgreSQL): each page p99 under 300 ms; the export's RSS grows less than 50 MB from
10% to 100% of the rows.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import _common as c
from inbox import FIRST_NAMES, LABELS, LAST_NAMES, _pg_secondary_indexes, close_django, generating
from ingest import Backend, loket, setup_django

BACKENDS = ("pg", "sqlite")
DEFAULT_CONVERSATIONS = {"pg": 1_000_000, "sqlite": 100_000}
GENERATOR_VERSION = "1"  # change when the generated data changes: the cached database is remade
CACHED_DB = "loket_bench_reports"
CACHED_SECRET = "loket-bench-reports-cached-database-not-a-secret-7c1f3a9e5d2b48a6b0e4"
ADMIN_EMAIL = "bench@example.com"
SUPERVISOR_EMAIL = "supervisor@example.com"
WORKSPACE = "bench"
ZONE = "Europe/Amsterdam"
DAYS = 400
CONTACT_SHARE = 0.6
RANGE_DAYS = 90
REQUESTS = 50
WARMUP = 5
TARGET_P99_MS = 300.0
TARGET_RSS_GROWTH_MB = 50.0
CHUNK = 50_000  # conversations generated and loaded at a time

AGENTS = 20
TEAMS = ("Support", "Sales", "Billing", "Returns", "Klantenservice")
# name, share of conversations, whether a bot answers there
CHANNELS = (
    ("Email", 0.34, False),
    ("WhatsApp NL", 0.22, True),
    ("WhatsApp BE", 0.08, True),
    ("Live chat", 0.22, True),
    ("Messenger", 0.09, False),
    ("Instagram", 0.05, False),
)
PRIORITIES = ((0, 0.80), (1, 0.06), (2, 0.08), (3, 0.04), (4, 0.02))
RATINGS = ((1, 0.05), (2, 0.05), (3, 0.10), (4, 0.30), (5, 0.50))
# Conversations by local hour of the day (relative).
HOURS = (1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 5, 7, 8, 8, 7, 7, 7.5, 7, 6.5, 5.5, 4, 3.5, 3.2,
         3, 2.5, 1.6)  # fmt: skip
WEEKEND = 0.45  # a weekend day's share of a weekday's conversations
GROWTH = 0.6  # the last day has 60% more conversations than the first

CONVERSATION_COLUMNS = (
    "id", "workspace_id", "channel_id", "contact_id", "number", "subject", "status", "priority",
    "assignee_id", "team_id", "language", "custom_attributes", "snoozed_until", "created_at",
    "updated_at", "last_message_at", "last_inbound_at", "last_outbound_at", "waiting_since",
    "first_response_at", "resolved_at", "sla_clock",
)  # fmt: skip
FACT_COLUMNS = (
    "workspace_id", "conversation_id", "kind", "at", "day", "hour", "channel_id", "team_id",
    "member_id", "priority", "seconds", "business_seconds", "responses", "by_bot", "handoff",
    "rating",
)  # fmt: skip
CONTACT_COLUMNS = (
    "id", "workspace_id", "name", "email", "phone", "locale", "attributes", "created_at",
    "updated_at", "load_remote_images",
)  # fmt: skip
LABEL_COLUMNS = ("conversation_id", "label_id")
TABLES = ("inbox_contact", "inbox_conversation", "inbox_conversation_labels", "reports_reportfact")


@dataclass(frozen=True)
class Workspace:
    """The rows made through Django before the bulk load (ids the generator refers to)."""

    workspace_id: int
    supervisor_user_id: int
    supervisor_id: int
    agents: list[int]  # membership ids
    agent_teams: list[int]  # the team of each agent
    teams: list[int]
    channels: list[int]
    labels: list[int]


# --- the workspace's rows through Django -------------------------------------------------------
def create_workspace_rows() -> Workspace:
    from loket.connectors.registry import get_connector
    from loket.inbox.models import Label
    from loket.inbox.services.channels import create_channel
    from loket.tenancy.models import Role, User
    from loket.tenancy.models import Workspace as WorkspaceModel
    from loket.tenancy.services import add_member, create_team

    workspace = WorkspaceModel.objects.get(slug=WORKSPACE)
    workspace.time_zone = ZONE
    workspace.save(update_fields=["time_zone"])
    agents = [
        add_member(
            workspace,
            User.objects.create_user(
                f"agent{i}@example.com", None, name=f"{FIRST_NAMES[i]} {LAST_NAMES[i]}"
            ),
        )
        for i in range(AGENTS)
    ]
    supervisor = add_member(
        workspace,
        User.objects.create_user(SUPERVISOR_EMAIL, None, name="Sam Supervisor"),
        role=Role.SUPERVISOR,
    )
    teams = [create_team(workspace, name, agents[i :: len(TEAMS)]) for i, name in enumerate(TEAMS)]
    for name, _share, _bot in CHANNELS:
        create_channel(workspace, get_connector("api"), name=name, config={"outbound_url": ""})
    for name in LABELS:
        Label.objects.create(workspace=workspace, name=name)
    return load_workspace_rows(supervisor.user_id, [t.pk for t in teams])


def load_workspace_rows(supervisor_user_id: int | None = None, teams=None) -> Workspace:
    from loket.inbox.models import Channel, Label
    from loket.tenancy.models import Membership, Role, Team
    from loket.tenancy.models import Workspace as WorkspaceModel

    workspace = WorkspaceModel.objects.get(slug=WORKSPACE)
    supervisor = Membership.objects.get(workspace=workspace, role=Role.SUPERVISOR)
    agents = list(Membership.objects.filter(workspace=workspace, role=Role.AGENT).order_by("pk"))
    teams = teams or list(
        Team.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)
    )
    return Workspace(
        workspace_id=workspace.pk,
        supervisor_user_id=supervisor.user_id,
        supervisor_id=supervisor.pk,
        agents=[a.pk for a in agents],
        agent_teams=[teams[i % len(teams)] for i in range(len(agents))],
        teams=teams,
        channels=list(
            Channel.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)
        ),
        labels=list(
            Label.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)
        ),
    )


# --- the generator ---------------------------------------------------------------------------
def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return [x / total for x in out]


def created_times(n: int, now: dt.datetime, seed: int = 11) -> list[float]:
    """N creation times (epoch seconds, ascending) over the DAYS local days up to now."""
    zone = zoneinfo.ZoneInfo(ZONE)
    today = now.astimezone(zone).date()
    days = [today - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    weights = [
        (1 + GROWTH * i / DAYS) * (WEEKEND if day.weekday() >= 5 else 1.0)
        for i, day in enumerate(days)
    ]
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(DAYS), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
        counts[i] += 1
    rng = random.Random(seed)
    hours = _cumulative(HOURS)
    end = now.timestamp() - 60
    times: list[float] = []
    for day, count in zip(days, counts, strict=True):
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
        found = []
        for _ in range(count):
            hour = bisect.bisect(hours, rng.random())
            at = midnight + hour * 3600 + rng.random() * 3600
            found.append(at if at < end else end - rng.random() * 3600)
        times += sorted(found)
    times.sort()
    return times


class Generator:
    """Conversations, their facts and labels for a range of ids, the same for every backend
    (seeded per chunk, so chunks can be made in any order or process)."""

    def __init__(self, ws: Workspace, n: int, now: dt.datetime, times: list[float]) -> None:
        self.ws = ws
        self.n = n
        self.now = now.timestamp()
        self.times = times
        self.contacts = max(1, int(n * CONTACT_SHARE))
        self.zone = zoneinfo.ZoneInfo(ZONE)
        self.channel_cum = _cumulative([share for _n, share, _b in CHANNELS])
        self.bot_channels = {ws.channels[i] for i, ch in enumerate(CHANNELS) if ch[2]}
        self.priority_cum = _cumulative([w for _p, w in PRIORITIES])
        self.rating_cum = _cumulative([w for _r, w in RATINGS])
        # Some agents answer more than others.
        self.agent_cum = _cumulative([1 + (i * 7) % 5 for i in range(len(ws.agents))])

    def chunk(self, lo: int, hi: int):
        """(conversations, facts, labels) of ids lo..hi (both included), as Python values:
        timestamps in epoch seconds, days as dates."""
        rng = random.Random(1000 + lo)
        conversations, facts, labels = [], [], []
        for i in range(lo, hi + 1):
            conversation, made = self.conversation(i, rng)
            conversations.append(conversation)
            facts += made
            if i % 3 == 0:
                labels.append((i, self.ws.labels[i % len(self.ws.labels)]))
            if i % 7 == 0 and (i // 7 + 1) % len(self.ws.labels) != i % len(self.ws.labels):
                labels.append((i, self.ws.labels[(i // 7 + 1) % len(self.ws.labels)]))
        return conversations, facts, labels

    def conversation(self, i: int, rng: random.Random):
        ws = self.ws
        created = self.times[i - 1]
        channel = ws.channels[bisect.bisect(self.channel_cum, rng.random())]
        if rng.random() < 0.04:
            assignee = None
            team = ws.teams[rng.randrange(len(ws.teams))] if rng.random() < 0.5 else None
        else:
            agent = bisect.bisect(self.agent_cum, rng.random())
            assignee = ws.agents[agent]
            team = ws.agent_teams[agent] if rng.random() < 0.85 else None
        priority = PRIORITIES[bisect.bisect(self.priority_cum, rng.random())][0]
        local = dt.datetime.fromtimestamp(created, self.zone)
        office = local.weekday() < 5 and 9 <= local.hour < 17
        lognorm = rng.lognormvariate

        def business(seconds: float) -> float:
            if office:
                return seconds * (0.95 if seconds < 6 * 3600 else 0.35)
            return seconds * 0.25

        # (kind, at, member, seconds, business seconds, responses, by_bot, handoff, rating)
        events = [("created", created, assignee, None, None, None, False, False, None)]
        t = created
        last_in, last_out = created, None
        first_response_at = None
        responses = 0
        customer_started = rng.random() < 0.97
        if not customer_started:
            last_in, last_out = None, created
        elif not (channel in self.bot_channels and rng.random() < 0.12):  # else the bot answers
            for k in range(1 + [0, 0, 0, 1, 1, 1, 2, 3][rng.randrange(8)]):
                if k:
                    last_in = t + lognorm(math.log(3 * 3600), 1.2)
                wait = lognorm(math.log(900 if k == 0 else 1800), 1.3)
                t = (last_in or t) + wait
                helper = assignee is None or rng.random() < 0.1
                responder = ws.agents[rng.randrange(len(ws.agents))] if helper else assignee
                events.append(
                    ("first_response" if k == 0 else "next_response", t, responder, wait,
                     business(wait), None, False, False, None)
                )  # fmt: skip
                first_response_at = first_response_at or t
                last_out = t
                responses += 1
        by_bot = responses == 0 and channel in self.bot_channels and customer_started
        handoff = responses > 0 and channel in self.bot_channels and rng.random() < 0.1
        if rng.random() < 0.997:
            resolved = t + lognorm(math.log(2 * 3600), 1.3)
            spent = (resolved - created) * (1 - 0.15 * rng.random())
            events.append(
                ("resolved", resolved, assignee, spent, business(spent), responses, by_bot,
                 handoff, None)
            )  # fmt: skip
            if rng.random() < 0.06:
                reopened = resolved + lognorm(math.log(86400), 1.0)
                events.append(
                    ("reopened", reopened, assignee, None, None, None, False, False, None)
                )
                last_in = reopened
                wait = lognorm(math.log(1800), 1.3)
                t = reopened + wait
                events.append(
                    ("next_response", t, assignee, wait, business(wait), None, False, False, None)
                )
                last_out = t
                resolved = t + lognorm(math.log(3600), 1.2)
                spent = resolved - reopened
                events.append(
                    ("resolved", resolved, assignee, spent, business(spent), 1, False, False,
                     None)
                )  # fmt: skip
            if rng.random() < 0.18:
                rating = RATINGS[bisect.bisect(self.rating_cum, rng.random())][0]
                events.append(
                    ("csat", resolved + lognorm(math.log(1800), 1.0), assignee, None, None, None,
                     False, False, rating)
                )  # fmt: skip
        # What has happened by now; the rest has not (yet).
        events = [e for e in events if e[1] <= self.now]
        status, resolved_at = "open", None
        for kind, at, *_rest in events:
            if kind == "resolved":
                status, resolved_at = "resolved", at
            elif kind == "reopened":
                status, resolved_at = "open", None
        if status == "resolved" and rng.random() < 0.02:
            status = "closed"
        elif status == "open":
            status = ("open", "open", "open", "pending", "snoozed")[rng.randrange(5)]
        last_in = last_in if last_in is not None and last_in <= self.now else None
        last_out = last_out if last_out is not None and last_out <= self.now else None
        first_response_at = (
            first_response_at if first_response_at and first_response_at <= self.now else None
        )
        last = max(e[1] for e in events)
        waiting = (
            last_in
            if status == "open" and last_in and (not last_out or last_in > last_out)
            else None
        )
        conversation = (
            i, ws.workspace_id, channel, 1 + (i * 7919) % self.contacts, i,
            f"Question about order #{100000 + i % 900000}" if i % 4 == 0 else "",
            status, priority, assignee, team, "en" if i % 2 == 0 else "nl", "{}",
            self.now + 2 * 86400 if status == "snoozed" else None, created, last, last,
            last_in, last_out, waiting, first_response_at, resolved_at, "{}",
        )  # fmt: skip
        facts = []
        for kind, at, member, seconds, biz, resp, bot, hand, rating in events:
            local = dt.datetime.fromtimestamp(at, self.zone)
            facts.append(
                (ws.workspace_id, i, kind, at, local.date(), local.hour, channel, team, member,
                 priority, seconds, biz, resp, bot, hand, rating)
            )  # fmt: skip
        return conversation, facts

    def contacts_rows(self):
        span = DAYS * 86400
        for g in range(1, self.contacts + 1):
            first = FIRST_NAMES[(g * 31) % len(FIRST_NAMES)]
            last = LAST_NAMES[(g * 17) % len(LAST_NAMES)]
            email = "" if g % 5 == 0 else f"{first.lower()}.{last.replace('-', '')}{g}@example.com"
            phone = "" if g % 3 == 0 else f"+316{(g * 7919) % 100000000:08d}"
            at = self.now - span + span * g / self.contacts
            yield (g, self.ws.workspace_id, f"{first} {last.replace('-', ' ')}", email, phone,
                   "en" if g % 2 == 0 else "nl", "{}", at, at, False)  # fmt: skip


CONVERSATION_TIMES = (12, 13, 14, 15, 16, 17, 18, 19, 20)  # timestamp columns of a conversation
FACT_TIMES = (3,)
CONTACT_TIMES = (7, 8)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _sqlite_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None).isoformat(" ")


def _convert(rows, columns: tuple[int, ...], to):
    for row in rows:
        row = list(row)
        for index in columns:
            if row[index] is not None:
                row[index] = to(row[index])
        yield row


# --- loading: PostgreSQL -----------------------------------------------------------------------
def _pg_connect(url: str):
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    # A benchmark's database: no foreign-key triggers during the load, no waiting for fsync.
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '512MB'")
    return conn


def _pg_copy(conn, table: str, columns: tuple[str, ...], rows) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            count += 1
    return count


_GENERATOR: Generator | None = None  # inherited by the forked loaders
_URL = ""


def _pg_load_chunk(bounds: tuple[int, int]) -> tuple[int, int]:
    assert _GENERATOR is not None
    conversations, facts, labels = _GENERATOR.chunk(*bounds)
    with _pg_connect(_URL) as conn:
        _pg_copy(conn, "inbox_conversation", CONVERSATION_COLUMNS,
                 _convert(conversations, CONVERSATION_TIMES, _utc))  # fmt: skip
        _pg_copy(conn, "reports_reportfact", FACT_COLUMNS, _convert(facts, FACT_TIMES, _utc))
        _pg_copy(conn, "inbox_conversation_labels", LABEL_COLUMNS, labels)
    return len(conversations), len(facts)


def generate_pg(backend: Backend, gen: Generator) -> None:
    global _GENERATOR, _URL
    _GENERATOR, _URL = gen, backend.url
    with _pg_connect(backend.url) as conn:
        indexes = _pg_secondary_indexes(conn.cursor(), TABLES)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')  # names from pg_indexes
        with generating("contacts"):
            _pg_copy(conn, "inbox_contact", CONTACT_COLUMNS,
                     _convert(gen.contacts_rows(), CONTACT_TIMES, _utc))  # fmt: skip
    chunks = [(lo, min(lo + CHUNK - 1, gen.n)) for lo in range(1, gen.n + 1, CHUNK)]
    workers = max(1, min(2, os.cpu_count() or 1))
    with generating("conversations, facts and labels"):
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            facts = sum(made for _n, made in pool.imap_unordered(_pg_load_chunk, chunks))
    c.note(f"{facts} facts loaded")
    with _pg_connect(backend.url) as conn:
        for table in ("inbox_contact", "inbox_conversation"):
            highest = f"SELECT coalesce(max(id), 1) FROM {table}"  # noqa: S608 - fixed names
            conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({highest}))", (table,))
        conn.execute(
            "UPDATE tenancy_workspace SET next_conversation_number = %s WHERE id = %s",
            (gen.n + 1, gen.ws.workspace_id),
        )

    from inbox import _parallel

    def run(sql: str):
        def job():
            with _pg_connect(backend.url) as conn:
                conn.execute(sql)

        return job

    with generating("indexes"):
        _parallel([run(definition) for _, definition in indexes], workers)
    with generating("vacuum"):
        _parallel([run(f"VACUUM (ANALYZE) {table}") for table in TABLES], workers)


# --- loading: SQLite ---------------------------------------------------------------------------
def generate_sqlite(backend: Backend, gen: Generator) -> None:
    import sqlite3

    from django.db import connections

    connections.close_all()
    conn = sqlite3.connect(backend.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-500000")

    def insert(table: str, columns: tuple[str, ...], rows) -> None:
        marks = ", ".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            rows,
        )

    def day(rows):
        for row in rows:
            row[4] = row[4].isoformat()
            yield row

    conn.execute("BEGIN")
    with generating("contacts"):
        insert("inbox_contact", CONTACT_COLUMNS,
               _convert(gen.contacts_rows(), CONTACT_TIMES, _sqlite_time))  # fmt: skip
    with generating("conversations, facts and labels"):
        for lo in range(1, gen.n + 1, CHUNK):
            conversations, facts, labels = gen.chunk(lo, min(lo + CHUNK - 1, gen.n))
            insert("inbox_conversation", CONVERSATION_COLUMNS,
                   _convert(conversations, CONVERSATION_TIMES, _sqlite_time))  # fmt: skip
            insert("reports_reportfact", FACT_COLUMNS,
                   day(_convert(facts, FACT_TIMES, _sqlite_time)))  # fmt: skip
            insert("inbox_conversation_labels", LABEL_COLUMNS, labels)
    conn.execute(
        "UPDATE tenancy_workspace SET next_conversation_number = ? WHERE id = ?",
        (gen.n + 1, gen.ws.workspace_id),
    )
    conn.execute("COMMIT")
    with generating("analyze"):
        conn.execute("ANALYZE")
    conn.close()


# --- rollups -----------------------------------------------------------------------------------
def roll_all(name: str, ws: Workspace) -> bool:
    """The rollups of every day with facts, by the real code; checked against the facts."""
    from django.db.models import Count, Q, Sum

    from loket.reports import rollups
    from loket.reports.models import (
        DailyChannelMemberRollup,
        DailyRollup,
        HourlyVolume,
        ReportFact,
    )

    facts = ReportFact.objects.filter(workspace_id=ws.workspace_id)
    days = set(facts.values_list("workspace_id", "day").distinct())
    started = time.monotonic()
    rollups.roll(days)
    took = time.monotonic() - started
    from django.db import connection

    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk change; the planner needs the tables' sizes.
        with connection.cursor() as cursor:
            cursor.execute(
                "ANALYZE reports_dailyrollup, reports_dailychannelmemberrollup,"
                " reports_hourlyvolume"
            )
    c.figure(f"reports.{name}.roll_s", took, "s")
    c.figure(f"reports.{name}.roll_ms_per_day", took * 1000 / max(1, len(days)), "ms")
    rollup_rows = DailyRollup.objects.filter(workspace_id=ws.workspace_id)
    c.figure(f"reports.{name}.days", len(days), "days")
    c.figure(f"reports.{name}.facts", facts.count(), "rows")
    c.figure(f"reports.{name}.daily_rollup_rows", rollup_rows.count(), "rows")
    coarse = DailyChannelMemberRollup.objects.filter(workspace_id=ws.workspace_id)
    c.figure(f"reports.{name}.channel_member_rollup_rows", coarse.count(), "rows")
    c.figure(
        f"reports.{name}.hourly_volume_rows",
        HourlyVolume.objects.filter(workspace_id=ws.workspace_id).count(),
        "rows",
    )
    want = facts.aggregate(
        created=Count("pk", filter=Q(kind="created")),
        resolved=Count("pk", filter=Q(kind="resolved")),
        ratings=Count("pk", filter=Q(kind="csat")),
        incoming=Count("pk", filter=Q(kind__in=("created", "reopened"))),
    )
    got = rollup_rows.aggregate(
        created=Sum("created"), resolved=Sum("resolved"), ratings=Sum("ratings")
    )
    also = coarse.aggregate(
        created=Sum("created"), resolved=Sum("resolved"), ratings=Sum("ratings")
    )
    got["incoming"] = HourlyVolume.objects.filter(workspace_id=ws.workspace_id).aggregate(
        n=Sum("conversations")
    )["n"]
    also["incoming"] = got["incoming"]
    return c.verdict(
        "check",
        want == got == also,
        f"reports.{name}.rollups_match_facts",
        f"facts {want} rollups {got} per channel and member {also}",
    )


# --- the cached database -----------------------------------------------------------------------
def _cache_key(backend: Backend, n: int) -> str:
    import psycopg

    with psycopg.connect(backend.url) as conn:
        applied = conn.execute(
            "SELECT app || '.' || name FROM django_migrations ORDER BY app, name"
        ).fetchall()
    text = json.dumps([GENERATOR_VERSION, n, [row[0] for row in applied]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(backend: Backend) -> str | None:
    import psycopg

    try:
        with psycopg.connect(backend.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT value FROM bench_reports_meta WHERE key = 'key'").fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def _mark_cached(backend: Backend, key: str) -> None:
    import psycopg

    with psycopg.connect(backend.url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_reports_meta (key text PRIMARY KEY, value text)"
        )
        conn.execute(
            "INSERT INTO bench_reports_meta VALUES ('key', %s) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value",
            (key,),
        )


# --- measurements ------------------------------------------------------------------------------
def timed(call, times: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def report(name: str, latencies: list[float]) -> tuple[float, float]:
    p50, p99 = c.percentile(latencies, 50) * 1000, c.percentile(latencies, 99) * 1000
    c.figure(f"{name}.p50_ms", p50, "ms")
    c.figure(f"{name}.p99_ms", p99, "ms")
    return p50, p99


def measure(name: str, ws: Workspace, n: int, requests: int) -> bool:
    from django.test import Client
    from django.utils import timezone

    from loket.reports import queries
    from loket.reports.models import (
        DailyChannelMemberRollup,
        DailyRollup,
        HourlyVolume,
        ReportFact,
    )
    from loket.reports.queries import Filters
    from loket.tenancy.models import Membership, User
    from loket.tenancy.services import create_api_token

    ok = True
    zone = zoneinfo.ZoneInfo(ZONE)
    end = timezone.now().astimezone(zone).date()
    start = end - dt.timedelta(days=RANGE_DAYS - 1)
    channel = ws.channels[0]
    client = Client()
    client.force_login(User.objects.get(pk=ws.supervisor_user_id))
    base = f"/w/{WORKSPACE}/reports/"
    failures: list[str] = []
    pages = {"overview": "", "agents": "agents/", "heatmap": "busiest-hours/"}
    filters = {"": "", ".channel": f"&channel={channel}"}
    worst = (0.0, "")
    range_query = f"from={start.isoformat()}&to={end.isoformat()}"
    c.note(
        f"range {start} .. {end} ({RANGE_DAYS} days, {ZONE}); filter: channel {channel}; "
        f"{requests} requests each after {WARMUP} warm-up"
    )

    def get(url: str, expect: str):
        response = client.get(url)
        if response.status_code != 200 or expect not in response.text:
            failures.append(f"{url}: {response.status_code}")

    created_in_range = ReportFact.objects.filter(
        workspace_id=ws.workspace_id, day__gte=start, day__lte=end, kind="created"
    ).count()
    for page, path in pages.items():
        for suffix, extra in filters.items():
            url = f"{base}{path}?{range_query}{extra}"
            expect = {"overview": "New conversations", "agents": "Unassigned"}.get(page, "Mon")
            _p50, p99 = report(
                f"reports.{name}.{page}_90d{suffix}",
                timed(lambda u=url, e=expect: get(u, e), requests),
            )
            worst = max(worst, (p99, f"{page}{suffix}"))

    # The API, with a supervisor's token.
    membership = Membership.objects.get(pk=ws.supervisor_id)
    _token, raw = create_api_token(membership, name="bench")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    api_totals = {}

    def api_get(path: str):
        response = api.get(path)
        if response.status_code != 200:
            failures.append(f"{path}: {response.status_code}")
        return response

    for page, path in (("overview", "overview"), ("agents", "agents"),
                       ("heatmap", "busiest-hours")):  # fmt: skip
        url = f"/api/v1/reports/{path}?{range_query}"
        report(f"reports.{name}.api.{page}_90d", timed(lambda u=url: api_get(u), requests))
        if page == "overview":
            api_totals = api_get(url).json()["totals"]
    ok &= c.verdict(
        "check",
        not failures and api_totals.get("created") == created_in_range,
        f"reports.{name}.responses",
        f"non-200 or unexpected responses {len(failures)}"
        f"{' e.g. ' + failures[0] if failures else ''}; API created {api_totals.get('created')}, "
        f"facts {created_in_range}",
    )

    # The queries under the pages, without the view and the template.
    plain, by_channel = Filters(), Filters(channel_id=channel)
    under = {
        "overview.compare": lambda f: queries.compare(ws.workspace_id, start, end, f),
        "overview.series": lambda f: queries.series(ws.workspace_id, start, end, f),
        "agents.by_member": lambda f: queries.by_dimension(
            ws.workspace_id, start, end, "member_id", f
        ),
        "heatmap": lambda f: queries.heatmap(ws.workspace_id, start, end, f),
    }
    slow = []
    for what, call in under.items():
        for suffix, f in (("", plain), (".channel", by_channel)):
            _p50, p99 = report(
                f"reports.{name}.query.{what}{suffix}",
                timed(lambda call=call, f=f: call(f), requests),
            )
            if p99 > TARGET_P99_MS / 3:
                slow.append(f"{what}{suffix}")
    rows = DailyRollup.objects.filter(
        workspace_id=ws.workspace_id, day__gte=start, day__lte=end
    ).count()
    hours = HourlyVolume.objects.filter(
        workspace_id=ws.workspace_id, day__gte=start, day__lte=end
    ).count()
    per_channel_member = DailyChannelMemberRollup.objects.filter(
        workspace_id=ws.workspace_id, day__gte=start, day__lte=end
    ).count()
    c.figure(f"reports.{name}.rollup_rows_90d", rows, "rows")
    c.figure(f"reports.{name}.channel_member_rollup_rows_90d", per_channel_member, "rows")
    c.figure(f"reports.{name}.hourly_rows_90d", hours, "rows")
    if name == "pg" and (worst[0] >= TARGET_P99_MS or slow):
        explain(ws, start, end, channel)
    if name == "pg":
        ok &= c.verdict(
            "target",
            worst[0] < TARGET_P99_MS,
            "reports.pg.pages_90d",
            f"slowest report page p99 {worst[0]:.1f} ms ({worst[1]}), need < "
            f"{TARGET_P99_MS:.0f} ms, {n} conversations",
        )
    return ok


def explain(ws: Workspace, start: dt.date, end: dt.date, channel: int) -> None:
    from django.db.models import Sum

    from loket.reports import queries
    from loket.reports.models import HourlyVolume
    from loket.reports.queries import FIELDS, Filters

    sums = {f: Sum(f) for f in FIELDS}
    rows = queries._rows  # the rollup rows the report functions read
    plans = {
        "totals": rows(ws.workspace_id, start, end, Filters()).values("workspace_id"),
        "totals by channel": rows(ws.workspace_id, start, end, Filters(channel_id=channel)).values(
            "workspace_id"
        ),
        "per member": rows(ws.workspace_id, start, end, Filters(), "member_id").values("member_id"),
    }
    plans = {what: queryset.annotate(**sums) for what, queryset in plans.items()}
    plans["heatmap"] = (
        HourlyVolume.objects.filter(workspace_id=ws.workspace_id, day__gte=start, day__lte=end)
        .values("day", "hour")
        .annotate(n=Sum("conversations"))
    )
    for what, queryset in plans.items():
        c.note(f"plan of {what}:")
        for line in queryset.order_by().explain(analyze=True).splitlines():
            c.note(f"  {line}")


# --- the export, in a fresh process ------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    """This process image's peak RSS (VmHWM). ``ru_maxrss`` is not used for the figure: Linux
    carries the forking parent's high-water mark over the exec into it."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6  # kB (KiB) to MB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def export_child(name: str, label: str, workspace_id: int, start: str, end: str, rows: int) -> int:
    """Runs in a fresh process: every conversation's CSV row to /dev/null."""
    import django

    django.setup()
    from loket.reports import exports
    from loket.reports.queries import Filters

    marks = [max(1, rows // 10), max(1, rows // 2), rows]
    names = ["rss_10pct_mb", "rss_50pct_mb", "rss_100pct_mb"]
    rss = {"rss_start_mb": _rss_mb()}
    lines = 0
    size = 0
    highest = 0.0  # RSS sampled after every chunk (500 rows)
    started = time.perf_counter()
    table = exports.conversation_table(
        workspace_id, dt.date.fromisoformat(start), dt.date.fromisoformat(end), Filters()
    )
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        for chunk in exports.csv_chunks(table):
            os.write(fd, chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            highest = max(highest, _rss_mb())
            while marks and lines - 1 >= marks[0]:  # the header is a line too
                rss[names[3 - len(marks)]] = _rss_mb()
                marks.pop(0)
    finally:
        os.close(fd)
    took = time.perf_counter() - started
    for key in names:
        rss.setdefault(key, _rss_mb())
    peak = _peak_rss_mb()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux
    base = f"reports.{name}.export_csv_{label}"
    c.figure(f"{base}.rows", lines - 1, "rows")
    c.figure(f"{base}.rows_per_s", (lines - 1) / took, "rows/s")
    c.figure(f"{base}.seconds", took, "s")
    c.figure(f"{base}.csv_mb", size / 1e6, "MB")
    for key, value in rss.items():
        c.figure(f"{base}.{key}", value, "MB")
    c.figure(f"{base}.rss_highest_sampled_mb", highest, "MB")
    c.figure(f"{base}.peak_rss_mb", peak, "MB")
    c.figure(f"{base}.ru_maxrss_mb", maxrss, "MB")  # with the parent's, see _peak_rss_mb
    growth = rss["rss_100pct_mb"] - rss["rss_10pct_mb"]
    c.figure(f"{base}.rss_growth_10_to_100pct_mb", growth, "MB")
    ok = c.verdict(
        "check",
        lines - 1 == rows,
        f"{base}.all_rows",
        f"rows written {lines - 1}, conversations {rows}",
    )
    ok &= c.verdict(
        "target",
        growth < TARGET_RSS_GROWTH_MB,
        f"{base}.flat_memory",
        f"RSS {rss['rss_10pct_mb']:.0f} MB at 10% of the rows, {rss['rss_100pct_mb']:.0f} MB at "
        f"100% (growth {growth:.1f} MB, need < {TARGET_RSS_GROWTH_MB:.0f} MB); peak "
        f"{peak:.0f} MB; {(lines - 1) / took:.0f} rows/s",
    )
    return 0 if ok else 1


def export(backend: Backend, ws: Workspace, n: int) -> bool:
    import importlib.util

    from django.db.models import Min

    from loket.reports.models import ReportFact

    label = (
        f"{n // 1_000_000}m"
        if n % 1_000_000 == 0
        else (f"{n // 1000}k" if n % 1000 == 0 else str(n))
    )
    spec = importlib.util.find_spec("loket.reports.exports")
    if spec is None:
        c.note(
            "export: SKIPPED — loket.reports.exports (conversation_table, csv_chunks) is not in "
            "this checkout yet; no export figures"
        )
        return True
    zone = zoneinfo.ZoneInfo(ZONE)
    first = ReportFact.objects.filter(workspace_id=ws.workspace_id).aggregate(d=Min("day"))["d"]
    end = dt.datetime.now(zone).date()
    c.note(f"export: every conversation ({first} .. {end}) as CSV to /dev/null, fresh process")
    done = subprocess.run(
        [c.python(), "-u", __file__, "--export-child", backend.name, label,
         str(ws.workspace_id), first.isoformat(), end.isoformat(), str(n)],
        env=backend.env(), cwd=backend.tmp, check=False,
    )  # fmt: skip
    return done.returncode == 0


# --- one backend -------------------------------------------------------------------------------
def run_backend(
    name: str, n: int, *, fresh: bool, drop: bool, requests: int, export_too: bool = True
) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-bench-reports-{name}-"))
    backend = Backend(name, tmp)
    cached = name == "pg"
    if cached:
        backend.db_name = CACHED_DB
        backend.url = f"{c.PG_BASE_URL}/{CACHED_DB}"
        backend.secret_key = CACHED_SECRET
    ok = True
    started = time.monotonic()
    c.note(f"{backend.label}: {n} conversations, load average {c.load_average()}")
    try:
        backend.var_dir.mkdir(parents=True, exist_ok=True)
        if cached and fresh:
            backend.drop()
            backend.var_dir.mkdir(parents=True, exist_ok=True)
        reuse = False
        if cached and _cached(backend) is not None:
            loket(backend, "migrate", "--noinput")
            reuse = _cached(backend) == _cache_key(backend, n)
            if not reuse:
                c.note(f"the kept {CACHED_DB} is for another size, generator or schema: remade")
                backend.drop()
                backend.var_dir.mkdir(parents=True, exist_ok=True)
        if reuse:
            c.note(f"using the kept database {CACHED_DB} (--fresh to generate it anew)")
            setup_django(backend)
            ws = load_workspace_rows()
        else:
            backend.create()
            loket(backend, "migrate", "--noinput")
            loket(backend, "createadmin", "--email", ADMIN_EMAIL, "--workspace", WORKSPACE,
                  "--password", "bench-password-not-used")  # fmt: skip
            setup_django(backend)
            ws = create_workspace_rows()
            from django.utils import timezone

            generated = time.monotonic()
            now = timezone.now()
            gen = Generator(ws, n, now, created_times(n, now))
            close_django()
            if name == "pg":
                generate_pg(backend, gen)
            else:
                generate_sqlite(backend, gen)
            c.figure(f"reports.{name}.generate_s", time.monotonic() - generated, "s")
            c.note("messages are not generated: the reports read rollups, the export facts")
            ok &= roll_all(name, ws)
            close_django()
            if cached and ok:
                _mark_cached(backend, _cache_key(backend, n))
        c.figure(f"reports.{name}.conversations", n, "rows")
        ok &= measure(name, ws, n, requests)
        close_django()
        if export_too:
            ok &= export(backend, ws, n)
        else:
            c.note("export: skipped (--no-export)")
    except Exception as exc:
        ok = c.verdict("check", False, f"reports.{name}", f"benchmark error: {exc!r}")
        raise
    finally:
        close_django()
        if cached and not drop:
            shutil.rmtree(backend.tmp, ignore_errors=True)
            c.note(f"kept {backend.url} for the next run")
        else:
            backend.drop()
        c.note(
            f"{backend.label}: done in {time.monotonic() - started:.0f}s, "
            f"load average {c.load_average()}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--export-child"]:
        name, label, workspace_id, start, end, rows = argv[1:7]
        return export_child(name, label, int(workspace_id), start, end, int(rows))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, help="one backend (default: all)")
    parser.add_argument(
        "--conversations", type=int, help="default 1,000,000 (PostgreSQL), 100,000 (SQLite)"
    )
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per page")
    parser.add_argument("--fresh", action="store_true", help=f"generate {CACHED_DB} anew")
    parser.add_argument("--drop", action="store_true", help=f"drop {CACHED_DB} at the end")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export")
    parser.add_argument("--no-machine", action="store_true", help="skip the machine facts")
    args = parser.parse_args(argv)
    if not args.no_machine:
        c.print_machine()
    if args.backend:
        n = args.conversations or DEFAULT_CONVERSATIONS[args.backend]
        ok = run_backend(
            args.backend,
            n,
            fresh=args.fresh,
            drop=args.drop,
            requests=args.requests,
            export_too=not args.no_export,
        )
        return 0 if ok else 1
    worst = 0
    for backend in BACKENDS:
        command = [c.python(), __file__, "--backend", backend, "--no-machine"]
        command += ["--requests", str(args.requests)]
        command += ["--conversations", str(args.conversations)] if args.conversations else []
        command += ["--fresh"] if args.fresh else []
        command += ["--drop"] if args.drop else []
        command += ["--no-export"] if args.no_export else []
        worst = max(worst, subprocess.run(command, check=False).returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
