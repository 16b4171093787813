"""Every dashboard panel against a real Prometheus: Debian's `prometheus` binary scrapes the
embedded Ray's metrics export port every second while a short workload runs on every pillar,
then each panel's PromQL, asked through Prometheus's HTTP API over the workload's time
range, must return series with values."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import ray
from ray import serve

from tests.dashboards import EXPORTED_SUFFIXES, all_expressions
from zg_actors import runtime
from zg_actors.compute.accounts import provider_account, user_account
from zg_actors.compute.actors import launch_providers
from zg_actors.compute.sdk import ComputeClient
from zg_actors.config import ZG
from zg_actors.da.deploy import deploy_da
from zg_actors.errors import ZgError
from zg_actors.evm.bench import EthRpc, EvmBenchError, wait_receipts
from zg_actors.evm.serve import start_evm_rpc
from zg_actors.metrics import ALL_METRICS
from zg_actors.rpc.client import DisperserClient
from zg_actors.rpc.errors import RpcInvalidArgument
from zg_actors.rpc.gateway import deploy_gateway
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.kv.actors import start_kv_nodes, start_kv_rpc
from zg_actors.storage.kv.client import Batcher, KvClient
from zg_actors.storage.kv.encoding import stream_id_from_name
from zg_actors.storage.sdk import StorageClient

from ..evm_contract import INIT, Wallet, store_call

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

SCRAPE_INTERVAL_S = 1
READY_TIMEOUT_S = 30.0  # Prometheus starts in about a second
DATA_TIMEOUT_S = 180.0  # Ray's agent exports every few seconds; then one more scrape
STEP_S = 2  # resolution of the range queries
BLOB_BYTES = 20_000
HISTOGRAMS_OF_BLOBS = ("ray_zg_da_certificate_latency_seconds_count",
                       "ray_zg_da_batch_signatures_count", "ray_zg_gateway_request_seconds_count")
# Counted only on a fault the workload does not cause; its panels read `... or vector(0)`.
FAULT_ONLY = {"zg_staking_slashings"}
NOTES = "notes"  # the KV stream written
REVERT_CALL = b"\x03"  # the test contract reverts on this selector (tests/evm_contract.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.fixture
def prometheus(ray_session: None, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping this Ray node's metrics; its HTTP API's base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus binary is not installed: `apt-get install -y "
                    "prometheus` (.ci/run does it) to check the dashboards")
    port = ray._private.worker.global_worker.node.metrics_export_port
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{"job_name": "ray",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))
    web = f"127.0.0.1:{free_port()}"
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen([binary, f"--config.file={config}",
                                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                    f"--web.listen-address={web}", "--log.level=warn"],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://{web}/-/ready", timeout=2) as answer:
                    return answer.status == 200
            except (urllib.error.URLError, ConnectionError):
                return False

        assert runtime.wait_for(ready, READY_TIMEOUT_S, 0.2), (
            (tmp_path / "prometheus.log").read_text()[-2000:])
        yield f"http://{web}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def disperse(client: DisperserClient, seeds: range) -> None:
    """Blobs through the gRPC gateway, each followed to FINALIZED."""
    ids = [client.disperse_blob(np.random.default_rng(seed).integers(
        0, 256, BLOB_BYTES, dtype=np.uint8).tobytes())[1] for seed in seeds]
    for request_id in ids:
        assert runtime.wait_for(lambda r=request_id: client.get_blob_status(r)[
            "status"] == "FINALIZED", 90, 0.3)


def run_workload(d: runtime.Deployment, config, prometheus: str, rpc: RpcSide
                 ) -> tuple[list, Callable[[int], None]]:
    """A little of everything each dashboard shows, on one network; returns what keeps the
    actors it started alive (they are not detached) and a way to send one more blob. The
    KV node and the JSON-RPC apps come up meanwhile in `rpc`'s thread."""
    network_id = runtime.call(d.manager.launch_network.remote(4), 120)["network_id"]
    rpc.start(config, network_id)
    # Storage: uploads, a verified download, a PoRA mining run paid by the `mine` module.
    storage = StorageClient(config.replace(**{"storage.repair_interval_s": 1.0}))
    data = os.urandom(3 * SEGMENT_BYTES + 1_000)
    receipt = storage.upload(data, network_id)
    storage.upload(os.urandom(50_000), network_id)
    assert storage.download(receipt["root"]) == data
    storage.donate(100 * config.storage.base_reward, network_id)
    [mined] = storage.mine(network_id, [0], epochs=1)
    assert mined["answers"] >= 1, mined
    # DA: blobs through the gRPC gateway to FINALIZED, and one request it refuses.
    da_config = config.replace(**{"da.gateway_port": 0})
    da = deploy_da(da_config)
    gateway, where = deploy_gateway(da_config)
    with DisperserClient(f"127.0.0.1:{where['port']}") as client:
        disperse(client, range(2))
        with pytest.raises(RpcInvalidArgument):
            client.get_blob_status(b"")
        # A histogram's first export already holds these blobs: its windowed quantiles need
        # a second export that counts more, as steady traffic gives.
        assert runtime.wait_for(lambda: all(
            query_range(prometheus, name, time.time() - 60, time.time())
            for name in HISTOGRAMS_OF_BLOBS), DATA_TIMEOUT_S, 1.0)
        disperse(client, range(2, 4))
    port = where["port"]

    def more_da(seed: int) -> None:
        with DisperserClient(f"127.0.0.1:{port}") as more:
            disperse(more, range(seed, seed + 1))
    # Compute: a funded user's requests, then a settlement.
    provider_config = config.replace(**{"compute.settle_threshold": 10**30}).to_dict()
    [provider] = launch_providers(provider_config, config.data_dir, 1, 0.1, False)
    address = provider_account(config.devnet.key_seed, 0).address
    user = ComputeClient(user_account(config.devnet.key_seed, 0), provider_retry_s=20)
    user.deposit(2 * ZG)
    user.fund(address, ZG)
    for _ in range(2):
        user.infer(address, "What is a blockchain?", 8)
    assert runtime.call(provider.settle_now.remote(), 60)["txs"] == 1
    write_kv(rpc.kv(), storage, network_id)
    return [storage, da, gateway, provider], more_da


