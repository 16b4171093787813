"""Reads and writes on the 0G KV layer with a chosen conflict rate.

    ray job submit --working-dir . -- python jobs/kv_workload.py --txs 40 --conflict-rate 0.25

--writers threads send --txs KV txs in all (each a tagged flow entry, followed until a KV
node records its result). A share --conflict-rate of them contend: each reads one hot
counter key at the latest version and writes it plus one (a read-modify-write, as 0G's
batcher does it), so contending txs in flight together conflict (VersionConfliction) and
only one of them commits; the others write a key of their own and never conflict. Meanwhile
--readers threads read the keys written so far (kv_getValue through the JSON-RPC). Reports
committed txs/s and tx latency (sent to result), conflicts, results by kind, read latency
p50/p99 and errors, and checks that the counter counts exactly the committed contending
txs. No new tx starts after --max-seconds.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zg_actors.workload import (
    Background,
    Progress,
    Tally,
    finish,
    job_parser,
    seeded_bytes,
    session,
    summarize,
)

HOT_KEY = "hot"  # the counter the contending txs increment


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--txs", type=int, default=40, help="KV txs sent in all (40)")
    parser.add_argument("--writers", type=int, default=4, help="txs in flight at once (4)")
    parser.add_argument("--conflict-rate", type=float, default=0.25,
                        help="share of txs that read-modify-write the hot key, 0..1 (0.25)")
    parser.add_argument("--readers", type=int, default=2,
                        help="threads reading written keys meanwhile (2)")
    parser.add_argument("--value-bytes", type=int, default=256,
                        help="size of a written value, bytes (256)")
    parser.add_argument("--stream", metavar="NAME",
                        help="stream written (default: the first one the KV nodes follow)")
    parser.add_argument("--seed", type=int, default=1, help="value and mix seed (1)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="no tx starts after this many seconds (600)")
    return parser.parse_args(argv)


def contending(count: int, rate: float, seed: int) -> list[bool]:
    """Which of `count` txs contend for the hot key: round(count * rate) of them, chosen
    by the seed."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"conflict rate must be within 0..1, got {rate}")
    chosen = set(random.Random(seed).sample(range(count), round(count * rate)))
    return [i in chosen for i in range(count)]


def run_kv(kv: Any, storage: Any, network_id: int, stream_id: bytes, txs: int, writers: int,
           conflict_rate: float, readers: int, value_bytes: int, seed: int,
           max_seconds: float, progress: Progress) -> dict[str, Any]:
    """Send the txs through `kv` (a KvClient) and `storage` (the StorageClient whose
    account sends them) while `readers` threads read; the report."""
    from zg_actors.storage.kv.client import Batcher
    from zg_actors.storage.kv.replay import COMMIT, VERSION_CONFLICTION

    run = os.urandom(4).hex()  # a run's keys: a rerun does not read an old counter
    hot = f"{run}/{HOT_KEY}".encode()
    plan = contending(txs, conflict_rate, seed)
    committed, conflicts, reads = Tally(), Tally(), Tally()
    results: dict[str, int] = {}
    hot_commits: list[int] = []  # tx_seqs of committed contending txs
    written: list[bytes] = []  # keys committed so far, read by the readers
    lock = threading.Lock()
    progress.say(f"{txs} KV txs, {writers} at a time, {sum(plan)} contending for "
                 f"0x{stream_id.hex()[:12]}…/{hot.decode()}; {readers} readers")

    def send(index: int) -> None:
        if time.monotonic() - start > max_seconds:
            committed.error("not started within --max-seconds")
            return
        began = time.monotonic()
        try:
            batch = Batcher(kv, storage, network_id)
            if plan[index]:
                key = hot
                batch.set(stream_id, key, str(int(batch.get(stream_id, key) or 0) + 1)
                          .encode())
            else:
                key = f"{run}/k{index}".encode()
                batch.set(stream_id, key, seeded_bytes(seed, index, value_bytes))
            receipt = batch.exec(wait=True)
        except Exception as exc:  # counted; the other txs go on
            committed.error(exc)
            return
        took, result = time.monotonic() - began, receipt["result"]
        with lock:
            results[result] = results.get(result, 0) + 1
        if result == COMMIT:
            committed.ok(took, receipt["size"])
            with lock:
                written.append(key)
                if plan[index]:
                    hot_commits.append(receipt["tx_seq"])
        elif result == VERSION_CONFLICTION:
            conflicts.ok(took)
        else:
            committed.error(f"tx {receipt['tx_seq']}: {result}")
        progress.tick(lambda: f"{committed.ops} committed, {conflicts.ops} conflicts, "
                      f"{reads.ops} reads, {committed.error_count} errors")

    def read(count: int) -> int:
        with lock:
            key = written[count % len(written)] if written else None
        if key is None:
            time.sleep(0.2)  # nothing committed to read yet
            return 0
        began = time.monotonic()
        data = kv.get_value(stream_id, key).data
        reads.ok(time.monotonic() - began, len(data))
        return len(data)

    # The counter starts at "0", written and replayed before the load: a contending tx then
    # reads it at a version no earlier than that write (at version 0 before anything was
    # replayed, a write at tx_seq 0 would not count as newer than the read).
    setup = Batcher(kv, storage, network_id)
    setup.set(stream_id, hot, b"0")
    if (result := setup.exec(wait=True)["result"]) != COMMIT:
        raise RuntimeError(f"the hot counter's first write did not commit: {result}")
    start = time.monotonic()
    readers_on = [Background(f"kv-read-{i}", read).start() for i in range(readers)]
    with ThreadPoolExecutor(writers, thread_name_prefix="zg-kv") as pool:
        list(pool.map(send, range(txs)))
    wall_s = time.monotonic() - start
    for reader in readers_on:
        reader.stop(30.0)
        for _, kind in reader.failed:
            reads.error(kind)
    counter = int(kv.get_value(stream_id, hot).data or 0)
    if counter != len(hot_commits):
        committed.error(f"hot counter {counter} after {len(hot_commits)} committed "
                        "contending txs")
    report = {"job": "kv_workload", "txs": txs, "writers": writers,
              "conflict_rate": conflict_rate, "contending": sum(plan),
              "stream": stream_id, "network_id": network_id,
              "committed": summarize(committed, wall_s, "txs"),
              "conflicts": conflicts.ops, "results": dict(sorted(results.items())),
              "hot_counter": counter,
              "reads": summarize(reads, wall_s, "reads")}
    report["committed_per_s"] = report["committed"]["txs_per_s"]
    report["errors"] = committed.error_count + reads.error_count
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    with session(args, ["chain", "storage", "kv"], progress) as config:
        from zg_actors.storage.kv.actors import followed_streams, kv_network, kv_rpc_url
        from zg_actors.storage.kv.client import KvClient
        from zg_actors.storage.kv.encoding import parse_stream_id
        from zg_actors.storage.sdk import StorageClient

        storage = StorageClient(config, start=False)
        storage.warm_up()
        stream_id = (parse_stream_id(args.stream) if args.stream
                     else followed_streams(config)[0])
        report = run_kv(KvClient(kv_rpc_url(config)), storage, kv_network(config), stream_id,
                        args.txs, args.writers, args.conflict_rate, args.readers,
                        args.value_bytes, args.seed, args.max_seconds, progress)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
