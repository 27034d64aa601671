"""Bot benchmark: 500 conversations with the demo's "Ferry booking helper" at the same time.

    python bench/bots.py                  # both backends, each in its own subprocess
    python bench/bots.py --backend pg     # one backend in this process

Per backend, on a throw-away database (PostgreSQL ``loket_bench_<pid>`` in production mode, or
SQLite in a temp dir, embedded mode), after ``loket migrate`` and ``loket createadmin``: one
workspace with a team, an API channel and the ferry flow (loket/bots/examples/ferry.json),
published and on. A small HTTP server in its own process plays the business: it answers the
flow's booking look-up (``GET …/bookings/FB123456``) and takes the channel's replies (``POST``,
200), so every bot message is really delivered.

How it is driven: this process plays the web side. Sender threads hand each customer message to
``loket.inbox.services.journal.record()`` — what the API channel's webhook runs once the
signature is verified (the HTTP layer in front of it is measured by bench/ingest.py) — which
stores it and enqueues the ``bot_turn`` job in the same commit. The jobs run as they do in
production: on PostgreSQL in ``loket worker`` processes (``WORKER_PROCESSES`` of them, with
``WORKER_THREADS`` threads each), on SQLite in a worker thread of this process, like ``make
run``. Each conversation walks the whole flow — "Hello" → greeting and the choice; a tap on
"Change booking" → the code question; "FB123456" → the look-up, the departure time and "anything
else?"; a tap on "No, thanks" → goodbye, resolved — and a customer writes again only once the
bot's turn on their previous message is stored, its look-up included (the driver polls the
sessions). All 500
conversations start at once (after ``WARMUP`` conversations that are not measured).

Figures: ``bots.<db>.turns_per_s`` (customer messages the bot handled per second, wall clock,
first message to last turn) and ``reply_p50_ms`` / ``reply_p99_ms``: from the customer's
message stored to the bot's first reply to it stored (the rows' ``created_at``). Checks: every
conversation completed on the expected path with the looked-up departure, six bot messages,
resolved; no job failed; every reply delivered. No target: the issue asks for the figures.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import _common as c
from ingest import Backend, run_on_throwaway

BACKENDS = ("pg", "sqlite")
CONVERSATIONS = int(os.environ.get("BENCH_BOT_CONVERSATIONS", "500"))
WARMUP = 20
SENDERS = 4
WORKER_PROCESSES = int(os.environ.get("BENCH_BOT_WORKER_PROCESSES", "2"))  # PostgreSQL
WORKER_THREADS = int(os.environ.get("BENCH_BOT_WORKER_THREADS", "2"))
TIME_LIMIT = 150.0  # seconds per run: a bound, so a stuck bot fails the check instead of hanging
ADMIN_EMAIL = "bench@example.com"
WORKSPACE = "bench"
ENV = {"LOKET_HTTP_ALLOW_PRIVATE": "1"}  # the business's server is on loopback
# What each customer says, in order: (text, tapped choice).
SCRIPT = [
    ("Hello, I have a question about my ferry booking", None),
    ("Change booking", {"id": "change", "title": "Change booking"}),
    ("FB123456", None),
    ("No, thanks", {"id": "no", "title": "No, thanks"}),
]
EXPECTED_PATH = ["welcome", "need", "code", "lookup", "answer", "more", "bye"]
BOT_MESSAGES = 6  # greeting, choice, code question, departure, anything else, goodbye

BUSINESS = r"""
import http.server, json, sys

