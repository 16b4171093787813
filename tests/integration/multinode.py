"""A worker node lost with every actor and all the data on it, on a multi-node Ray cluster.

Run as its own process (`python -m tests.integration.multinode --json`): it starts a
ray.cluster_utils.Cluster (a head and four workers on this machine, each with the custom
resources cluster.yaml gives its node type and a `zg-node` label), deploys a small stack
with `data_dir_per_node` (so each node's stores lie apart, as on local disks), loads every
pillar, removes one worker and deletes its data dir (disk loss), and measures what comes
back. It prints one JSON report; tests/integration/test_multinode.py checks it. A process
holds one Ray connection, so this cannot share the integration session's cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.cluster_utils import Cluster

from zg_actors import runtime
from zg_actors.chain.validator_actor import validator_name
from zg_actors.compute.accounts import user_account
from zg_actors.compute.actors import launch_providers, provider_name
from zg_actors.compute.sdk import ComputeClient
from zg_actors.config import ZG, Config
from zg_actors.da.deploy import deploy_da
from zg_actors.da.node_actor import da_node_name
from zg_actors.da.params import BlobStatus
from zg_actors.placement import (
    CONTROL_RESOURCE,
    DA_NODE_RESOURCE,
    KV_RESOURCE,
    MINER_RESOURCE,
    NODE_LABEL,
    PROVIDER_RESOURCE,
    VALIDATOR_RESOURCE,
)
from zg_actors.stack import up_storage
from zg_actors.storage.actors import find_miners, miner_name
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.sdk import StorageClient

from .conftest import integration_config

NAMESPACE = "zg-multinode"
WORKERS = 4
NODE_OBJECT_STORE_BYTES = 75 * 1024 * 1024
# Each worker offers two of each role, so that the roles of a lost worker fit on the others.
WORKER_RESOURCES = {VALIDATOR_RESOURCE: 2, MINER_RESOURCE: 2, DA_NODE_RESOURCE: 2,
                    PROVIDER_RESOURCE: 1, KV_RESOURCE: 1}
RECOVERY_TIMEOUT_S = 120.0  # each recovery the report measures is waited for this long
PROMPT = "What is a blockchain?"


def stack_config(data_dir: str, per_node: bool = True) -> Config:
    """The integration devnet, small enough for five Ray nodes on two cores."""
    return integration_config(**{
        "data_dir": data_dir, "data_dir_per_node": per_node, "ray.namespace": NAMESPACE,
        "compute.providers": 2, "compute.provider_num_cpus": 0.1,
        "codec.encoder_num_cpus": 0.1, "storage.miner_num_cpus": 0.05,
        "storage.repair_grace_s": 5.0, "storage.repair_interval_s": 1.0,
        "da.dispersers": 1})


def start_cluster() -> Cluster:
    system = runtime.system_config(integration_config())
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {CONTROL_RESOURCE: 1}, "labels": {NODE_LABEL: "head"},
        "object_store_memory": NODE_OBJECT_STORE_BYTES, "include_dashboard": False,
        "_system_config": system})
    for i in range(WORKERS):
        cluster.add_node(num_cpus=1, resources=dict(WORKER_RESOURCES),
                         labels={NODE_LABEL: f"worker-{i}"},
                         object_store_memory=NODE_OBJECT_STORE_BYTES)
    cluster.wait_for_nodes()
    progress("cluster up")
    return cluster


def placement() -> dict[str, str]:
    """{actor name: zg-node label of the node it runs on} of the live named actors."""
    labels = {n["NodeID"]: n.get("Labels", {}).get(NODE_LABEL, n["NodeID"])
              for n in ray.nodes() if n["Alive"]}
    where = {}
    # Ray's state API (ray.util.state) needs the dashboard, which these nodes run without.
    for actor in ray._private.state.actors().values():
        if actor["State"] == "ALIVE" and actor["Name"]:
            where[actor["Name"]] = labels.get(actor["Address"]["NodeID"], "?")
    return where


def heights(handles: list[Any]) -> list[int | None]:
    out: list[int | None] = []
    for handle in handles:
        try:
            out.append(ray.get(handle.status.remote(), timeout=5)["height"])
        except Exception:
            out.append(None)
    return out


def shards_held(config: Config, network_id: int, tx_seq: int) -> list[int]:
    """Per segment of the entry, how many distinct shards the live miners keep."""
    held: dict[int, set[int]] = {}
    for handle in find_miners(config).values():
        try:
            holdings = ray.get(handle.holdings.remote(), timeout=10)
        except Exception:
            continue
        for segment, shard in holdings.get((network_id, tx_seq), (b"", 0, {}))[2].items():
            held.setdefault(segment, set()).add(shard)
    return [len(held[s]) for s in sorted(held)]


def blob_finalized(disperser: Any, request_id: bytes) -> bool:
    return runtime.wait_for(lambda: ray.get(disperser.status.remote(request_id))["status"]
                            == BlobStatus.FINALIZED, RECOVERY_TIMEOUT_S, 0.3)


def slices_held(node: Any, request_id: bytes) -> int | None:
    try:
        return len(ray.get(node.get_slices.remote(request_id), timeout=10))
    except Exception:
        return None


def timed(what: str, predicate: Any, since: float, timeout_s: float = RECOVERY_TIMEOUT_S,
          interval_s: float = 0.5) -> float | None:
    """Seconds from `since` until predicate() holds, or None if it never did."""
    seconds = (round(time.time() - since, 1)
               if runtime.wait_for(predicate, timeout_s, interval_s) else None)
    progress(f"{what}: {seconds} s")
    return seconds


def scenario(cluster: Cluster, data_dir: str, per_node: bool) -> dict[str, Any]:
    """With per_node, the lost node's disk goes with it; without, every node shares one
    data_dir (a network volume) and a moved actor reopens its store."""
    config = stack_config(data_dir, per_node)
    report: dict[str, Any] = {"workers": WORKERS, "data_dir_per_node": per_node}
    started = time.time()
    deployment = runtime.deploy(config, detached=True)
    network_id = runtime.call(deployment.manager.launch_network.remote(4), 120)["network_id"]
    up_storage(config)
    da = deploy_da(config, detached=True)
    disperser, da_nodes = da["dispersers"][0], da["nodes"]
    launch_providers(config.to_dict(), str(Path(data_dir).resolve()), 2,
                     config.compute.provider_num_cpus, detached=True)
    report["deploy_s"] = round(time.time() - started, 1)
    progress(f"deployed in {report['deploy_s']} s")

    # Load on every pillar before the fault.
    storage = StorageClient(config, start=False)
    file_data = os.urandom(3 * SEGMENT_BYTES + 12_345)
    file_receipt = storage.upload(file_data, network_id)
    blob = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8)
    blob_id = ray.get(disperser.disperse.remote(blob))["request_id"]
    assert blob_finalized(disperser, blob_id), "the blob before the fault never FINALIZED"
    alice = ComputeClient(user_account(config.devnet.key_seed, 0), provider_retry_s=30.0)
    alice.deposit(4 * ZG)
    services = {s["endpoint"]: s["provider"] for s in alice.services()}
    for address in services.values():
        alice.fund(address, ZG)
    served_before = {endpoint: bool(alice.infer(address, PROMPT, 4)["signature_ok"])
                     for endpoint, address in services.items()}

    progress("loaded every pillar")
    where = placement()
    report["placement_before"] = where
    validators = runtime.call(deployment.manager.validator_handles.remote(network_id))
    # The victim: a worker with a compute provider, and so with a share of every role.
    candidates = [where[provider_name(i)] for i in range(2)
                  if where[provider_name(i)].startswith("worker-")]
    victim = candidates[0]
    lost = sorted(name for name, node in where.items() if node == victim)
    report["victim"], report["actors_lost"] = victim, lost
    lost_validators = [i for i in validators if where[validator_name(network_id, i)] == victim]
    lost_miners = [i for i in range(config.storage.miners) if where[miner_name(i)] == victim]
    lost_da = [i for i in range(config.da.nodes) if where[da_node_name(i)] == victim]
    lost_providers = [i for i in range(2) if where[provider_name(i)] == victim]
    report["before"] = {"height": max(h for h in heights(list(validators.values())) if h),
                        "file_status": file_receipt["status"],
                        "blob_slices_on_lost_da_nodes": [slices_held(da_nodes[i], blob_id)
                                                         for i in lost_da],
                        "served": served_before,
                        "shards_on_lost_miners": [
                            ray.get(ray.get_actor(miner_name(i)).stats.remote(),
                                    timeout=30)["shards"] for i in lost_miners],
                        "unsettled_on_lost_providers": [
                            ray.get(ray.get_actor(provider_name(i)).status.remote(),
                                    timeout=30)["unsettled_requests"] for i in lost_providers]}

    # The fault: the node goes with every actor on it, and its disk with it.
    node = next(n for n in cluster.worker_nodes if _label_of(n) == victim)
    fault_at = time.time()
    cluster.remove_node(node)
    if per_node:
        shutil.rmtree(Path(data_dir) / victim)
    report["fault"] = {"removed_node": victim,
                       "deleted": str(Path(data_dir) / victim) if per_node else None}
    height_at_fault = report["before"]["height"]
    survivors = [validators[i] for i in validators if i not in lost_validators]

    progress(f"removed {victim} with {lost}")
    after: dict[str, Any] = {}
    after["chain_commits_s"] = timed(
        "chain commits",
        lambda: max((h or 0) for h in heights(survivors)) >= height_at_fault + 3, fault_at)
    after["file_download_identical"] = storage.download(file_receipt["root"]) == file_data
    after["blob_retrieve_identical"] = bytes(ray.get(disperser.retrieve.remote(blob_id),
                                                     timeout=60)) == blob.tobytes()
    surviving_providers = [e for e, _ in services.items()
                           if e not in {provider_name(i) for i in lost_providers}]
    after["served_by_others"] = {e: bool(alice.infer(services[e], PROMPT, 4)["signature_ok"])
                                 for e in surviving_providers}

    def caught_up(handle: Any) -> bool:
        status = heights([handle])[0]
        return status is not None and status >= max((h or 0) for h in heights(survivors))

    after["validators_caught_up_s"] = {
        i: timed(f"validator {i} caught up", lambda h=validators[i]: caught_up(h), fault_at)
        for i in lost_validators}
    segments = len(shards_held(config, network_id, file_receipt["tx_seq"]))
    shards = config.storage.data_shards + config.storage.parity_shards
    after["miners_repaired_s"] = timed(
        "miners repaired",
        lambda: shards_held(config, network_id, file_receipt["tx_seq"]) == [shards] * segments
        and all(_alive(ray.get_actor(miner_name(i))) for i in lost_miners), fault_at)
    after["moved_miner_shards"] = [ray.get(ray.get_actor(miner_name(i)).stats.remote(),
                                           timeout=30)["shards"] for i in lost_miners]
    after["da_nodes_back_s"] = timed(
        "DA nodes back",
        lambda: all(slices_held(da_nodes[i], blob_id) is not None for i in lost_da), fault_at)
    after["blob_slices_on_moved_da_nodes"] = [slices_held(da_nodes[i], blob_id)
                                              for i in lost_da]
    new_file = os.urandom(SEGMENT_BYTES + 7)
    new_receipt = storage.upload(new_file, network_id)
    after["new_file_status"] = new_receipt["status"]
    after["new_file_identical"] = storage.download(new_receipt["root"]) == new_file
    new_blob = np.random.default_rng(2).integers(0, 256, 20_000, dtype=np.uint8)
    new_blob_id = ray.get(disperser.disperse.remote(new_blob))["request_id"]
    after["new_blob_finalized"] = blob_finalized(disperser, new_blob_id)
    after["blob_slices_on_moved_da_nodes_new_blob"] = [slices_held(da_nodes[i], new_blob_id)
                                                       for i in lost_da]
    after["providers_back_s"] = {
        i: timed(f"provider {i} back", lambda i=i: _alive(ray.get_actor(provider_name(i))),
                 fault_at)
        for i in lost_providers}
    after["moved_providers_serve"] = [
        bool(alice.infer(services[provider_name(i)], PROMPT, 4)["signature_ok"])
        for i in lost_providers]
    after["moved_providers_recovered_receipts"] = [
        ray.get(ray.get_actor(provider_name(i)).status.remote(), timeout=30)[
            "recovered_receipts"] for i in lost_providers]
    moved = {name: node for name, node in placement().items() if name in lost}
    after["placement"] = moved
    # Each moved actor's store now lies under its new node's directory; the lost node's
    # directory stays gone (nothing wrote there again).
    stores = {validator_name(network_id, i): Path(f"network-{network_id}/validator-{i}")
              for i in lost_validators}
    stores |= {miner_name(i): Path(f"storage/miner-{i}") for i in lost_miners}
    stores |= {da_node_name(i): Path(f"da-node-{i}") for i in lost_da}
    stores |= {provider_name(i): Path(f"compute/provider-{i}") for i in lost_providers}
    root = {name: Path(data_dir) / moved[name] if per_node else Path(data_dir)
            for name in stores}
    after["stores_on_new_nodes"] = {name: (root[name] / store).is_dir()
                                    for name, store in stores.items()}
    after["lost_node_dir_exists"] = (Path(data_dir) / victim).exists()
    after["height"] = max((h or 0) for h in heights(list(validators.values())))
    report["after"] = after
    report["seconds"] = round(time.time() - started, 1)
    return report


def progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _alive(handle: Any) -> bool:
    try:
        ray.get(handle.ping.remote(), timeout=5)
        return True
    except Exception:
        return False


def _label_of(node: Any) -> str:
    return next(n.get("Labels", {}).get(NODE_LABEL, "") for n in ray.nodes()
                if n["NodeID"] == node.node_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--shared-data-dir", action="store_true",
                        help="one data_dir for every node (no disk loss): moved actors "
                             "reopen their stores")
    args = parser.parse_args(argv)
    temp_dir = tempfile.mkdtemp(prefix="zgmn-")
    # Ray's sessions, sockets and its "current cluster" address file go here, not under
    # /tmp/ray, where `ray.init(address="auto")` of other Ray users on this host looks.
    os.environ["RAY_TMPDIR"] = temp_dir
    data_dir = os.path.join(temp_dir, "data")
    cluster = None
    try:
        cluster = start_cluster()
        ray.init(address=cluster.address, namespace=NAMESPACE, logging_level="ERROR",
                 log_to_driver=False)
        report = scenario(cluster, data_dir, per_node=not args.shared_data_dir)
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    print(json.dumps(report, indent=None if args.json else 2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
