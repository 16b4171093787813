"""The storage part of `zg demo` (the lead wires it into zg_actors/demo.py):
upload a few-MB file, lose a miner, download it intact, mine a few epochs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from zg_actors import runtime
from zg_actors.config import Config
from zg_actors.storage.actors import miner_name
from zg_actors.storage.sdk import StorageClient

DEMO_FILE_BYTES = 4 * 1024 * 1024 + 12_345  # a few MB and not a whole number of segments
DEMO_EPOCHS = 2
DEMO_VICTIM = 1  # the miner the demo kills
DEMO_BASE_POOL_ANSWERS = 100  # base rewards donated up front


def run_storage_demo(deployment: runtime.Deployment, config: Config,
                     say: Callable[[str], None]) -> dict[str, Any]:
    """Upload, kill a miner, download byte-identical, mine; returns the figures."""
    import ray

    networks = runtime.call(deployment.manager.active_networks.remote())
    if not networks:
        networks = [runtime.call(deployment.manager.launch_network.remote(), 300)["network_id"]]
    network_id = networks[0]
    client = StorageClient(config)
    data = os.urandom(DEMO_FILE_BYTES)
    say(f"storage: uploading {len(data) / 1e6:.1f} MB to network {network_id} "
        f"({config.storage.miners} miners, k={config.storage.data_shards} + "
        f"m={config.storage.parity_shards} shards per segment)")
    receipt = client.upload(data, network_id)
    upload_mb_s = len(data) / 1e6 / receipt["seconds"]
    root = receipt["root"]
    say(f"storage: root 0x{root.hex()[:16]}... tx_seq {receipt['tx_seq']}, "
        f"{upload_mb_s:.1f} MB/s")
    status = client.wait_finalized(root, 60)["status"]
    say(f"storage: file is {status}; killing miner {DEMO_VICTIM}")
    ray.kill(ray.get_actor(miner_name(DEMO_VICTIM)), no_restart=True)
    started = time.time()
    downloaded = client.download(root)
    download_mb_s = len(data) / 1e6 / (time.time() - started)
    intact = downloaded == data
    say(f"storage: downloaded {'byte-identical' if intact else 'DIFFERENT'} bytes without "
        f"miner {DEMO_VICTIM}, proofs and root verified, {download_mb_s:.1f} MB/s")
    client.donate(DEMO_BASE_POOL_ANSWERS * config.storage.base_reward, network_id)
    miners = [i for i in range(config.storage.miners) if i != DEMO_VICTIM][:2]
    say(f"storage: miners {miners} sync a sealed replica of the flow and mine "
        f"{DEMO_EPOCHS} epochs")
    reports = client.mine(network_id, miners, epochs=DEMO_EPOCHS)
    answers = sum(r["answers"] for r in reports)
    rewards = sum(r["rewards_paid"] for r in reports)
    iterations = sum(r["iterations"] for r in reports)
    seconds = sum(r["seconds"] for r in reports)
    say(f"storage: {answers} PoRA answers submitted, rewards paid {rewards} base units, "
        f"{iterations / max(seconds, 1e-9):.0f} PoRA iterations/s per miner")
    return {"network_id": network_id, "root": root, "size": len(data), "status": status,
            "upload_mb_s": upload_mb_s, "download_mb_s": download_mb_s, "intact": intact,
            "killed_miner": DEMO_VICTIM, "answers_submitted": answers,
            "rewards_paid": rewards, "pora_iterations_per_s": iterations / max(seconds, 1e-9),
            "ok": intact and rewards > 0}
