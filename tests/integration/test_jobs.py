"""Each workload job's core, with small sizes, on the shared local Ray cluster: the
figures its report gives come from real uploads, blobs and requests, and errors are 0."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from zg_actors import runtime
from zg_actors.compute.actors import launch_providers
from zg_actors.config import Config
from zg_actors.rpc.client import DisperserClient
from zg_actors.storage.sdk import StorageClient
from zg_actors.workload import Progress

from .test_kv import free_port

pytestmark = pytest.mark.integration

JOBS = Path(__file__).resolve().parents[2] / "jobs"
# Every pillar at once on the 2 CPUs of the test cluster (the defaults add up to more).
SMALL = {"compute.provider_num_cpus": 0.1, "codec.encoder_num_cpus": 0.1,
         "storage.miner_num_cpus": 0.05, "da.gateway_port": 0}
QUIET = Progress(quiet=True)


def load_job(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def network0(deployment) -> tuple[Any, Config]:
    d, config = deployment
    assert runtime.call(d.manager.launch_network.remote(4), 300)["network_id"] == 0
    return d, config.replace(**SMALL)


@pytest.fixture
def storage(network0) -> Iterator[StorageClient]:
    _, config = network0
    client = StorageClient(config)  # starts the miners, kept alive by the client
    client.warm_up()
    yield client


@pytest.fixture
def disperser(network0) -> Iterator[DisperserClient]:
    from zg_actors.da.deploy import deploy_da
    from zg_actors.rpc.gateway import deploy_gateway

    _, config = network0
    handles = deploy_da(config)  # kept: the actors are not detached
    gateway, where = deploy_gateway(config)
    with DisperserClient(f"127.0.0.1:{where['port']}") as client:
        yield client
    del handles, gateway


@pytest.fixture
def kv(network0, storage) -> Iterator[tuple[Any, Config]]:
    """Two KV nodes following one stream of network 0, and their JSON-RPC."""
    from ray import serve

    from zg_actors.storage.kv.actors import start_kv_nodes, start_kv_rpc, stop_kv
    from zg_actors.storage.kv.client import KvClient

    _, config = network0
    config = config.replace(**{"kv.streams": "jobs", "kv.rpc_port": free_port()})
    nodes = start_kv_nodes(config)  # held: a non-detached actor lives while a handle does
    yield KvClient(start_kv_rpc(config)), config
    del nodes
    stop_kv(config)
    serve.shutdown()


def test_storage_ingest_uploads_concurrently_and_verifies_a_sample(storage) -> None:
    job = load_job("storage_ingest")
    # Three uploads at once from one client: each submission needs its own nonce.
    report = job.run_ingest(storage, files=6, min_bytes=4096, max_bytes=600_000,
                            concurrency=3, sample=3, seed=1, max_seconds=180, progress=QUIET)
    assert report["errors"] == 0, report
    assert report["upload"]["files"] == 6 and report["upload"]["bytes"] == \
        report["dataset_bytes"]
    assert report["download"]["verified"] == 3
    # each upload expected the tx sequence after the client's pending ones: no resends
    assert report["upload"]["sequence_misses"] == 0
    for phase in ("upload", "download"):
        assert report[phase]["mb_per_s"] > 0
        assert 0 < report[phase]["latency_p50_s"] <= report[phase]["latency_p99_s"]


def test_da_rollup_posts_at_its_rate_and_every_batch_is_finalized(disperser) -> None:
    job = load_job("da_rollup")
    report = job.run_rollup(disperser, rate=2.0, blob_bytes=16 * 1024, duration_s=4.0,
                            settle_s=120.0, seed=1, verify=2, progress=QUIET)
    assert report["errors"] == 0, report
    posted = report["posted"]["blobs"]
    assert 7 <= posted <= 9  # 2 a second for 4 s
    assert report["finalized"]["blobs"] == report["confirmed"]["blobs"] == posted
    assert report["retrieved"]["blobs"] == 2
    assert report["confirmed_mb_per_s"] > 0
    assert report["finalized"]["latency_p99_s"] >= report["confirmed"]["latency_p50_s"] > 0


def test_inference_load_serves_funded_users_and_settles_every_fee(network0) -> None:
    from zg_actors.compute.accounts import user_account
    from zg_actors.compute.sdk import ComputeClient
    from zg_actors.config import ZG

    job = load_job("inference_load")
    _, config = network0
    providers = launch_providers(config.to_dict(), config.data_dir, 1,
                                 config.compute.provider_num_cpus, detached=False)
    services = job.live_providers()
    assert [s["endpoint"] for s in services] == ["zg-compute-provider-0"]
    clients = [ComputeClient(user_account(config.devnet.key_seed, i)) for i in range(2)]
    job.fund_users(clients, [s["provider"] for s in services], ZG, QUIET)
    report = job.run_inference(clients, services, duration_s=5.0, max_tokens=4,
                               progress=QUIET)
    assert report["errors"] == 0, report
    assert report["requests"]["requests"] > 0 and report["tokens_per_s"] > 0
    assert report["fees_billed"] > 0 and report["fees_settled"] == report["fees_billed"]
    assert report["requests_settled"] == report["requests"]["requests"]
    assert report["settlement_txs"] >= 1 and report["unsettled_fees"] == 0
    del providers


def test_ai_pipeline_weights_to_storage_provider_from_roots_memory_and_transcript(
        network0, storage, disperser) -> None:
    job = load_job("ai_pipeline")
    _, config = network0
    report = job.run_pipeline(config, storage, disperser, questions=2, max_tokens=4, user=0,
                              progress=QUIET)
    assert report["errors"] == 0, report
    assert all(report["reread"].values()), report["reread"]
    where = report["where"]
    weights, provider = where["weights (storage)"], where["provider (compute, network 0)"]
    assert weights["size"] > 50_000_000 and weights["status"] == "FINALIZED"
    assert provider["model_roots"] == weights["roots"]
    assert provider["index"] == config.compute.providers
    assert len(where["memory (storage)"]) == 2 == len(report["turns"])  # KV is not up
    assert where["transcript (DA)"]["status"] == "FINALIZED"
    assert report["agent"]["fees_settled"] == report["agent"]["fees"] > 0


def test_scale_networks_keeps_storage_and_da_loaded_while_a_network_is_added(
        network0, storage, disperser) -> None:
    job = load_job("scale_networks")
    _, config = network0
    args = job.parse_args(["--add", "1", "--rate", "50", "--step-seconds", "6",
                           "--pillars", "storage,da", "--retire"])
    steps = job.scale(config, args, QUIET)
    assert [len(s["networks"]) for s in steps] == [1, 2]
    for step in steps:
        assert step["total_tx_per_s"] > 0
        for pillar in ("storage", "da"):
            load = step["pillars"][pillar]
            assert load["errors"] == 0 and load["ops"] > 0, (pillar, load)


def test_kv_workload_counts_conflicts_the_counter_adds_up_and_agent_memory_lives_in_kv(
        kv, storage) -> None:
    from zg_actors.storage.kv.actors import followed_streams

    job = load_job("kv_workload")
    client, config = kv
    assert job.contending(8, 0.25, 1).count(True) == 2
    # Every tx contends and three are sent at once: the first three read one version of the
    # hot key, so at most one of them commits.
    report = job.run_kv(client, storage, 0, followed_streams(config)[0], txs=5, writers=3,
                        conflict_rate=1.0, readers=1, value_bytes=64, seed=1,
                        max_seconds=300, progress=QUIET)
    assert report["errors"] == 0, (report["committed"], report["reads"], report["results"])
    committed = report["committed"]["txs"]
    assert report["conflicts"] >= 2 and committed >= 1
    assert report["results"] == {"Commit": committed, "VersionConfliction": report["conflicts"]}
    assert committed + report["conflicts"] == 5 and report["hot_counter"] == committed
    assert report["committed_per_s"] > 0 and report["reads"]["reads"] > 0
    assert 0 < report["reads"]["latency_p50_s"] <= report["reads"]["latency_p99_s"]
    # No contention: every tx commits.
    calm = job.run_kv(client, storage, 0, followed_streams(config)[0], txs=3, writers=3,
                      conflict_rate=0.0, readers=1, value_bytes=64, seed=1, max_seconds=300,
                      progress=QUIET)
    assert calm["errors"] == 0 and calm["results"] == {"Commit": 3}, calm
    # With the KV pillar up, ai_pipeline's agent keeps its memory there, each turn
    # readable at its own version.
    pipeline = load_job("ai_pipeline")
    memory = pipeline.agent_memory(config, storage, storage.account.address)
    assert memory.place == "KV"
    first, second = memory.save({"turns": [1]}), memory.save({"turns": [1, 2]})
    assert second["tx_seq"] > first["tx_seq"] and second["key"] == first["key"]
    assert memory.load(first) == {"turns": [1]} and memory.load(second) == {"turns": [1, 2]}


def test_evm_load_deploys_an_erc20_and_every_transfer_arrives(network0) -> None:
    from ray import serve
    from web3 import Web3

    from zg_actors.evm.serve import start_evm_rpc, stop_all_evm_rpc

    job = load_job("evm_load")
    _, config = network0
    config = config.replace(**{"networks.evm.rpc_port": free_port()})
    try:
        w3 = Web3(Web3.HTTPProvider(start_evm_rpc(config, 0), request_kwargs={"timeout": 60}))
        report = job.run_load(w3, job.devnet_keys(config.devnet.key_seed, 3), duration_s=5.0,
                              progress=QUIET)
    finally:
        stop_all_evm_rpc()
        serve.shutdown()
    assert report["errors"] == 0, report
    transfers = report["transfers"]["transfers"]
    assert transfers >= 2 and report["tokens_received"] == transfers * job.AMOUNT
    assert report["gas_used"] > 21_000 * transfers and report["base_fee_min"] > 0
    assert 0 < report["transfers"]["latency_p50_s"] <= report["transfers"]["latency_p99_s"]
