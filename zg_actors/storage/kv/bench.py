"""`zg bench kv`: KV writes committed per second, write-to-readable latency and kv_getValue
reads per second through the JSON-RPC, beside the same puts and gets on a single-process
LMDB measured in the same run.

1. The network (an embedded Ray with the chain, the storage miners, the KV nodes and the
   kv_* JSON-RPC): for --duration seconds each, WRITERS threads send KV txs through the
   SDK's Batcher (one account, consecutive nonces), every tx writing fresh keys so that
   none conflicts:
   - batched: BATCH_WRITES small writes (VALUE_BYTES each) per flow entry;
   - single: one write per flow entry.
   A tx counts once its last key reads back through kv_getValue with its value; its
   latency runs from Batcher.exec to that read (upload until FINALIZED, a KV node's
   download, verification and replay, the RPC). Then READERS threads read the written
   keys through kv_getValue (HTTP JSON-RPC, Ray Serve, a KV node) for --duration
   seconds.
2. The anchor, in this process after the network stopped: the same rows committed to
   one LMDB environment with the KV core (KVState over LmdbStore, one durable LMDB
   transaction per tx, as a KV node commits) and the same gets, no chain, no miners, no
   Ray, no HTTP. Each network figure is shown as a ratio to it.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.table import Table

from zg_actors.config import Config
from zg_actors.errors import Unavailable
from zg_actors.storage.kv.client import RESULT_WAIT_S, Batcher, KvClient
from zg_actors.storage.kv.encoding import stream_id_from_name
from zg_actors.storage.kv.state import KVState
from zg_actors.storage.kv.store import LmdbStore
from zg_actors.store import Store
from zg_actors.workload import Progress, Tally, summarize

BENCH_STREAM = "zg-bench-kv"  # the stream the bench writes (the embedded KV nodes follow it)
BATCH_WRITES = 100  # small writes per flow entry in the batched figure
VALUE_BYTES = 32  # each written value
WRITERS = 4  # KV txs in flight at once
READERS = 4  # kv_getValue calls in flight at once
ANCHOR_MIN_TXS = 200  # the anchor commits at least this many txs per figure (timing floor)
ANCHOR_MIN_READS = 10_000  # and reads at least this many keys
READ_KEYS = 200  # distinct keys the read figure cycles through
READABLE_POLL_S = 0.02  # between kv_getValue looks for a tx's last key
PILLARS = ["chain", "storage", "kv"]
ANCHOR_DB = "kv"


def bench_key(phase: str, tx: int, index: int) -> bytes:
    return f"{phase}/{tx:08d}/{index:04d}".encode()


def bench_value(tx: int) -> bytes:
    """A value unique to its tx, so that reading it back shows that tx replayed."""
    return f"{tx:08d}".encode().ljust(VALUE_BYTES, b".")


def tx_writes(phase: str, tx: int, writes: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of the phase's tx number `tx`."""
    value = bench_value(tx)
    return [(bench_key(phase, tx, i), value) for i in range(writes)]