BOOKING = json.dumps({"booking": {"code": "FB123456", "route": "Den Helder \u2192 Texel",
    "departure": "14:30", "ship": "MS Texel", "date": "2026-06-12", "passengers": 2}}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        found = self.path.rsplit("/", 1)[-1] == "FB123456"
        self.answer(200 if found else 404, BOOKING if found else b'{"error": "not found"}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(200, b"{}")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
"""


def start_business() -> tuple[subprocess.Popen, str]:
    port = c.free_port()
    process = subprocess.Popen(
        [c.python(), "-c", BUSINESS, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process, f"http://127.0.0.1:{port}"


def make_world(business: str):
    from loket.bots import examples
    from loket.bots import services as flow_services
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel
    from loket.tenancy.models import Workspace
    from loket.tenancy.services import create_team

    workspace = Workspace.objects.get(slug=WORKSPACE)
    team = create_team(workspace, "Support")
    channel, _ = create_channel(
        workspace,
        get_connector("api"),
        name="bench bots",
        config={"outbound_url": f"{business}/replies"},
        default_team=team,
    )
    example = examples.load("ferry", base_url=business, team_id=team.pk)
    flow = flow_services.create_flow(
        workspace,
        name=example["name"],
        draft=example["definition"],
        trigger=example["trigger"],
        handoff_words=example["handoff_words"],
        channel_ids=[channel.pk],
    )
    flow_services.publish(flow)
    flow_services.update_flow(flow, enabled=True)
    return channel


def start_workers(backend: Backend):
    """PostgreSQL: ``loket worker`` processes; SQLite: a worker thread here (embedded mode)."""
    if backend.name == "pg":
        processes = []
        for n in range(WORKER_PROCESSES):
            log = open(backend.tmp / f"worker-{n}.log", "ab")  # noqa: SIM115 - closed in stop
            processes.append(
                (
                    subprocess.Popen(
                        [c.python(), "-m", "loket.cli", "worker", "--threads", str(WORKER_THREADS)],
                        env=backend.env(**ENV),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=backend.tmp,
                    ),
                    log,
                )
            )
        return ("processes", processes)
    from django.conf import settings

    from loket.jobs.worker import start_worker_threads

    return ("threads", start_worker_threads(max(1, settings.LOKET_INPROCESS_WORKERS or 1)))


def stop_workers(workers) -> None:
    kind, handle = workers
    if kind == "processes":
        for process, _log in handle:
            process.terminate()
        for process, log in handle:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
    else:
        from loket.jobs.worker import stop_worker_threads

        stop_worker_threads(*handle)


class Driver:
    """Customers who each write the next line of SCRIPT once the bot has handled the last."""

    def __init__(self, channel, prefix: str, count: int) -> None:
        self.channel = channel
        self.prefix = prefix
        self.count = count
        self.todo: queue.Queue = queue.Queue()
        self.pending: dict[int, tuple[int, int]] = {}  # message pk -> (customer, step)
        self.lock = threading.Lock()
        self.finished = 0
        self.errors: list[str] = []

    def body(self, customer: int, step: int) -> bytes:
        text, choice = SCRIPT[step]
        payload = {
            "id": f"{self.prefix}-{customer}-{step}",
            "contact": {"id": f"{self.prefix}-{customer}", "name": f"Customer {customer}"},
            "text": text,
        }
        if choice:
            payload["choice"] = choice
        return json.dumps(payload, separators=(",", ":")).encode()

    def send_loop(self) -> None:
        from django.db import connection

        from loket.inbox.models import Message
        from loket.inbox.services import journal

        meta = {"content_type": "application/json"}
        try:
            while True:
                item = self.todo.get()
                if item is None:
                    return
                customer, step = item
                outcome = journal.record(
                    self.channel,
                    self.body(customer, step),
                    meta,
                    content_type="application/json",
                )
                if outcome.status != "processed":
                    self.errors.append(f"{customer}/{step}: {outcome.status} {outcome.error}")
                    continue
                pk = (
                    Message.objects.filter(
                        channel=self.channel, external_id=f"{self.prefix}-{customer}-{step}"
                    )
                    .values_list("pk", flat=True)
                    .get()
                )
                with self.lock:
                    self.pending[pk] = (customer, step)
        finally:
            connection.close()

    def run(self, time_limit: float) -> tuple[float, bool]:
        """Drive every customer to the end; (seconds, all finished)."""
        from django.db import connection

        from loket.bots.models import BotSession

        senders = [threading.Thread(target=self.send_loop, daemon=True) for _ in range(SENDERS)]
        for thread in senders:
            thread.start()
        started = time.perf_counter()
        for customer in range(self.count):
            self.todo.put((customer, 0))
        deadline = time.monotonic() + time_limit
        while self.finished < self.count and time.monotonic() < deadline and not self.errors:
            with self.lock:
                waiting = list(self.pending)
            if waiting:
                # Handled, and not still looking something up for its answer.
                done = BotSession.objects.filter(
                    last_message_id__in=waiting, fetching=False
                ).values_list("last_message_id", flat=True)
                for pk in done:
                    with self.lock:
                        customer, step = self.pending.pop(pk)
                    if step + 1 < len(SCRIPT):
                        self.todo.put((customer, step + 1))
                    else:
                        self.finished += 1
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        for _ in senders:
            self.todo.put(None)
        for thread in senders:
            thread.join(timeout=30)
        connection.close()
        return elapsed, self.finished == self.count


def wait_for_deliveries(channel, timeout: float = 30.0) -> int:
    """Bot replies still queued for delivery after ``timeout`` seconds."""
    from loket.inbox.models import Message

    deadline = time.monotonic() + timeout
    while True:
        queued = Message.objects.filter(
            channel=channel, author_type="bot", kind="message", status="queued"
        ).count()
        if not queued or time.monotonic() > deadline:
            return queued
        time.sleep(0.2)


def reply_times(channel, prefix: str) -> list[float]:
    """Per customer message: its bot reply's created_at minus its own (seconds)."""
    from loket.inbox.models import Message

    rows = (
        Message.objects.filter(channel=channel, kind="message")
        .filter(conversation__contact__identities__external_id__startswith=f"{prefix}-")
        .order_by("conversation_id", "pk")
        .values_list("conversation_id", "direction", "created_at")
    )
    times, waiting, current = [], None, None
    for conversation_id, direction, created_at in rows:
        if conversation_id != current:
            current, waiting = conversation_id, None
        if direction == "in":
            waiting = created_at
        elif waiting is not None:
            times.append((created_at - waiting).total_seconds())
            waiting = None
    return times


def job_times() -> dict[str, dict[str, list[float]]]:
    """Per job kind: seconds waiting in the queue and running (all jobs of the run)."""
    from django_tasks_db.models import DBTaskResult

    found: dict[str, dict[str, list[float]]] = {}
    rows = DBTaskResult.objects.filter(status="SUCCESSFUL").values_list(
        "task_path", "enqueued_at", "started_at", "finished_at"
    )
    for path, enqueued, started, finished in rows:
        if not (enqueued and started and finished):
            continue
        times = found.setdefault(path.rsplit(".", 1)[-1], {"wait": [], "run": []})
        times["wait"].append((started - enqueued).total_seconds())
        times["run"].append((finished - started).total_seconds())
    return found


def check_conversations(channel, prefix: str, count: int) -> tuple[bool, str]:
    from loket.bots.models import BotSession, SessionState
    from loket.inbox.models import Conversation, Message

    sessions = BotSession.objects.filter(
        conversation__channel=channel,
        conversation__contact__identities__external_id__startswith=f"{prefix}-",
    )
    wrong = []
    for session in sessions.iterator():
        variables = session.variables
        if (
            session.state != SessionState.COMPLETED
            or session.path != EXPECTED_PATH
            or variables.get("booking_code") != "FB123456"
            or variables.get("departure") != "14:30"
            or variables.get("need") != "change"
        ):
            wrong.append(f"{session.conversation_id}: {session.state} {session.path}")
    conversations = Conversation.objects.filter(
        channel=channel, contact__identities__external_id__startswith=f"{prefix}-"
    )
    resolved = conversations.filter(status="resolved").count()
    bot_lines = Message.objects.filter(
        conversation__in=conversations, author_type="bot", kind="message"
    )
    departures = bot_lines.filter(text__contains="departs at 14:30").count()
    ok = (
        not wrong
        and sessions.count() == count
        and resolved == count
        and bot_lines.count() == count * BOT_MESSAGES
        and departures == count
    )
    detail = (
        f"{count} conversations: {sessions.count()} sessions, {len(wrong)} off the expected path,"
        f" {resolved} resolved, {bot_lines.count()} bot messages (expected"
        f" {count * BOT_MESSAGES}), {departures} departure answers"
    )
    if wrong:
        detail += f"; e.g. {wrong[0]}"
    return ok, detail


def measure(backend: Backend, business: str) -> bool:
    from django_tasks_db.models import DBTaskResult

    prefix = f"bots.{backend.name}"
    channel = make_world(business)
    workers = start_workers(backend)
    try:
        warm = Driver(channel, "warm", WARMUP)
        _seconds, warm_ok = warm.run(TIME_LIMIT)
        ok = c.verdict(
            "check", warm_ok and not warm.errors, f"{prefix}.warmup", f"{WARMUP} conversations"
        )
        driver = Driver(channel, "run", CONVERSATIONS)
        seconds, finished = driver.run(TIME_LIMIT)
        undelivered = wait_for_deliveries(channel)
    finally:
        stop_workers(workers)
    turns = CONVERSATIONS * len(SCRIPT)
    c.figure(f"{prefix}.conversations", CONVERSATIONS, "conv")
    c.figure(f"{prefix}.seconds", seconds, "s")
    c.figure(f"{prefix}.turns_per_s", turns / seconds, "turns/s")
    times = reply_times(channel, "run")
    if times:
        c.figure(f"{prefix}.reply_p50_ms", c.percentile(times, 50) * 1000, "ms")
        c.figure(f"{prefix}.reply_p99_ms", c.percentile(times, 99) * 1000, "ms")
    ok &= c.verdict(
        "check",
        finished and not driver.errors,
        f"{prefix}.finished",
        f"{driver.finished} of {CONVERSATIONS} conversations walked the whole flow"
        + (f" (within {TIME_LIMIT:g} s)" if not finished else "")
        + (f"; errors: {driver.errors[:3]}" if driver.errors else ""),
    )
    completed, detail = check_conversations(channel, "run", CONVERSATIONS)
    ok &= c.verdict("check", completed, f"{prefix}.completed", detail)
    ok &= c.verdict(
        "check",
        len(times) == turns,
        f"{prefix}.replies",
        f"{len(times)} of {turns} customer messages got a bot reply",
    )
    for task, runs in sorted(job_times().items()):
        if task not in ("bot_turn", "bot_fetch", "send_message"):
            continue  # the periodic jobs that ran meanwhile
        c.figure(f"{prefix}.job.{task}.count", runs["run"].__len__(), "jobs")
        c.figure(f"{prefix}.job.{task}.run_p50_ms", c.percentile(runs["run"], 50) * 1000, "ms")
        c.figure(f"{prefix}.job.{task}.wait_p50_ms", c.percentile(runs["wait"], 50) * 1000, "ms")
    failed = DBTaskResult.objects.filter(status="FAILED").count()
    ok &= c.verdict(
        "check",
        failed == 0 and undelivered == 0,
        f"{prefix}.jobs",
        f"{failed} failed jobs, {undelivered} bot replies not delivered",
    )
    return ok


def run_backend(name: str) -> bool:
    business, business_url = start_business()
    try:
        return run_on_throwaway(
            name,
            "bots",
            lambda backend: measure(backend, business_url),
            admin_email=ADMIN_EMAIL,
            workspace=WORKSPACE,
            env=ENV,
        )
    finally:
        business.terminate()
        business.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    return c.main_per_backend(__file__, __doc__, BACKENDS, run_backend, argv)


if __name__ == "__main__":
    sys.exit(main())
