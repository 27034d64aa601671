"""Shared helpers for the benchmarks: the output format, machine facts, percentiles and the
load harnesses (threads for in-process and HTTP clients, processes for the raw database floors).

Output contract (parsed by people and scripts alike):

    bench: <name> <value> <unit>       one figure per line
    machine: <key> <value...>          facts about the machine and the software versions
    target: PASS|FAIL <name> <detail>  a stated performance target
    check: PASS|FAIL <name> <detail>   a correctness check made by the benchmark
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


# --- output ----------------------------------------------------------------------------------
def _format(value: float, unit: str) -> str:
    if isinstance(value, int):
        return str(value)
    if unit.endswith("/s"):
        return f"{value:.0f}"
    if unit == "x":
        return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def figure(name: str, value: float, unit: str) -> None:
    print(f"bench: {name} {_format(value, unit)} {unit}", flush=True)


def fact(key: str, value: object) -> None:
    print(f"machine: {key} {value}", flush=True)


def verdict(kind: str, ok: bool, name: str, detail: str) -> bool:
    print(f"{kind}: {'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)
    return ok


def note(text: str) -> None:
    print(f"# {text}", flush=True)


# --- machine ---------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(f"{PG_BASE_URL}/postgres", connect_timeout=3) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def redis_version() -> str:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def print_machine() -> None:
    import sqlite3

    fact("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fact("cpus", os.cpu_count())
    fact("cpu_model", cpu_model())
    fact("kernel", f"{platform.system()} {platform.release()}")
    fact("python", platform.python_version())
    fact("postgres", postgres_version())
    fact("sqlite", sqlite3.sqlite_version)
    fact("redis", redis_version())
    fact("loadavg", load_average())


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# --- statistics ------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Run:
    """The result of one load run. Latencies are in seconds, per operation; CPU in seconds over
    the measured interval (NaN when not measured)."""

    clients: int
    elapsed: float = 0.0
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    def report(self, name: str, unit: str, per: str) -> None:
        """``name`` is the rate's figure; the others go beside it (same prefix)."""
        base = name.rsplit(".", 1)[0]
        figure(name, self.rate, unit)
        figure(f"{base}.p50_ms", self.p50_ms, "ms")
        figure(f"{base}.p99_ms", self.p99_ms, "ms")
        ops = sum(self.outcomes.values()) or self.ok
        for who, seconds in self.cpu.items():
            figure(f"{base}.{who}_cpu_per_{per}", per_op_ms(seconds, ops), "ms")


