"""Ingest a generated dataset into 0G Storage, then download a sample and verify its bytes.

    ray job submit --working-dir . -- python jobs/storage_ingest.py --files 200 --concurrency 4

Uploads N files of mixed sizes (seeded: the same seed gives the same files), up to
--concurrency at a time, each until FINALIZED; then downloads a seeded sample of them (every
proof and file root checked by the SDK) and compares the bytes with the regenerated
originals. Reports upload and download MB/s, files/s, latency p50/p99 and errors. No new
upload starts after --max-seconds (and no download after twice that).
"""

from __future__ import annotations

import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zg_actors.workload import (
    Progress,
    Tally,
    finish,
    job_parser,
    mixed_sizes,
    seeded_bytes,
    session,
    summarize,
)

KIB = 1024


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    parser.add_argument("--files", type=int, default=40, help="files to upload (40)")
    parser.add_argument("--min-kib", type=int, default=4, help="smallest file, KiB (4)")
    parser.add_argument("--max-kib", type=int, default=4096, help="largest file, KiB (4096)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="uploads (and downloads) in flight at once (4)")
    parser.add_argument("--sample", type=int, default=10,
                        help="files downloaded and verified afterwards (10)")
    parser.add_argument("--seed", type=int, default=1, help="dataset seed (1)")
    parser.add_argument("--network", type=int, default=None,
                        help="network the files are submitted to (default: the first active)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="no upload starts after this many seconds (600)")
    return parser.parse_args(argv)


def run_ingest(client: Any, files: int, min_bytes: int, max_bytes: int, concurrency: int,
               sample: int, seed: int, max_seconds: float, progress: Progress,
               network_id: int | None = None) -> dict[str, Any]:
    """Upload the seeded dataset through `client` (a StorageClient), download and verify a
    sample; the report."""
    sizes = mixed_sizes(files, min_bytes, max_bytes, seed)
    progress.say(f"uploading {files} files ({sum(sizes) / 1e6:.1f} MB, {min_bytes:,} to "
                 f"{max_bytes:,} bytes), {concurrency} at a time")
    up, down = Tally(), Tally()
    uploaded: dict[int, list[bytes]] = {}  # {file index: its fragment roots}
    sequence_misses = 0  # entries whose shards were sent again for another tx sequence
    started = time.monotonic()
    stop_at = started + max_seconds

    def upload(index: int) -> None:
        nonlocal sequence_misses
        if time.monotonic() > stop_at:
            up.error("not started: --max-seconds passed")
            return
        data = seeded_bytes(seed, index, sizes[index])
        began = time.monotonic()
        try:
            receipt = client.upload(data, network_id)
        except Exception as exc:  # counted and reported; the other files go on
            up.error(exc)
            return
        up.ok(time.monotonic() - began, len(data))
        uploaded[index] = receipt["roots"]
        sequence_misses += receipt["sequence_misses"]
        progress.tick(lambda: f"{up.ops}/{files} files FINALIZED, {up.bytes / 1e6:.1f} MB, "
                      f"{up.error_count} errors")

    with ThreadPoolExecutor(concurrency, thread_name_prefix="zg-ingest") as pool:
        list(pool.map(upload, range(files)))
    upload_s = time.monotonic() - started
    chosen = sorted(random.Random(seed).sample(sorted(uploaded), min(sample, len(uploaded))))
    progress.say(f"{up.ops} files uploaded in {upload_s:.1f} s; downloading {len(chosen)} "
                 "and checking their bytes")
    stop_at = time.monotonic() + max_seconds

    def download(index: int) -> None:
        if time.monotonic() > stop_at:
            down.error("not started: --max-seconds passed")
            return
        began = time.monotonic()
        try:
            data = client.download_fragments(uploaded[index])
        except Exception as exc:
            down.error(exc)
            return
        if data != seeded_bytes(seed, index, sizes[index]):
            down.error(f"file {index}: downloaded bytes differ from the uploaded ones")
            return
        down.ok(time.monotonic() - began, len(data))

    began = time.monotonic()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="zg-ingest") as pool:
        list(pool.map(download, chosen))
    download_s = time.monotonic() - began
    upload_report = summarize(up, upload_s, "files")
    download_report = summarize(down, download_s, "files")
    return {"job": "storage_ingest", "files": files, "dataset_bytes": sum(sizes),
            "concurrency": concurrency, "seed": seed,
            "upload": {**upload_report, "sequence_misses": sequence_misses},
            "download": {**download_report, "verified": down.ops},
            "errors": up.error_count + down.error_count}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    with session(args, ["chain", "storage"], progress) as config:
        from zg_actors.storage.sdk import StorageClient

        client = StorageClient(config, start=False)
        client.warm_up()
        report = run_ingest(client, args.files, args.min_kib * KIB, args.max_kib * KIB,
                            args.concurrency, args.sample, args.seed, args.max_seconds,
                            progress, args.network)
    return finish(args, report)


if __name__ == "__main__":
    sys.exit(main())
