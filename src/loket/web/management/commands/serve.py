from __future__ import annotations

import logging

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from loket.jobs.worker import start_worker_threads, stop_worker_threads


class Command(BaseCommand):
    help = "Serve Loket (HTTP, webhooks, websockets); in embedded mode task workers run inside."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="web server processes")

    def handle(self, *args, host: str, port: int, workers: int, **options) -> None:
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError(
                "--workers > 1 needs REDIS_URL: websocket events must reach every process"
            )
        if workers > 1 and settings.EMBEDDED:
            raise CommandError("--workers > 1 needs PostgreSQL (DATABASE_URL)")
        common = dict(
            host=host,
            port=port,
            ws_per_message_deflate=False,  # 3-4x less memory per socket
            lifespan="on",
            log_level="info",
            # One log line per request costs CPU on the webhook path; the proxy in front logs.
            access_log=settings.LOKET_ACCESS_LOG,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
        )
        mode = "embedded (SQLite, in-memory realtime)" if settings.EMBEDDED else "production"
        self.stdout.write(f"Loket on http://{host}:{port}  [{mode}]")
        if workers > 1:
            if settings.LOKET_INPROCESS_WORKERS:
                self.stdout.write(
                    "  task workers do not run inside multi-process serve; run `loket worker`"
                )
            uvicorn.run("loket.asgi:application", workers=workers, **common)
            return
        from loket.asgi import application

        task_workers = settings.LOKET_INPROCESS_WORKERS
        stop, threads = start_worker_threads(task_workers) if task_workers else (None, [])
        if task_workers:
            self.stdout.write(f"  with {task_workers} task worker thread(s) in-process")
        self.stdout.flush()
        logging.getLogger("uvicorn.error").propagate = False
        try:
            uvicorn.Server(uvicorn.Config(application, **common)).run()
        finally:
            if stop is not None:
                stop_worker_threads(stop, threads)