# ---- the network ------------------------------------------------------------------------
def wait_readable(kv: KvClient, stream_id: bytes, key: bytes, value: bytes, tx_seq: int,
                  timeout_s: float = RESULT_WAIT_S) -> None:
    """Return once `key` reads `value` through kv_getValue; Unavailable if the tx got a
    result other than Commit, or nothing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while kv.get_value(stream_id, key).data != value:
        result = kv.transaction_result(tx_seq)
        if result not in (None, "Commit"):
            raise Unavailable(f"KV tx {tx_seq}: {result}", tx_seq=tx_seq)
        if time.monotonic() > deadline:
            raise Unavailable(f"KV tx {tx_seq} not readable after {timeout_s:.0f} s",
                              tx_seq=tx_seq)
        time.sleep(READABLE_POLL_S)


def _closed_loop(threads: int, duration_s: float, operation: Callable[[int], None],
                 tally: Tally, progress: Progress, what: Callable[[], str]) -> float:
    """`operation(i)` for i = 0, 1, ... from `threads` threads until `duration_s` passed;
    errors are tallied by kind. The seconds the loop ran (the last operations included)."""
    numbers = itertools.count()
    start = time.monotonic()
    deadline = start + duration_s

    def loop() -> None:
        while time.monotonic() < deadline:
            try:
                operation(next(numbers))
            except Exception as exc:  # counted in the report; the load goes on
                tally.error(exc)
            progress.tick(what)

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(loop) for _ in range(threads)]:
            done.result()
    return time.monotonic() - start


def write_phase(kv: KvClient, storage: Any, network_id: int | None, stream_id: bytes,
                phase: str, writes_per_tx: int, duration_s: float, writers: int,
                progress: Progress) -> dict[str, Any]:
    """KV txs of `writes_per_tx` fresh keys each for `duration_s`: committed txs and
    writes per second, write-to-readable latency."""
    tally = Tally()

    def one(tx: int) -> None:
        pairs = tx_writes(phase, tx, writes_per_tx)
        batcher = Batcher(kv, storage, network_id)
        for key, value in pairs:
            batcher.set(stream_id, key, value)
        began = time.monotonic()
        receipt = batcher.exec()
        wait_readable(kv, stream_id, pairs[-1][0], pairs[-1][1], receipt["tx_seq"])
        tally.ok(time.monotonic() - began, writes_per_tx * VALUE_BYTES)
        tally.count(writes=writes_per_tx)

    progress.say(f"{phase}: {writes_per_tx} write(s) per flow entry, {writers} txs in "
                 f"flight, {duration_s:.0f} s")
    seconds = _closed_loop(writers, duration_s, one, tally, progress,
                           lambda: f"{phase}: {tally.ops} txs readable, "
                           f"{tally.error_count} errors")
    report = summarize(tally, seconds, unit="txs")
    report["writes_per_tx"] = writes_per_tx
    report["writes"] = tally.counts.get("writes", 0)
    report["writes_per_s"] = report["writes"] / max(seconds, 1e-9)
    return report


def read_phase(kv: KvClient, stream_id: bytes, keys: list[tuple[bytes, bytes]],
               duration_s: float, readers: int, progress: Progress) -> dict[str, Any]:
    """kv_getValue of the written keys, round robin, for `duration_s`; a read that does
    not give the written value is an error."""
    if not keys:
        raise Unavailable("no KV writes were readable: nothing to read back")
    tally = Tally()

    def one(i: int) -> None:
        key, value = keys[i % len(keys)]
        began = time.monotonic()
        found = kv.get_value(stream_id, key)
        if found.data != value:
            raise Unavailable(f"kv_getValue of {key!r} gave {found.data!r}, wrote {value!r}")
        tally.ok(time.monotonic() - began, len(value))

    progress.say(f"reads: kv_getValue of {len(keys)} keys, {readers} calls in flight, "
                 f"{duration_s:.0f} s")
    seconds = _closed_loop(readers, duration_s, one, tally, progress,
                           lambda: f"reads: {tally.ops} done, {tally.error_count} errors")
    return summarize(tally, seconds, unit="reads")


def readable_pairs(phase: str, txs: int, writes_per_tx: int) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the phase's first `txs` txs."""
    return [pair for tx in range(txs) for pair in tx_writes(phase, tx, writes_per_tx)]


def measure_kv(kv: KvClient, storage: Any, network_id: int | None, stream_id: bytes,
               duration_s: float, progress: Progress, batch_writes: int = BATCH_WRITES,
               writers: int = WRITERS, readers: int = READERS) -> dict[str, Any]:
    """The three network figures on a running KV layer that follows `stream_id`."""
    batched = write_phase(kv, storage, network_id, stream_id, "batched", batch_writes,
                          duration_s, writers, progress)
    single = write_phase(kv, storage, network_id, stream_id, "single", 1, duration_s,
                         writers, progress)
    # Reads of keys known to be written: a failed tx leaves a gap in the numbers, so up
    # to READ_KEYS keys are read back once first and only the readable ones kept.
    written = (readable_pairs("single", single["txs"] + single["errors"], 1)
               + readable_pairs("batched", batched["txs"] + batched["errors"], batch_writes))
    keys = [(k, v) for k, v in written[:READ_KEYS] if kv.get_value(stream_id, k).data == v]
    reads = read_phase(kv, stream_id, keys, duration_s, readers, progress)
    return {"batched": batched, "single": single, "reads": reads, "writers": writers,
            "readers": readers, "value_bytes": VALUE_BYTES}


# ---- the anchor -------------------------------------------------------------------------
def lmdb_anchor(path: str | Path, stream_id: bytes, batched_txs: int, batch_writes: int,
                single_txs: int, reads: int, map_mb: int = 1024) -> dict[str, Any]:
    """The same rows committed with the KV core to one LMDB environment in this process
    (one durable transaction per tx, at version = its number), then the same gets."""
    state = KVState(LmdbStore(Store(path, [ANCHOR_DB], map_mb), ANCHOR_DB))
    version = itertools.count(1)
    figures: dict[str, Any] = {}
    for phase, txs, writes_per_tx in (("batched", batched_txs, batch_writes),
                                      ("single", single_txs, 1)):
        txs = max(txs, ANCHOR_MIN_TXS)
        rows = [[(stream_id, k, v) for k, v in tx_writes(phase, tx, writes_per_tx)]
                for tx in range(txs)]
        start = time.perf_counter()
        for writes in rows:
            state.commit(next(version), "Commit", writes)
        seconds = time.perf_counter() - start
        figures[phase] = {"txs": txs, "writes": txs * writes_per_tx, "seconds": seconds,
                          "txs_per_s": txs / seconds,
                          "writes_per_s": txs * writes_per_tx / seconds}
    keys = readable_pairs("single", max(single_txs, ANCHOR_MIN_TXS), 1)
    reads = max(reads, ANCHOR_MIN_READS)
    start = time.perf_counter()
    for i in range(reads):
        key, value = keys[i % len(keys)]
        if state.get_value(stream_id, key).data != value:
            raise Unavailable(f"anchor: LMDB lost {key!r}")
    seconds = time.perf_counter() - start
    figures["reads"] = {"reads": reads, "seconds": seconds, "reads_per_s": reads / seconds}
    return figures


