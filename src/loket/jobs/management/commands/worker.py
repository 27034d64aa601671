from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from loket.jobs import services
from loket.jobs.worker import Worker, wake_workers


class Command(BaseCommand):
    help = (
        "Run background task workers (production: run one or more of these beside `loket serve`)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--threads", type=int, default=1, help="worker threads (default 1)")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after N tasks")

    def handle(self, *args, threads: int, max_tasks: int | None, **options) -> None:
        stop = threading.Event()

        def shutdown(signum, frame) -> None:
            if stop.is_set():
                raise SystemExit(1)
            self.stderr.write("stopping after the current task (again to force)")
            stop.set()
            wake_workers()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        workers = [Worker(stop=stop, max_tasks=max_tasks) for _ in range(max(1, threads))]
        self.stdout.write(
            f"loket worker: {len(workers)} thread(s), ids {[w.worker_id for w in workers]}"
        )
        self.stdout.flush()
        background = services.start_services(stop)
        extra = [threading.Thread(target=w.run, daemon=True) for w in workers[1:]]
        for thread in extra:
            thread.start()
        workers[0].run()
        stop.set()  # --max-tasks ends the background services too
        for thread in extra:
            thread.join()
        services.join_services(background)