def write_kv(kv: KvClient, storage: StorageClient, network_id: int) -> None:
    """Two KV txs writing one key, the second claiming to have read before the first: the
    KV node records Commit, then VersionConfliction; and a call the kv_* RPC refuses."""
    notes = stream_id_from_name(NOTES)
    first = Batcher(kv, storage, network_id)
    first.set(notes, b"k", b"first")
    sent = first.exec()
    assert sent["tx_seq"] > 0  # the storage uploads came first: there is a version before
    late = Batcher(kv, storage, network_id, version=sent["tx_seq"] - 1)
    late.set(notes, b"k", b"late")
    assert late.exec(wait=True)["result"] == "VersionConfliction"
    assert kv.wait_result(sent["tx_seq"]) == "Commit"
    with pytest.raises(ZgError):
        kv.rpc.call("kv_getValue", "0xnot-a-stream", "", 0, 1)


class RpcSide:
    """In a thread beside the other pillars' workload: a KV node following "notes", the
    kv_* and Ethereum JSON-RPC apps on one Serve proxy, EVM txs of each type (one reverts)
    and a refused call; then a read on each RPC every second until stopped, as a live
    RPC's steady traffic (windowed rates need calls across exports of Ray's metrics
    agent)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="prometheus-rpc")
        self.stopping = threading.Event()
        self.kv_ready = threading.Event()
        self.kv_client: KvClient | None = None
        self.future: Future | None = None

    def start(self, config, network_id: int) -> None:
        port = free_port()
        config = config.replace(**{"kv.nodes": 1, "kv.streams": NOTES,
                                   "kv.network": network_id, "kv.rpc_port": port,
                                   "networks.evm.rpc_port": port})
        self.future = self.pool.submit(self._run, config, network_id)

    def kv(self) -> KvClient:
        """The kv_* RPC's client once the KV node and its app are up."""
        assert runtime.wait_for(lambda: self.kv_ready.is_set() or self.future.done(),
                                DATA_TIMEOUT_S, 0.2), "the KV node and RPC did not come up"
        if not self.kv_ready.is_set():
            self.future.result()  # raises what stopped the thread
        return self.kv_client

    def _run(self, config, network_id: int) -> list:
        nodes = start_kv_nodes(config)
        self.kv_client = kv = KvClient(start_kv_rpc(config))
        self.kv_ready.set()
        eth = EthRpc(start_evm_rpc(config, network_id))
        wallet = Wallet(0, config.networks.evm.chain_id(network_id), config.devnet.key_seed)

        def send(*raws: bytes) -> list[dict]:
            return wait_receipts(eth, [eth.call("eth_sendRawTransaction", ["0x" + raw.hex()])
                                       for raw in raws])
        [created] = send(wallet.sign(data=INIT, gas=200_000))
        contract = bytes.fromhex(created["contractAddress"][2:])
        statuses = [r["status"] for r in send(
            wallet.sign(to=contract, data=store_call(7), kind=0),
            wallet.sign(to=contract, data=REVERT_CALL, kind=1))]
        assert statuses == ["0x1", "0x0"], statuses
        with pytest.raises(EvmBenchError):
            eth.call("eth_sendRawTransaction", ["0x00"])
        notes = stream_id_from_name(NOTES)
        while not self.stopping.wait(1.0):
            kv.get_value(notes, b"k")
            eth.call("eth_blockNumber", [])
        return nodes

    def stop(self) -> None:
        """Stop the reads; raises what failed in the thread."""
        self.stopping.set()
        if self.future is not None:
            self.future.result(timeout=60)
        self.pool.shutdown()


