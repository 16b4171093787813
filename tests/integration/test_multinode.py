"""A worker node lost with every actor on it and its disk, on a multi-node Ray cluster (a
head and four workers with cluster.yaml's resources): the chain keeps committing, the moved
validators catch up from peers on empty stores, files and blobs stay readable, storage
miners rebuild their shards by repair, DA nodes come back empty, and the other provider
keeps serving. The scenario runs in its own process (tests/integration/multinode.py): a
process holds one Ray connection, and the session's shared cluster holds this one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_TIMEOUT_S = 280  # the cluster, the stack, the fault and every recovery
RECOVERY_BOUND_S = 60.0  # each recovery the scenario measures, after the node is lost


def run_scenario() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-m", "tests.integration.multinode", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=SCENARIO_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_node_lost_with_its_disk_and_every_pillar_recovers() -> None:
    report = run_scenario()
    before, after = report["before"], report["after"]
    lost = report["actors_lost"]
    # The victim carried a share of every role (the roles spread over the workers).
    assert any(n.startswith("zg-validator-") for n in lost), lost
    assert any(n.startswith("zg-miner-") for n in lost), lost
    assert any(n.startswith("zg-da-node-") for n in lost), lost
    assert any(n.startswith("zg-provider-") for n in lost), lost
    # Singletons stay on the head, which offers zg_control and is never taken away.
    singletons = ("staking", "networks", "relayer")
    assert {report["placement_before"][n] for n in singletons} == {"head"}
    assert before["file_status"] == "FINALIZED"
    # The chain keeps committing; the moved validators come back elsewhere and catch up
    # on empty stores from their peers.
    assert after["chain_commits_s"] is not None and after["chain_commits_s"] < RECOVERY_BOUND_S
    assert after["validators_caught_up_s"] and all(
        s is not None and s < RECOVERY_BOUND_S for s in after["validators_caught_up_s"].values())
    assert all(node != report["victim"] for node in after["placement"].values())
    # Files and blobs stay readable; the other provider keeps serving.
    assert after["file_download_identical"] and after["blob_retrieve_identical"]
    assert after["served_by_others"] and all(after["served_by_others"].values())
    # The moved miners start empty and are refilled by repair to k + m shards a segment.
    assert after["miners_repaired_s"] is not None
    assert all(shards > 0 for shards in after["moved_miner_shards"].values())
    # The moved DA nodes come back empty: the old blob's slices are gone from them, and
    # new blobs are certified meanwhile by the others.
    assert all(n and n > 0 for n in before["blob_slices_on_lost_da_nodes"])
    assert after["blob_slices_on_moved_da_nodes"] == [0] * len(
        before["blob_slices_on_lost_da_nodes"])
    assert after["new_blob_finalized"]
    assert after["new_file_status"] == "FINALIZED" and after["new_file_identical"]
    assert after["height"] > before["height"]
