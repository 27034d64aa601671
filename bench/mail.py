"""Email benchmark: mails parsed, and parsed + ingested, per second.

    python bench/mail.py                      # both backends, each in its own subprocess
    python bench/mail.py --backend sqlite     # one backend in this process

Each mail is a realistic customer mail: multipart/mixed with a multipart/alternative body (a
~50 KB HTML part and its plain-text version, with a quoted reply history) and a 200 KB PDF
attachment, base64-encoded as mail clients send it. Every other mail answers the one before it
(In-Reply-To/References), so threading by references is measured as well as new conversations.

Per backend, on a throw-away database (PostgreSQL ``loket_bench_<pid>`` in production mode, or
SQLite in a temp dir as ``make run`` has it), after ``loket migrate``:

1. ``email.parse``: ``parse_email()`` alone, in this process (the connector's CPU per mail);
2. ``email.ingest.<db>``: ``journal.record()`` of the raw mail, as the IMAP poller and
   ``loket smtpd`` call it: journal row, parse, sanitise, contact, thread, message, attachment
   file written to the media directory, one commit; one client, as one mailbox poller is.

No target is set for these figures; they are compared with the parse-only rate (the ceiling
for a single poller) and printed with the machine they were measured on.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import _common as c
from ingest import WORKSPACE, Backend, loket, setup_django

BACKENDS = ("pg", "sqlite")
SECONDS = 20.0
PARSE_SECONDS = 10.0
HTML_BYTES = 50_000
ATTACHMENT_BYTES = 200_000

WORDS = tuple(
    [
        "order",
        "delivery",
        "refund",
        "invoice",
        "package",
        "damaged",
        "charger",
        "warranty",
        "booking",
        "hotel",
        "flight",
        "bestelling",
        "levering",
        "terugbetaling",
        "factuur",
        "pakket",
        "beschadigd",
        "oplader",
        "garantie",
        "boeking",
        "please",
        "thanks",
        "question",
        "address",
        "tracking",
        "number",
        "today",
        "tomorrow",
        "week",
    ]
)


def _sentence(rng: random.Random, words: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def make_mail(index: int, rng: random.Random, previous: str | None) -> tuple[bytes, str]:
    """One mail (raw bytes) and its Message-ID (without <>)."""
    message_id = make_msgid(domain="customer.example")
    mail = EmailMessage()
    mail["From"] = f"Customer {index % 500} <customer{index % 500}@customer.example>"
    mail["To"] = "Support <support@shop.example>"
    mail["Subject"] = (
        f"Re: Order #{100000 + index // 2}" if previous else f"Order #{100000 + index}"
    )
    mail["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    mail["Message-ID"] = message_id
    if previous:
        mail["In-Reply-To"] = f"<{previous}>"
        mail["References"] = f"<{previous}>"
    paragraphs = []
    size = 0
    while size < HTML_BYTES:
        text = " ".join(_sentence(rng) for _ in range(6))
        paragraphs.append(text)
        size += len(text) + 40
    history = (
        '<blockquote type="cite">'
        + "".join(f"<p>{_sentence(rng)}</p>" for _ in range(20))
        + "</blockquote>"
    )
    html = (
        '<html><body><div style="font-family:Arial">'
        + "".join(f'<p style="margin:0 0 8px">{p}</p>' for p in paragraphs)
        + '<div class="gmail_quote"><div class="gmail_attr">On Mon, 2 Dec 2026 at 10:00, '
        "Support wrote:</div>" + history + "</div></div></body></html>"
    )
    mail.set_content("\n\n".join(paragraphs) + "\n\nOn Mon, 2 Dec 2026, Support wrote:\n> Hello")
    mail.add_alternative(html, subtype="html")
    mail.add_attachment(
        rng.randbytes(ATTACHMENT_BYTES), maintype="application", subtype="pdf",
        filename=f"invoice-{index}.pdf",
    )  # fmt: skip
    return mail.as_bytes(), message_id.strip("<>")


def mail_stream(seed: int = 11):
    """Endless mails; every other one answers the one before it."""
    rng = random.Random(seed)
    previous = None
    index = 0
    while True:
        raw, message_id = make_mail(index, rng, previous if index % 2 else None)
        yield raw
        previous = message_id
        index += 1


def create_email_channel():
    from loket.connectors.registry import get_connector
    from loket.inbox.services.channels import create_channel
    from loket.tenancy.models import Workspace

    workspace = Workspace.objects.get(slug=WORKSPACE)
    channel, _ = create_channel(
        workspace,
        get_connector("email"),
        name="bench mailbox",
        config={
            "address": "support@shop.example",
            "inbound": "forward",
            "smtp_host": "smtp.shop.example",
        },
    )
    return channel


def measure_parse(mails: list[bytes]) -> float:
    from loket.connectors.email.parsing import parse_email

    for raw in mails[:5]:
        parse_email(raw)
    latencies = []
    started = time.perf_counter()
    index = 0
    while time.perf_counter() - started < PARSE_SECONDS:
        t = time.perf_counter()
        parse_email(mails[index % len(mails)])
        latencies.append(time.perf_counter() - t)
        index += 1
    elapsed = time.perf_counter() - started
    rate = index / elapsed
    c.figure("email.parse.msgs_per_s", rate, "msg/s")
    c.figure("email.parse.p50_ms", c.percentile(latencies, 50) * 1000, "ms")
    c.figure("email.parse.p99_ms", c.percentile(latencies, 99) * 1000, "ms")
    return rate


def measure_ingest(name: str, mails, parse_rate: float) -> bool:
    from loket.inbox.models import InboundEvent, InboundStatus, Message
    from loket.inbox.services import journal

    channel = create_email_channel()
    meta = {"source": "smtp", "recipients": ["support@shop.example"]}
    latencies, statuses = [], {}
    done = 0
    busy = 0.0  # time inside record(): making the next mail is not counted
    while busy < SECONDS:
        raw = next(mails)
        t = time.perf_counter()
        outcome = journal.record(channel, raw, meta, content_type="message/rfc822")
        latencies.append(time.perf_counter() - t)
        busy += latencies[-1]
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        done += 1
    rate = done / busy
    c.figure(f"email.ingest.{name}.msgs_per_s", rate, "msg/s")
    c.figure(f"email.ingest.{name}.p50_ms", c.percentile(latencies, 50) * 1000, "ms")
    c.figure(f"email.ingest.{name}.p99_ms", c.percentile(latencies, 99) * 1000, "ms")
    c.figure(f"email.ingest.{name}.ratio_to_parse", rate / parse_rate, "x")
    threaded = Message.objects.filter(channel=channel, data__thread__by="references").count()
    stored = Message.objects.filter(channel=channel).count()
    failed = InboundEvent.objects.filter(channel=channel, status=InboundStatus.FAILED).count()
    return c.verdict(
        "check",
        stored == done and failed == 0 and threaded >= done // 2 - 1,
        f"email.ingest.{name}",
        f"{done} mails recorded: {stored} messages stored, {threaded} threaded by references, "
        f"{failed} failed journal rows; outcomes {statuses}",
    )


def run_backend(name: str) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix=f"loket-bench-email-{name}-"))
    backend = Backend(name, tmp)
    ok = True
    c.note(f"{backend.label}: throw-away database, load average {c.load_average()}")
    try:
        backend.create()
        loket(backend, "migrate", "--noinput")
        loket(backend, "createadmin", "--email", "owner@bench.example", "--workspace",
              WORKSPACE, "--password", "bench-password-not-used")  # fmt: skip
        os.environ["LOKET_MEDIA_ROOT"] = str(tmp / "media")
        setup_django(backend)
        stream = mail_stream()
        sample = [next(stream) for _ in range(100)]
        c.note(f"mails of {sum(map(len, sample)) // len(sample) // 1000} KB each")
        parse_rate = measure_parse(sample)
        ok &= measure_ingest(name, mail_stream(seed=12), parse_rate)
    except Exception as exc:
        ok = c.verdict("check", False, f"email.{name}", f"benchmark error: {exc!r}")
        raise
    finally:
        from inbox import close_django

        close_django()
        backend.drop()
    return ok


def main(argv: list[str] | None = None) -> int:
    return c.main_per_backend(__file__, __doc__, BACKENDS, run_backend, argv)


if __name__ == "__main__":
    sys.exit(main())