def query_range(base: str, expr: str, start: float, end: float) -> list[dict]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end,
                                    "step": STEP_S})
    answer = get_json(f"{base}/api/v1/query_range?{query}")
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def has_values(series: list[dict]) -> bool:
    return any(math.isfinite(float(value)) for s in series for _, value in s["values"])


@pytest.fixture
def rpc(deployment) -> Iterator[RpcSide]:
    """The KV and EVM side of the workload; afterwards its thread and the Serve apps (kv_*
    and Ethereum JSON-RPC) are gone; the KV node goes with the deployment's actors."""
    side = RpcSide()
    try:
        yield side
    finally:
        side.stopping.set()
        side.pool.shutdown(wait=False)  # a failed run's thread may be in a long wait
        serve.shutdown()


def test_every_dashboard_panel_has_data_in_prometheus(prometheus: str, deployment,
                                                      rpc: RpcSide) -> None:
    d, config = deployment
    config = config.replace(**{"compute.provider_num_cpus": 0.1,
                               "codec.encoder_num_cpus": 0.1, "storage.miner_num_cpus": 0.05})
    started = time.time()
    alive, more_da = run_workload(d, config, prometheus, rpc)
    panels = list(all_expressions())
    series_names = [f"ray_{name}{EXPORTED_SUFFIXES[kind][0]}"
                    for name, (kind, _, _) in ALL_METRICS.items() if name not in FAULT_ONLY]

    def empty() -> list[str]:
        now = time.time()
        missing = [f"{name}: {title}: {expr}" for name, title, expr in panels
                   if not has_values(query_range(prometheus, expr, started, now))]
        # `or vector(0)` must hide no metric: each one (but FAULT_ONLY) has its own series.
        return missing + [name for name in series_names
                          if not has_values(query_range(prometheus, name, started, now))]

    seeds = iter(range(100, 10_000))

    def settled() -> bool:
        missing = empty()
        if any("ray_zg_da_" in m or "da-grpc" in m for m in missing):
            # Windowed rates need traffic across the window, as a live DA has: on a loaded
            # machine both rounds above may fall into one export of Ray's metrics agent.
            # (The JSON-RPCs get theirs from RpcSide's steady reads.)
            more_da(next(seeds))
        return not missing

    assert runtime.wait_for(settled, DATA_TIMEOUT_S, 3.0), "\n".join(empty())
    rpc.stop()
    del alive  # the actors lived until every query was answered
