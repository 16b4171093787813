"""`zg bench da`: confirmed MB/s and dispersal latency of 0G DA, beside its anchors.

1. A stream of blobs through the gRPC gateway into a deployment on the local
   Ray (one network, the configured DA nodes and dispersers): blobs FINALIZED,
   confirmed MB/s (finalized blob bytes / wall time), latency p50/p99 (DisperseBlob
   -> FINALIZED seen), certificates per network.
2. The anchor measured in the same run: the same blobs through the pure pipeline
   in one process (encode, slice and data roots, every signer's BLS signature of
   each batch, aggregation, certificate verification), with no actors and no
   consensus; figure 1 is shown as a ratio to it.
3. Published figures, for comparison only (spec/da.md).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import ray
from rich.console import Console
from rich.table import Table

from zg_actors import runtime
from zg_actors.config import Config
from zg_actors.crypto import bls
from zg_actors.da.blob import BlobHeader, encode_blob
from zg_actors.da.certificate import Batch, DACertificate, member_bitmap, verify_da_certificate
from zg_actors.da.keys import da_signer_identity
from zg_actors.da.params import BlobStatus
from zg_actors.da.quorum import EpochRegistry, EpochSigner, assign_quorums, epoch_message
from zg_actors.rpc.client import DisperserClient

MB = 1_000_000
PUBLISHED = [("EigenDA v2 (published)", "100 MB/s writes", "5 s average, 10 s p99"),
             ("EigenDA v1 (published)", "about 15 MB/s", "-"),
             ("Celestia (published)", "about 11-12 MiB/s", "about 3 s blocks"),
             ("0G testnet (claimed, no method)", "50 Gbps", "-")]
POLL_S = 0.2
SETTLE_TIMEOUT_S = 120.0  # after the offer stops, how long outstanding blobs may take


def make_payloads(count: int, size: int, seed: int = 7) -> list[bytes]:
    """Distinct blobs (a counter in the first bytes) over one random body."""
    body = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    out = []
    for i in range(count):
        body[:8] = np.frombuffer(i.to_bytes(8, "big"), dtype=np.uint8)
        out.append(body.tobytes())
    return out


def stream_blobs(client: DisperserClient, duration_s: float, blob_bytes: int,
                 window: int = 16, say: Callable[[str], None] = lambda _: None,
                 more: Callable[[], bool] | None = None, max_s: float = 0.0) -> dict:
    """Keep `window` blobs in flight for duration_s, then wait for the rest to settle.
    With `more`, keep offering past duration_s (up to max_s) while more() is true (asked
    about once a second)."""
    asked = {"at": 0.0, "more": False}

    def want_more(now: float) -> bool:
        if more is None or now - start >= max_s:
            return False
        if now - asked["at"] >= 1.0:
            asked["at"], asked["more"] = now, more()
        return asked["more"]

    payloads = make_payloads(window, blob_bytes)
    submitted: dict[bytes, float] = {}
    outstanding: dict[bytes, float] = {}
    finished: dict[bytes, tuple[str, float]] = {}
    networks: dict[int, int] = {}
    start = time.time()
    turn = 0
    next_report = start + 5.0
    while True:
        now = time.time()
        offering = now - start < duration_s or want_more(now)
        if not offering and (not outstanding or now - start > duration_s + SETTLE_TIMEOUT_S):
            break
        while offering and len(outstanding) < window:
            data = payloads[turn % window]
            data = turn.to_bytes(8, "big") + data[8:]
            turn += 1
            _, request_id = client.disperse_blob(data)
            submitted[request_id] = outstanding[request_id] = time.time()
        for request_id in list(outstanding):
            info = client.get_blob_status(request_id)
            if info["status"] in ("FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES"):
                finished[request_id] = (info["status"], time.time() - outstanding.pop(
                    request_id))
                if info["status"] == "FINALIZED":
                    networks[info["network_id"]] = networks.get(info["network_id"], 0) + 1
        if time.time() >= next_report:
            done = sum(1 for s, _ in finished.values() if s == "FINALIZED")
            say(f"  t={time.time() - start:5.1f}s  {done} blobs FINALIZED, "
                f"{len(outstanding)} in flight")
            next_report += 5.0
        time.sleep(POLL_S)
    elapsed = max(time.time() - start, 1e-9)
    latencies = [t for s, t in finished.values() if s == "FINALIZED"]
    final = len(latencies)
    return {"blob_bytes": blob_bytes, "submitted": len(submitted), "finalized": final,
            "failed": sum(1 for s, _ in finished.values() if s != "FINALIZED"),
            "unsettled": len(outstanding), "seconds": elapsed,
            "confirmed_mb_per_s": final * blob_bytes / MB / elapsed,
            "latency_p50_s": runtime.percentile(latencies, 50),
            "latency_p99_s": runtime.percentile(latencies, 99),
            "finalized_per_network": networks}


def single_process_pipeline(config: Config, blobs: int, blob_bytes: int) -> dict:
    """The same work with no actors and no consensus: the limit of this machine."""
    da, seed = config.da, config.devnet.key_seed
    idents = [da_signer_identity(seed, i) for i in range(da.nodes)]
    epoch_seed = b"\x11" * 32
    registry = EpochRegistry(0, epoch_seed, tuple(
        EpochSigner(i.address, i.bls_pubkey, da.max_votes,
                    bls.sign(i.bls_secret, epoch_message(0, epoch_seed))) for i in idents))
    quorums = assign_quorums(registry, da.n, da.max_quorums)
    payloads = make_payloads(blobs, blob_bytes)
    start = time.perf_counter()
    headers = []
    for data in payloads:
        blob = encode_blob(data, da.k, da.n, da.max_blob_bytes)
        headers.append(BlobHeader(blob.data_root, len(data), 0, 0, 0))
    for offset in range(0, len(headers), da.batch_max_blobs):
        batch = Batch(0, 0, 0, tuple(headers[offset:offset + da.batch_max_blobs]))
        signers = list(quorums[0].members)
        signature = bls.aggregate([bls.sign(idents[s].bls_secret, batch.sign_bytes)
                                   for s in signers])
        cert = DACertificate(batch, member_bitmap(quorums[0], signers), signature)
        verify_da_certificate(cert, registry, quorums[0], 0)
    elapsed = time.perf_counter() - start
    return {"blobs": blobs, "seconds": elapsed,
            "mb_per_s": blobs * blob_bytes / MB / elapsed}


def run_da_bench(config: Config, duration_s: float = 20.0, blob_bytes: int = MB,
                 quiet: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Deploy on an embedded Ray in a temporary data dir, stream, measure, tear down."""
    from zg_actors.da.actors import deploy_da, teardown_da
    from zg_actors.rpc.gateway import GATEWAY_NAME, deploy_gateway

    console = console or Console(stderr=True)
    say = (lambda *_: None) if quiet else console.print
    data_dir = tempfile.mkdtemp(prefix="zg-bench-da-")
    config = config.replace(data_dir=data_dir, **{"da.gateway_port": 0})
    runtime.connect(config)
    try:
        say("[bold]zg bench da[/]: deploying C0, one network, DA nodes, a disperser, "
            "the gateway")
        deployment = runtime.deploy(config, detached=False)
        runtime.call(deployment.manager.launch_network.remote(), timeout=300)
        handles = deploy_da(config)
        _, where = deploy_gateway(config)
        with DisperserClient(f"127.0.0.1:{where['port']}") as client:
            say(f"streaming {blob_bytes:,}-byte blobs for {duration_s:.0f} s")
            stream = stream_blobs(client, duration_s, blob_bytes, say=say)
        stats = ray.get(handles["dispersers"][0].stats.remote())
        stream["certificates_per_network"] = stats["certificates"]
        ray.kill(ray.get_actor(GATEWAY_NAME), no_restart=True)
        teardown_da(config)
        runtime.teardown()
    finally:
        runtime.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    say("anchor: the same pipeline in one process")
    anchor = single_process_pipeline(config, max(4, min(stream["finalized"], 32)), blob_bytes)
    report = {"stream": stream, "single_process": anchor,
              "ratio_to_single_process": stream["confirmed_mb_per_s"] / anchor["mb_per_s"],
              "published": [{"system": s, "throughput": t, "latency": lat}
                            for s, t, lat in PUBLISHED],
              "config": {"k": config.da.k, "n": config.da.n, "nodes": config.da.nodes,
                         "batch_interval_s": config.da.batch_interval_s}}
    if not quiet:
        print_da_bench(console, report)
    return report


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.2f} {unit}"


def print_da_bench(console: Console, report: dict) -> None:
    s, a = report["stream"], report["single_process"]
    table = Table(title="0G DA: confirmed throughput and latency")
    for column in ("what", "throughput", "latency p50 / p99", "note"):
        table.add_column(column)
    table.add_row("zg-actors (this run)", _fmt(s["confirmed_mb_per_s"], "MB/s"),
                  f"{_fmt(s['latency_p50_s'], 's')} / {_fmt(s['latency_p99_s'], 's')}",
                  f"{s['finalized']} blobs of {s['blob_bytes']:,} B FINALIZED, "
                  f"{s['failed']} failed; {report['ratio_to_single_process']:.2f}x the anchor")
    table.add_row("anchor: one process, no actors", _fmt(a["mb_per_s"], "MB/s"), "-",
                  "encode + roots + BLS sign/aggregate/verify, same blobs")
    for p in report["published"]:
        table.add_row(p["system"], p["throughput"], p["latency"], "for comparison only")
    console.print(table)
    console.print(f"certificates per network: {s['certificates_per_network']}; "
                  f"throughput counts {BlobStatus.FINALIZED.name} blobs; DA {report['config']}")