# --- CPU accounting --------------------------------------------------------------------------
# On a small machine the load generator, Loket and the database share the cores, so CPU time per
# message says more than wall time: throughput <= cores / (sum of CPU per message).
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all its threads), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def pg_backend_pids(dbname: str) -> list[int]:
    """The server processes working for ``dbname`` (backends, autovacuum), from pg_stat_activity."""
    import psycopg

    with psycopg.connect(f"{PG_BASE_URL}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds used by a set of processes during a ``with`` block. ``pids`` is called at the
    start and at the end; a process that appears in between counts in full."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.seconds = 0.0

    def __enter__(self) -> CpuMeter:
        self.start = {pid: process_cpu_seconds(pid) for pid in self.pids()}
        return self

    def __exit__(self, *exc) -> None:
        total = 0.0
        for pid in self.pids():
            now = process_cpu_seconds(pid)
            if now is not None:
                total += now - (self.start.get(pid) or 0.0)
        self.seconds = total


def per_op_ms(seconds: float, ops: int) -> float:
    return seconds * 1000 / ops if ops else math.nan


class Meters:
    """CPU meters started and stopped together around a measured interval.

    ``own``: this process (all threads); ``pids``: name -> callable listing process ids."""

    def __init__(self, own: str | None = None, **pids: Callable[[], list[int]]) -> None:
        self.own = own
        self.meters = {name: CpuMeter(fn) for name, fn in pids.items()}

    def start(self) -> None:
        self._own = time.process_time()
        for meter in self.meters.values():
            meter.__enter__()

    def stop(self, run: Run) -> None:
        if self.own:
            run.cpu[self.own] = time.process_time() - self._own
        for name, meter in self.meters.items():
            meter.__exit__(None, None, None)
            run.cpu[name] = meter.seconds


# --- harness: threads ------------------------------------------------------------------------
# ``setup(index)`` runs in the client thread before the clock starts and returns
# ``(op, teardown)``; ``op(n, rng)`` performs operation number ``n`` and returns an outcome
# string, "ok" meaning success. Operations are shared out until ``total`` were started or
# ``seconds`` passed, whichever is first.
Op = Callable[[int, random.Random], str]


def run_threads(
    clients: int,
    setup: Callable[[int], tuple[Op, Callable[[], None]]],
    *,
    total: int,
    seconds: float,
    seed: int = 1,
    meters: Meters | None = None,
) -> Run:
    run = Run(clients)
    lock = threading.Lock()
    started = 0
    ready = threading.Barrier(clients + 1)  # every client set up
    go = threading.Barrier(clients + 1)  # meters started, clock running
    deadline = [math.inf]
    errors: list[BaseException] = []

    def client(index: int) -> None:
        nonlocal started
        rng = random.Random(seed * 1000 + index)
        latencies: list[float] = []
        outcomes: Counter = Counter()
        try:
            op, teardown = setup(index)
        except BaseException as exc:
            errors.append(exc)
            ready.abort()
            go.abort()
            return
        try:
            ready.wait()
            go.wait()
            clock = time.perf_counter
            while True:
                with lock:
                    if started >= total or clock() >= deadline[0]:
                        break
                    started += 1
                    n = started
                t0 = clock()
                outcome = op(n, rng)
                latencies.append(clock() - t0)
                outcomes[outcome] += 1
        except threading.BrokenBarrierError:
            return
        except BaseException as exc:
            errors.append(exc)
        finally:
            teardown()
            with lock:
                run.latencies.extend(latencies)
                run.outcomes.update(outcomes)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        if meters:
            meters.start()
        start = time.perf_counter()
        deadline[0] = start + seconds
        go.wait()
    except threading.BrokenBarrierError:
        start = time.perf_counter()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - start
    if meters:
        meters.stop(run)
    if errors:
        raise errors[0]
    run.ok = run.outcomes.get("ok", 0)
    run.failed = sum(run.outcomes.values()) - run.ok
    return run


# --- harness: processes ----------------------------------------------------------------------
# For the raw floors: one OS process per client (forked before Django is imported), so the
# floor is never limited by this process's GIL. ``work(index, seconds, gate)`` runs in the
# child, opens its own connection and calls ``timed_loop(op, seconds, gate)`` with it; the gate
# holds every client until all are connected, and keeps them (and their database sessions)
# alive until the parent has read the CPU meters.
class Gate:
    def __init__(self, ctx) -> None:
        self.ready_q = ctx.Queue()
        self.done_q = ctx.Queue()
        self.start = ctx.Event()
        self.release = ctx.Event()


def _child(work, index: int, seconds: float, gate: Gate, results) -> None:
    try:
        count, latencies, elapsed = work(index, seconds, gate)
        results.put((count, latencies, elapsed, None))
    except BaseException as exc:
        gate.ready_q.put(index)
        gate.done_q.put(index)
        results.put((0, [], 0.0, f"{type(exc).__name__}: {exc}"))


def run_processes(
    work, clients: int, seconds: float, *, db_pids: Callable[[], list[int]] | None = None
) -> Run:
    ctx = multiprocessing.get_context("fork")
    gate = Gate(ctx)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(work, i, seconds, gate, results), daemon=True)
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    pids = [proc.pid for proc in procs]
    meters = Meters(client=lambda: pids, **({"db": db_pids} if db_pids else {}))
    run = Run(clients)
    try:
        for _ in range(clients):
            gate.ready_q.get(timeout=60)
        meters.start()
        gate.start.set()
        for _ in range(clients):
            gate.done_q.get(timeout=seconds + 60)
        meters.stop(run)
    finally:
        gate.release.set()
    failures, elapsed = [], []
    for _ in range(clients):
        count, latencies, took, error = results.get(timeout=60)
        if error:
            failures.append(error)
        run.ok += count
        run.latencies.extend(latencies)
        elapsed.append(took)
    for proc in procs:
        proc.join(timeout=30)
    if failures:
        raise RuntimeError(f"floor client failed: {failures[0]}")
    run.elapsed = max(elapsed)
    run.outcomes["ok"] = run.ok
    return run


def timed_loop(op: Callable[[int], None], seconds: float, gate: Gate):
    """The body of a floor client: run ``op(i)`` for ``seconds`` from the common start."""
    gate.ready_q.put(os.getpid())
    gate.start.wait()
    clock = time.perf_counter
    latencies: list[float] = []
    start = clock()
    deadline = start + seconds
    i = 0
    while clock() < deadline:
        t0 = clock()
        op(i)
        latencies.append(clock() - t0)
        i += 1
    took = clock() - start
    gate.done_q.put(os.getpid())
    gate.release.wait(timeout=120)
    return i, latencies, took


# --- misc ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python() -> str:
    return sys.executable


def main_per_backend(
    script: str,
    description: str,
    backends: tuple[str, ...],
    run_backend: Callable[[str], bool],
    argv: list[str] | None = None,
) -> int:
    """A benchmark's command line: ``--backend NAME`` runs one backend in this process;
    without it, each backend runs as ``script --backend NAME`` in a subprocess of its own (own
    settings, own throw-away database). The exit status is the worst of them."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--backend", choices=backends, help="one backend (default: all)")
    parser.add_argument("--no-machine", action="store_true", help="skip the machine facts")
    args = parser.parse_args(argv)
    if not args.no_machine:
        print_machine()
    if args.backend:
        return 0 if run_backend(args.backend) else 1
    worst = 0
    for backend in backends:
        done = subprocess.run([python(), script, "--backend", backend, "--no-machine"], check=False)
        worst = max(worst, done.returncode)
    return worst
