"""An L2-style sequencer posting its batches to 0G DA through the gRPC Disperser gateway.

    ray job submit --working-dir . -- python jobs/da_rollup.py --rate 4 --blob-kib 256 --duration 60

Every 1/--rate seconds the sequencer seals a batch of --blob-kib KiB (seeded L2 data
after a header naming its sequence number and the hash of the batch before, as a rollup
chains its batches) and posts it with DisperseBlob, without waiting for earlier ones; it
follows each blob to CONFIRMED and FINALIZED. After --duration seconds it stops posting
and waits up to --settle seconds for the blobs in flight. Reports posted and confirmed
MB/s, latency to CONFIRMED and to FINALIZED (p50/p99), and errors; with --verify N it
retrieves N finalized blobs and compares their bytes.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from zg_actors.crypto.keccak import keccak256
from zg_actors.workload import (
    Pacer,
    Progress,
    Tally,
    error_kind,
    finish,
    gateway_address,
    job_parser,
    seeded_bytes,
    session,
    summarize,
)

KIB = 1024
POLL_S = 0.2  # between rounds of status calls
SENDERS = 8  # DisperseBlob calls open at once: a sequencer does not wait for each reply
# Blobs finish about in order (a batch at a time): a round of status calls asks the oldest
# first and stops after this many unfinished ones, so the gateway is not flooded.
PENDING_PER_ROUND = 4
DONE = ("FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES")
HEADER_BYTES = 8 + 32  # sequence number, hash of the previous batch


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--rate", type=float, default=2.0, help="batches posted per second (2)")
    parser.add_argument("--blob-kib", type=int, default=128, help="batch size, KiB (128)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of posting (30)")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="seconds to wait for blobs in flight after posting stops (120)")
    parser.add_argument("--verify", type=int, default=2,
                        help="finalized blobs retrieved and compared afterwards (2)")
    parser.add_argument("--seed", type=int, default=1, help="L2 data seed (1)")
    parser.add_argument("--gateway", metavar="HOST:PORT",
                        help="gRPC gateway (default: where the deployment's gateway listens)")
    return parser.parse_args(argv)


def sequencer_batches(seed: int, blob_bytes: int) -> Any:
    """The sequencer's batches, in order: (sequence number, bytes), each starting with
    its number and the keccak of the batch before it."""
    previous = bytes(32)
    number = 0
    while True:
        body = seeded_bytes(seed, number, max(0, blob_bytes - HEADER_BYTES))
        batch = (number.to_bytes(8, "big") + previous + body)[:blob_bytes]
        yield number, batch
        previous = keccak256(batch)
        number += 1


def run_rollup(client: Any, rate: float, blob_bytes: int, duration_s: float, settle_s: float,
               seed: int, verify: int, progress: Progress) -> dict[str, Any]:
    """Post batches through `client` (a DisperserClient) at `rate`; the report."""
    posted, confirmed, finalized = Tally(), Tally(), Tally()
    sent_at: dict[bytes, float] = {}  # {request id: when DisperseBlob was called}
    data_of: dict[bytes, bytes] = {}
    outstanding: dict[bytes, float] = {}
    seen_confirmed: set[bytes] = set()
    finished_ids: list[bytes] = []
    sending: set[Future] = set()
    batches = sequencer_batches(seed, blob_bytes)
    progress.say(f"posting {blob_bytes:,}-byte batches at {rate} per second for "
                 f"{duration_s:.0f} s")

    def post(batch: bytes) -> tuple[bytes | None, float, bytes, BaseException | None]:
        began = time.monotonic()
        try:
            return client.disperse_blob(batch)[1], began, batch, None
        except Exception as exc:  # e.g. RESOURCE_EXHAUSTED: counted, the sequencer goes on
            return None, began, batch, exc

    start = time.monotonic()
    pacer = Pacer(rate)
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="zg-rollup") as pool:
        while True:
            now = time.monotonic()
            posting = now - start < duration_s
            for done in [f for f in sending if f.done()]:
                sending.discard(done)
                request_id, began, batch, exc = done.result()
                if exc is not None:
                    posted.error(exc)
                    continue
                posted.ok(time.monotonic() - began, len(batch))
                sent_at[request_id] = outstanding[request_id] = began
                if verify:
                    data_of[request_id] = batch
            if not posting and not sending and (
                    not outstanding or now - start > duration_s + settle_s):
                break
            if posting:
                for _ in range(pacer.due()):
                    _, batch = next(batches)
                    sending.add(pool.submit(post, batch))
                    pacer.mark()
            pending = 0
            for request_id in list(outstanding):
                if pending >= PENDING_PER_ROUND:
                    break
                try:
                    status = client.get_blob_status(request_id)["status"]
                except Exception as exc:
                    finalized.error(exc)
                    outstanding.pop(request_id)
                    continue
                took = time.monotonic() - sent_at[request_id]
                if status in ("CONFIRMED", "FINALIZED") and request_id not in seen_confirmed:
                    seen_confirmed.add(request_id)
                    confirmed.ok(took, blob_bytes)
                if status not in DONE:
                    pending += 1
                    continue
                outstanding.pop(request_id)
                if status == "FINALIZED":
                    finalized.ok(took, blob_bytes)
                    finished_ids.append(request_id)
                else:
                    finalized.error(f"blob {status}")
            progress.tick(lambda: f"{posted.ops} posted, {confirmed.ops} confirmed, "
                          f"{finalized.ops} finalized, {len(outstanding)} in flight, "
                          f"{posted.error_count + finalized.error_count} errors")
            time.sleep(min(POLL_S, pacer.wait_s()) if posting else POLL_S)
    wall_s = time.monotonic() - start
    for _ in outstanding:
        finalized.error("not final within --settle")
    checked = Tally()
    for request_id in finished_ids[:verify]:
        began = time.monotonic()
        try:
            info = client.get_blob_status(request_id)
            data = client.retrieve_blob(info["storage_root"], info["epoch"], info["quorum_id"])
        except Exception as exc:
            checked.error(error_kind(exc))
            continue
        if data != data_of[request_id]:
            checked.error(f"blob 0x{request_id.hex()}: retrieved bytes differ")
            continue
        checked.ok(time.monotonic() - began, len(data))
    report = {"job": "da_rollup", "blob_bytes": blob_bytes, "rate_per_s": rate,
              "duration_s": duration_s, "offered_mb_per_s": rate * blob_bytes / 1e6,
              "posted": summarize(posted, min(wall_s, duration_s), "blobs"),
              "confirmed": summarize(confirmed, wall_s, "blobs"),
              "finalized": summarize(finalized, wall_s, "blobs"),
              "retrieved": summarize(checked, sum(checked.latencies_s), "blobs"),
              "confirmed_mb_per_s": confirmed.bytes / 1e6 / max(wall_s, 1e-9)}
    report["errors"] = posted.error_count + finalized.error_count + checked.error_count
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    with session(args, ["chain", "da"], progress):
        from zg_actors.rpc.client import DisperserClient

        with DisperserClient(gateway_address(args.gateway)) as client:
            report = run_rollup(client, args.rate, args.blob_kib * KIB, args.duration,
                                args.settle, args.seed, args.verify, progress)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
