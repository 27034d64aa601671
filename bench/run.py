"""``make bench``: run the benchmarks and print their figures.

    python bench/run.py                   # every scenario
    python bench/run.py --only ingest.pg  # the scenarios whose name starts with this
    python bench/run.py --list

Each scenario runs in its own subprocess (its own settings and throw-away database). The output
is also written to bench/results/<UTC time>.txt (git-ignored). The exit status is non-zero when a
scenario fails a check or a stated target. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import _common as c

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

# name -> command (relative to bench/); names are matched by prefix with --only.
SCENARIOS: dict[str, list[str]] = {
    "ingest.pg": ["ingest.py", "--backend", "pg", "--no-machine"],
    "ingest.sqlite": ["ingest.py", "--backend", "sqlite", "--no-machine"],
    "inbox.pg": ["inbox.py", "--backend", "pg", "--no-machine"],
    "inbox.sqlite": ["inbox.py", "--backend", "sqlite", "--no-machine"],
    "email.pg": ["mail.py", "--backend", "pg", "--no-machine"],
    "email.sqlite": ["mail.py", "--backend", "sqlite", "--no-machine"],
    "rules.pg": ["rules.py", "--backend", "pg", "--no-machine"],
    "rules.sqlite": ["rules.py", "--backend", "sqlite", "--no-machine"],
    "widget": ["widget.py", "--no-machine"],
    "bots.pg": ["bots.py", "--backend", "pg", "--no-machine"],
    "bots.sqlite": ["bots.py", "--backend", "sqlite", "--no-machine"],
    "knowledge.pg": ["knowledge.py", "--backend", "pg", "--no-machine"],
    "knowledge.sqlite": ["knowledge.py", "--backend", "sqlite", "--no-machine"],
    "knowledge.memory": ["knowledge.py", "--backend", "memory", "--no-machine"],
    "knowledge.ann": ["knowledge_ann.py", "--no-machine"],
    "reports.pg": ["reports.py", "--backend", "pg", "--no-machine"],
    "reports.sqlite": ["reports.py", "--backend", "sqlite", "--no-machine"],
}


def select(only: str | None) -> list[str]:
    if not only:
        return list(SCENARIOS)
    return [name for name in SCENARIOS if name.startswith(only)]


class Tee:
    """Write to the terminal and to the results file."""

    def __init__(self, stream, path: Path) -> None:
        self.stream = stream
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in main()

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()


def run_scenario(name: str) -> int:
    script, *rest = SCENARIOS[name]
    child = subprocess.Popen(
        [c.python(), "-u", str(BENCH_DIR / script), *rest],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert child.stdout is not None
    for line in child.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
    return child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Loket's benchmarks.")
    parser.add_argument("--only", help="run the scenarios whose name starts with this")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    names = select(args.only)
    if not names:
        print(f"no scenario matches {args.only!r}; one of: {', '.join(SCENARIOS)}")
        return 2
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = RESULTS_DIR / f"{stamp}.txt"
    terminal = sys.stdout
    sys.stdout = tee = Tee(terminal, results)
    try:
        c.print_machine()
        started = time.monotonic()
        failed = []
        for name in names:
            c.note(f"scenario {name}")
            if run_scenario(name) != 0:
                failed.append(name)
        c.note(f"{len(names)} scenario(s) in {time.monotonic() - started:.0f}s; saved in {results}")
        if failed:
            c.note(f"FAILED: {', '.join(failed)}")
        return 1 if failed else 0
    finally:
        sys.stdout = terminal
        tee.file.close()


if __name__ == "__main__":
    sys.exit(main())
