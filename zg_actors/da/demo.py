"""The DA part of `zg demo`: a stream of blobs through the gRPC gateway while a second
network is launched (it starts taking certificates live, then is retired)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray

from zg_actors import runtime
from zg_actors.config import Config
from zg_actors.da.bench import stream_blobs
from zg_actors.da.deploy import deploy_da, teardown_da
from zg_actors.rpc.client import DisperserClient
from zg_actors.rpc.errors import RpcUnavailable
from zg_actors.rpc.gateway import GATEWAY_NAME, deploy_gateway

DEMO_SECONDS = 15.0
DEMO_BLOB_BYTES = 256 * 1024
DEMO_EXTRA_SECONDS = 45.0  # streaming goes on at most this long for the new network


RESTART_WAIT_S = 60.0  # how long a retrieval waits for a restarted disperser


def retired_blob_readable(port: int, stream: dict, network_id: int) -> bool | None:
    """Retrieve a blob FINALIZED on `network_id` (now retired) through the gateway: True
    when its bytes are the ones sent; None if no blob was certified there. Retried while
    the disperser restarts."""
    sample = stream["sample_per_network"].get(network_id)
    if sample is None:
        return None
    request_id, payload = sample
    deadline = time.monotonic() + RESTART_WAIT_S
    with DisperserClient(f"127.0.0.1:{port}") as client:
        while True:
            try:
                info = client.get_blob_status(request_id)
                data = client.retrieve_blob(info["storage_root"], info["epoch"],
                                            info["quorum_id"])
                return data == payload
            except RpcUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def run_da_demo(deployment: Any, config: Config, say: Callable[[str], None],
                duration_s: float = DEMO_SECONDS, blob_bytes: int = DEMO_BLOB_BYTES,
                extra_s: float = DEMO_EXTRA_SECONDS) -> dict:
    """Deploy DA into a running deployment (at least one active network), disperse a stream
    of blobs through the gateway while a second network is launched (streaming goes on up
    to `extra_s` longer until the new network took a certificate), then retire that
    network; returns blobs FINALIZED, confirmed MB/s, latency p50/p99 and certificates per
    network. `deployment` is the runtime.Deployment of the backbone."""
    config = config.replace(**{"da.gateway_port": 0})
    say(f"DA: registering {config.da.nodes} DA signers (stake + BLS proof of possession), "
        "opening an epoch, starting DA nodes, a disperser and the gRPC gateway")
    handles = deploy_da(config)
    _, where = deploy_gateway(config)
    launch = None
    launched: dict[str, Any] = {}
    retired = None
    readable: bool | None = None

    def certificates() -> dict[int, int]:
        total: dict[int, int] = {}
        for stats in ray.get([d.stats.remote() for d in handles["dispersers"]], timeout=30):
            for network_id, count in stats["certificates"].items():
                total[int(network_id)] = total.get(int(network_id), 0) + count
        return total

    def new_network_waiting() -> bool:
        """True until the network launched during the stream has taken a certificate."""
        if "info" not in launched:
            ready, _ = ray.wait([launch], timeout=0)
            if not ready:
                return True
            launched["info"] = ray.get(launch)
            say(f"DA: network {launched['info']['network_id']} launched during dispersal")
        try:
            return certificates().get(launched["info"]["network_id"], 0) == 0
        except Exception:
            return True

    try:
        with DisperserClient(f"127.0.0.1:{where['port']}") as client:
            say(f"DA: streaming {blob_bytes // 1024} KiB blobs through gRPC for "
                f"{duration_s:.0f} s while a second network is launched")
            launch = deployment.manager.launch_network.remote(4)
            stream = stream_blobs(client, duration_s, blob_bytes, say=say,
                                  more=new_network_waiting, max_s=duration_s + extra_s)
        new_network = ray.get(launch, timeout=300)["network_id"]
        per_network = certificates()
        say(f"DA: retiring network {new_network}")
        ray.get(deployment.manager.retire_network.remote(new_network), timeout=120)
        retired = new_network
        # A restarted disperser knows no epoch records: it reads the retired network's
        # from a network still running.
        runtime.kill_actor(handles["dispersers"][0], restart=True)
        readable = retired_blob_readable(where["port"], stream, retired)
        if readable is not None:
            say(f"DA: a blob certified on network {retired}, retrieved after its retirement "
                f"and a disperser restart: {'byte-identical' if readable else 'DIFFERENT'}")
    finally:
        if launch is not None and retired is None:  # failed midway: leave no network behind
            try:
                ray.get(deployment.manager.retire_network.remote(
                    ray.get(launch, timeout=300)["network_id"]), timeout=120)
            except Exception as exc:
                say(f"DA: could not retire the network launched for the demo: {exc}")
        ray.kill(ray.get_actor(GATEWAY_NAME), no_restart=True)
        teardown_da(config)
    report = {"blobs_finalized": stream["finalized"], "blobs_failed": stream["failed"],
              "confirmed_mb_per_s": stream["confirmed_mb_per_s"],
              "latency_p50_s": stream["latency_p50_s"], "latency_p99_s": stream["latency_p99_s"],
              "certificates_per_network": per_network,
              "finalized_per_network": stream["finalized_per_network"],
              "launched_network": new_network,
              "launched_network_certificates": per_network.get(new_network, 0),
              "retired_network": retired, "gateway_port": where["port"],
              "retired_network_blob_readable": readable}
    p50, p99 = report["latency_p50_s"], report["latency_p99_s"]
    say(f"DA: {report['blobs_finalized']} blobs FINALIZED, "
        f"{report['confirmed_mb_per_s']:.2f} MB/s confirmed, latency p50/p99 "
        f"{'-' if p50 is None else f'{p50:.2f}'}/{'-' if p99 is None else f'{p99:.2f}'} s, "
        f"certificates per network {per_network} (network {new_network} launched during "
        "dispersal, then retired)")
    return report
