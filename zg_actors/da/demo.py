"""The DA part of `zg demo`: a stream of blobs through the gRPC gateway (the lead wires
`run_da_demo` into zg_actors/demo.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray

from zg_actors.config import Config
from zg_actors.da.actors import deploy_da, teardown_da
from zg_actors.da.bench import stream_blobs
from zg_actors.rpc.client import DisperserClient
from zg_actors.rpc.gateway import GATEWAY_NAME, deploy_gateway

DEMO_SECONDS = 15.0
DEMO_BLOB_BYTES = 256 * 1024


def run_da_demo(deployment: Any, config: Config, say: Callable[[str], None],
                duration_s: float = DEMO_SECONDS, blob_bytes: int = DEMO_BLOB_BYTES) -> dict:
    """Deploy DA into a running deployment (at least one active network), disperse a stream
    of blobs through the gateway; returns blobs FINALIZED, confirmed MB/s, latency p50/p99
    and certificates per network. `deployment` is the runtime.Deployment of the backbone."""
    config = config.replace(**{"da.gateway_port": 0})
    say(f"DA: registering {config.da.nodes} DA signers (stake + BLS proof of possession), "
        "opening an epoch, starting DA nodes, a disperser and the gRPC gateway")
    handles = deploy_da(config)
    _, where = deploy_gateway(config)
    try:
        with DisperserClient(f"127.0.0.1:{where['port']}") as client:
            say(f"DA: streaming {blob_bytes // 1024} KiB blobs through gRPC for "
                f"{duration_s:.0f} s")
            stream = stream_blobs(client, duration_s, blob_bytes, say=say)
        stats = ray.get(handles["dispersers"][0].stats.remote(), timeout=30)
    finally:
        ray.kill(ray.get_actor(GATEWAY_NAME), no_restart=True)
        teardown_da(config)
    report = {"blobs_finalized": stream["finalized"], "blobs_failed": stream["failed"],
              "confirmed_mb_per_s": stream["confirmed_mb_per_s"],
              "latency_p50_s": stream["latency_p50_s"], "latency_p99_s": stream["latency_p99_s"],
              "certificates_per_network": stats["certificates"], "gateway_port": where["port"]}
    p50, p99 = report["latency_p50_s"], report["latency_p99_s"]
    say(f"DA: {report['blobs_finalized']} blobs FINALIZED, "
        f"{report['confirmed_mb_per_s']:.2f} MB/s confirmed, latency p50/p99 "
        f"{'-' if p50 is None else f'{p50:.2f}'}/{'-' if p99 is None else f'{p99:.2f}'} s, "
        f"certificates per network {report['certificates_per_network']}")
    return report
