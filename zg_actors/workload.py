"""What every workload job in `jobs/` shares: its command line, where it runs (a running
deployment, or the embedded Ray with the pillars it needs brought up), progress on stderr,
seeded data, pacing, and its final report (throughput, latency p50/p99, errors).

The figures (`Tally`, `summarize`, `percentile`, `mixed_sizes`, `seeded_bytes`, `Pacer`,
`Background`) need no Ray; `session`, `gateway_address` and `finish` talk to Ray and the
terminal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MB = 1_000_000  # the reports' MB/s are decimal megabytes, like the benches'
PROGRESS_INTERVAL_S = 5.0  # a job prints its progress line this often
ERROR_TEXT_CHARS = 160  # an error kind in a report is its class and the message's start

Clock = Callable[[], float]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def error_kind(exc: BaseException) -> str:
    """How a report counts an error: its class and the start of its message."""
    return f"{type(exc).__name__}: {str(exc)[:ERROR_TEXT_CHARS]}"


@dataclass
class Tally:
    """Operations done, their latencies and bytes, and errors by kind; safe to share
    between the threads of a job."""

    latencies_s: list[float] = field(default_factory=list)
    bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # a job's own sums (tokens, fees)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ops(self) -> int:
        return len(self.latencies_s)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def ok(self, latency_s: float, nbytes: int = 0) -> None:
        with self._lock:
            self.latencies_s.append(latency_s)
            self.bytes += nbytes

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self.counts[name] = self.counts.get(name, 0) + amount

    def error(self, kind: str | BaseException) -> None:
        text = kind if isinstance(kind, str) else error_kind(kind)
        with self._lock:
            self.errors[text] = self.errors.get(text, 0) + 1


def summarize(tally: Tally, seconds: float, unit: str = "ops") -> dict[str, Any]:
    """One phase of a job as a report: operations and their rate, MB/s when bytes moved,
    latency p50/p99 and errors (total and by kind)."""
    span = max(seconds, 1e-9)
    report: dict[str, Any] = {unit: tally.ops, "seconds": round(seconds, 3),
                              f"{unit}_per_s": tally.ops / span,
                              "latency_p50_s": percentile(tally.latencies_s, 50),
                              "latency_p99_s": percentile(tally.latencies_s, 99),
                              "errors": tally.error_count, "error_kinds": dict(tally.errors)}
    if tally.bytes:
        report["bytes"] = tally.bytes
        report["mb_per_s"] = tally.bytes / MB / span
    return report


def mixed_sizes(count: int, min_bytes: int, max_bytes: int, seed: int) -> list[int]:
    """`count` file sizes spread evenly on a log scale between min_bytes and max_bytes (a
    dataset has many small files and a few big ones), always the same for one seed."""
    if not 0 < min_bytes <= max_bytes:
        raise ValueError(f"sizes need 0 < min {min_bytes} <= max {max_bytes}")
    rng = np.random.default_rng(seed)
    exponents = rng.uniform(np.log(min_bytes), np.log(max_bytes), count)
    return [int(min(max_bytes, max(min_bytes, round(float(np.exp(e)))))) for e in exponents]


def seeded_bytes(seed: int, index: int, size: int) -> bytes:
    """The bytes of item `index` of a seeded dataset: regenerated to verify a download."""
    return np.random.default_rng([seed, index]).integers(0, 256, size, dtype=np.uint8).tobytes()


class Pacer:
    """Send times at a target rate: `due()` says how many sends are due now (none
    skipped after a stall; the deficit is sent at once, as a sequencer catches up)."""

    def __init__(self, rate_per_s: float, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_s}")
        self.interval_s = 1.0 / rate_per_s
        self.clock = clock
        self.start = clock()
        self.sent = 0

    def due(self) -> int:
        elapsed = self.clock() - self.start
        owed = int(elapsed / self.interval_s) + 1 - self.sent
        return max(0, owed)

    def mark(self, count: int = 1) -> None:
        self.sent += count

    def wait_s(self) -> float:
        """Seconds until the next send is due."""
        return max(0.0, self.start + self.sent * self.interval_s - self.clock())


class Background:
    """An operation repeated in a thread until stopped (a closed-loop load kept on while
    something else is measured), each completion or error stamped with its time, so that
    any window of the run can be reported."""

    def __init__(self, name: str, operation: Callable[[int], int],
                 clock: Clock = time.monotonic) -> None:
        """`operation(i)` does the i-th unit of work and returns the bytes it moved."""
        self.name = name
        self.operation = operation
        self.clock = clock
        self.done: list[tuple[float, float, int]] = []  # (finished at, latency s, bytes)
        self.failed: list[tuple[float, str]] = []  # (failed at, error kind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zg-{name}", daemon=True)

    def start(self) -> Background:
        self._thread.start()
        return self

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            began = self.clock()
            try:
                moved = self.operation(count)
            except Exception as exc:  # reported in its window; the load goes on
                self.failed.append((self.clock(), error_kind(exc)))
                self._stop.wait(1.0)
            else:
                self.done.append((self.clock(), self.clock() - began, moved))
            count += 1

    def window(self, since: float, until: float) -> dict[str, Any]:
        """The report of what finished in [since, until] (clock times)."""
        tally = Tally()
        for at, latency, moved in list(self.done):
            if since <= at <= until:
                tally.ok(latency, moved)
        for at, kind in list(self.failed):
            if since <= at <= until:
                tally.error(kind)
        return summarize(tally, until - since)


class Progress:
    """A progress line on stderr every PROGRESS_INTERVAL_S (and on demand), quiet when
    asked: stdout keeps only the report."""

    def __init__(self, quiet: bool = False, interval_s: float = PROGRESS_INTERVAL_S,
                 clock: Clock = time.monotonic, write: Callable[[str], None] | None = None
                 ) -> None:
        self.quiet = quiet
        self.interval_s = interval_s
        self.clock = clock
        self.start = clock()
        self._next = self.start + interval_s
        self._write = write or _stderr

    def say(self, text: str) -> None:
        if not self.quiet:
            self._write(f"[{self.clock() - self.start:6.1f}s] {text}")

    def tick(self, text: Callable[[], str]) -> None:
        """Print text() if a progress line is due."""
        now = self.clock()
        if now >= self._next:
            self._next = now + self.interval_s
            self.say(text())


def _stderr(text: str) -> None:
    from zg_actors.cli_common import console

    console.print(text, highlight=False, markup=False)


# ---- command line, deployment and output -----------------------------------------------
def job_parser(doc: str) -> argparse.ArgumentParser:
    """A job's parser with the options every job has; its description is the docstring's
    first paragraph, the usage example its second."""
    first, _, rest = doc.partition("\n\n")
    parser = argparse.ArgumentParser(description=first, epilog=rest,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="F", help="deployment YAML (default: devnet)")
    parser.add_argument("--address", metavar="A",
                        help="Ray cluster address; default: the cluster of `ray job submit` "
                        "(RAY_ADDRESS), else an embedded Ray with the pillars this job "
                        "needs brought up in a temporary data dir and torn down after")
    parser.add_argument("--json", action="store_true",
                        help="print the final report as JSON on stdout (progress stays on "
                        "stderr)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def embedded(args: argparse.Namespace) -> bool:
    """Whether the job runs on its own embedded Ray (no --address and no RAY_ADDRESS)."""
    return not args.address and not os.environ.get("RAY_ADDRESS")


@contextmanager
def session(args: argparse.Namespace, pillars: list[str], progress: Progress,
            embedded_cpus: float = 0.0) -> Iterator[Any]:
    """The job's config, with Ray connected and `pillars` up: on a running deployment
    NotUp names a missing pillar; on the embedded Ray they are brought up first (in a
    temporary data dir, removed after), with at least `embedded_cpus` logical CPUs."""
    from zg_actors.cli_common import reports_only_on_stdout

    with reports_only_on_stdout(getattr(args, "json", False)):
        yield from _session(args, pillars, progress, embedded_cpus)


def _session(args: argparse.Namespace, pillars: list[str], progress: Progress,
             embedded_cpus: float) -> Iterator[Any]:
    from zg_actors import runtime, stack
    from zg_actors.config import load_config

    config = load_config(args.config)
    if not embedded(args):
        runtime.connect(config, args.address or "auto")
        try:
            for pillar in pillars:
                stack.require(pillar, config)
            yield config
        finally:
            runtime.shutdown()
        return
    data_dir = tempfile.mkdtemp(prefix="zg-job-")
    config = config.replace(**{"data_dir": data_dir,
                               "ray.num_cpus": max(config.ray.num_cpus, embedded_cpus)})
    runtime.connect(config, None)
    try:
        progress.say(f"embedded Ray: bringing up {', '.join(pillars)} in {data_dir}")
        stack.bring_up(config, pillars, progress.say)
        yield config
    finally:
        runtime.teardown()
        runtime.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


def gateway_address(given: str | None) -> str:
    """The DA gRPC gateway: `given` (HOST:PORT), else where the deployment's gateway actor
    listens (it answers with its node's address and port)."""
    if given:
        return given
    import ray

    from zg_actors.rpc.gateway import GATEWAY_NAME

    where = ray.get(ray.get_actor(GATEWAY_NAME).start.remote(), timeout=60)
    return f"{where['host']}:{where['port']}"


def finish(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """Print the report (JSON with --json, else a table); exit status 1 when it counts
    errors, so that a submitted job that failed work shows FAILED."""
    from rich.console import Console
    from rich.table import Table

    from zg_actors.cli_common import print_json

    if args.json:
        print_json(report)
    else:
        table = Table(title=f"{report['job']} report")
        table.add_column("figure")
        table.add_column("value", overflow="fold")  # roots and tx hashes in full
        for key, value in _flat(report):
            table.add_row(key, _shown(value))
        Console().print(table)
    return 1 if report.get("errors") else 0


def _flat(report: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in report.items():
        if isinstance(value, dict) and value and key != "error_kinds":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _shown(value: Any) -> str:
    import json

    from zg_actors.cli_common import plain

    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bytes):
        return plain(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(plain(value))
    return str(value)
