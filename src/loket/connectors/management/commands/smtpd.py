from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from loket.connectors.email import receiving, smtpd


class Command(BaseCommand):
    help = (
        "Receive mail over SMTP for email channels set to 'forward' (a forwarding address such "
        "as support@ -> <channel uuid>@LOKET_SMTPD_DOMAIN). Answers 250 only once a mail is "
        "committed, 451 (try later) when the database is unavailable."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.LOKET_SMTPD_HOST)
        parser.add_argument("--port", type=int, default=settings.LOKET_SMTPD_PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        recipients = receiving.Recipients()
        handler = smtpd.LoketSmtpHandler(
            accepts=recipients.accepts,
            store=lambda mail: receiving.store(recipients, mail),
            max_message_bytes=settings.LOKET_ATTACHMENT_MAX_BYTES + 10 * 1024 * 1024,
            hostname=settings.LOKET_SMTPD_DOMAIN,
        )
        controller = smtpd.start_server(handler, host=host, port=port)
        self.stdout.write(f"loket smtpd on {host}:{port} for *@{settings.LOKET_SMTPD_DOMAIN}")
        self.stdout.flush()
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        controller.stop()