# ---- the report -------------------------------------------------------------------------
def ratio(value: float | None, anchor: float | None) -> float | None:
    """value / anchor; None where either is missing or the anchor is 0."""
    if value is None or not anchor:
        return None
    return value / anchor


def kv_report(network: dict[str, Any], anchor: dict[str, Any]) -> dict[str, Any]:
    """The bench's report: each network figure beside the single-process LMDB's."""
    return {
        "network": network, "anchor": anchor,
        "batched_writes_ratio": ratio(network["batched"]["writes_per_s"],
                                      anchor["batched"]["writes_per_s"]),
        "single_writes_ratio": ratio(network["single"]["writes_per_s"],
                                     anchor["single"]["writes_per_s"]),
        "reads_ratio": ratio(network["reads"]["reads_per_s"], anchor["reads"]["reads_per_s"]),
        "errors": sum(network[p]["errors"] for p in ("batched", "single", "reads"))}


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def format_kv_bench(report: dict[str, Any]) -> Table:
    net, anchor = report["network"], report["anchor"]
    table = Table(title=f"zg bench kv ({net['value_bytes']}-byte values, {net['writers']} "
                  f"txs / {net['readers']} reads in flight)")
    for column in ("measure", "network", "single-process LMDB", "ratio",
                   "write-to-readable p50 / p99"):
        table.add_column(column)
    for phase, ratio_key in (("batched", "batched_writes_ratio"),
                             ("single", "single_writes_ratio")):
        figures = net[phase]
        table.add_row(f"writes committed/s, {figures['writes_per_tx']} per entry",
                      f"{figures['writes_per_s']:.1f}",
                      f"{anchor[phase]['writes_per_s']:.0f}", _times(report[ratio_key]),
                      f"{_ms(figures['latency_p50_s'])} / {_ms(figures['latency_p99_s'])}")
    reads = net["reads"]
    table.add_row("kv_getValue reads/s", f"{reads['reads_per_s']:.0f}",
                  f"{anchor['reads']['reads_per_s']:.0f}", _times(report["reads_ratio"]),
                  f"(one read: {_ms(reads['latency_p50_s'])} / "
                  f"{_ms(reads['latency_p99_s'])})")
    table.caption = f"{report['errors']} errors" + (
        f": {[net[p]['error_kinds'] for p in ('batched', 'single', 'reads')]}"
        if report["errors"] else "")
    return table


# ---- the command ------------------------------------------------------------------------
def run_kv_bench(config: Config, duration_s: float = 20.0,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The bench on an embedded Ray (one network, the miners, the KV nodes following
    BENCH_STREAM, the kv_* JSON-RPC) in a temporary data dir, then the anchor."""
    from zg_actors import runtime, stack
    from zg_actors.storage.kv.actors import kv_network, kv_rpc_url
    from zg_actors.storage.sdk import StorageClient

    progress = progress or Progress()
    data_dir = tempfile.mkdtemp(prefix="zg-bench-kv-")
    config = config.replace(**{"data_dir": data_dir, "networks.initial": 1,
                               "kv.streams": BENCH_STREAM})
    stream_id = stream_id_from_name(BENCH_STREAM)
    runtime.connect(config, None)
    try:
        progress.say(f"embedded Ray: bringing up {', '.join(PILLARS)} in {data_dir}")
        stack.bring_up(config, PILLARS, progress.say)
        storage = StorageClient(config)
        storage.warm_up()
        network = measure_kv(KvClient(kv_rpc_url(config)), storage, kv_network(config),
                             stream_id, duration_s, progress)
        runtime.teardown()
    finally:
        runtime.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    anchor_dir = tempfile.mkdtemp(prefix="zg-bench-kv-lmdb-")
    try:
        progress.say("anchor: the same puts and gets on one LMDB in this process")
        anchor = lmdb_anchor(anchor_dir, stream_id, network["batched"]["txs"],
                             BATCH_WRITES, network["single"]["txs"],
                             network["reads"]["reads"], config.lmdb_map_mb)
    finally:
        shutil.rmtree(anchor_dir, ignore_errors=True)
    return kv_report(network, anchor)
