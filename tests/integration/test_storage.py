"""The storage log layer on a real local Ray cluster: upload, verified download,
rejection of bad segments, miner loss and repair."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import ray

from zg_actors import runtime
from zg_actors.cli import main
from zg_actors.errors import ZgError
from zg_actors.storage.actors import StorageMiner, miner_name, stop_miners
from zg_actors.storage.constants import SEGMENT_BYTES, STATUS_FINALIZED
from zg_actors.storage.errors import WrongEntry
from zg_actors.storage.file import file_tree, pad, split_fragments
from zg_actors.storage.sdk import StorageClient

pytestmark = pytest.mark.integration


def cli_json(capsys) -> dict:
    """The JSON a `zg ... --json` call printed. Ray's driver may print its own warnings
    (e.g. "(raylet) WARNING: 8 PYTHON worker processes have been started") into the
    same stdout, so lines around the document are skipped."""
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    document, _end = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
    return document


@pytest.fixture
def storage(deployment):
    d, config = deployment
    network_id = ray.get(d.manager.launch_network.remote(4))["network_id"]
    client = StorageClient(config)
    yield client, config, network_id
    stop_miners(config)


def test_upload_download_reject_mine_lose_a_miner_and_rebuild(storage, tmp_path,
                                                              capsys) -> None:
    client, config, network_id = storage
    # The CLI: upload, file-info, download (each --json), through the same SDK.
    source, out = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(os.urandom(700_000))
    assert main(["upload", str(source), "--network", str(network_id), "--json"]) == 0
    receipt = cli_json(capsys)
    assert receipt["root"] == "0x" + file_tree(source.read_bytes()).root.hex()
    assert receipt["network_id"] == network_id and receipt["tx_seq"] == 0
    assert main(["file-info", receipt["root"], "--json"]) == 0
    info = cli_json(capsys)
    assert info["size"] == 700_000 and info["status"] in ("UPLOADING", "FINALIZED")
    assert main(["download", receipt["root"], str(out), "--json"]) == 0
    assert cli_json(capsys)["verified"] is True
    assert out.read_bytes() == source.read_bytes()
    assert main(["file-info", "0x" + "00" * 32, "--json"]) == 2
    assert cli_json(capsys)["code"] == "UNKNOWN_FILE"
    # The SDK: a file of several segments, each verified and kept as k + m shards.
    data = os.urandom(3 * SEGMENT_BYTES + 12_345)
    receipt = client.upload(data, network_id)
    tree = file_tree(data)
    assert receipt["tx_seq"] == 1
    assert receipt["root"] == tree.root and receipt["network_id"] == network_id
    assert receipt["shard_acks"] == tree.segments * 3
    assert client.download(tree.root) == data
    assert client.wait_finalized(tree.root)["status"] == STATUS_FINALIZED
    # A file over storage.max_entry_bytes (here its minimum, one segment) is split into
    # consecutive entries, each with its own root and tx_seq; the CLI downloads it from
    # the comma-separated roots (0G's --roots) byte-identical.
    small = config.replace(**{"storage.max_entry_bytes": 262_144})
    splitter = StorageClient(small, start=False)
    big = os.urandom(600_000)
    split = splitter.upload(big, network_id)
    pieces = [big[o:o + n] for o, n in split_fragments(len(big), 262_144)]
    assert split["roots"] == [file_tree(p).root for p in pieces] and len(pieces) == 3
    assert [f["tx_seq"] for f in split["fragments"]] == [2, 3, 4]
    assert splitter.download_fragments(split["roots"]) == big
    assert main(["file-info", ",".join("0x" + r.hex() for r in split["roots"]), "--json"]) == 0
    assert cli_json(capsys)["size"] == 600_000
    assert main(["download", ",".join(r.hex() for r in split["roots"]), str(out),
                 "--json"]) == 0
    assert cli_json(capsys)["size"] == 600_000
    assert out.read_bytes() == big
    # A miner checks every segment against the on-chain root before it stores anything.
    miner = ray.get_actor(miner_name((receipt["tx_seq"] + 1) % config.storage.miners))
    before = ray.get(miner.stats.remote())["shards"]
    padded = pad(data)
    segment = np.frombuffer(tree.segment(padded, 1), dtype=np.uint8).copy()
    segment[10] ^= 0xFF
    bad_calls = [
        (1, segment, tree.proof(1)),  # tampered data
        (1, np.frombuffer(tree.segment(padded, 1), dtype=np.uint8), tree.proof(2)),  # wrong index
    ]
    for index, seg, proof in bad_calls:
        with pytest.raises(ray.exceptions.RayTaskError) as info:
            ray.get(miner.store_segment.remote(network_id, receipt["tx_seq"], index, seg,
                                               proof.to_list()))
        assert isinstance(runtime.unwrap(info.value), ZgError)
    other_data = os.urandom(SEGMENT_BYTES)  # a valid segment and proof, of another root
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(miner.store_segment.remote(network_id, receipt["tx_seq"], 0,
                                           np.frombuffer(other_data, dtype=np.uint8),
                                           file_tree(other_data).proof(0).to_list()))
    # Shards that prove a different root than the chain records at that tx sequence
    # (what a client sending ahead of its commit meets when another submission took the
    # sequence) are refused by name, and nothing is stored.
    other_tree = file_tree(other_data, keep_height=9)
    rows = np.frombuffer(other_data, dtype=np.uint8).copy()
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        ray.get(miner.store_shards.remote(
            network_id, receipt["tx_seq"], other_tree.root, len(other_data), rows,
            [[0, [0, 1], SEGMENT_BYTES // 2, [], other_tree.proof(0).to_list()]]))
    assert isinstance(runtime.unwrap(info.value), WrongEntry)
    assert ray.get(miner.stats.remote())["shards"] == before
    # PoRA: a miner rebuilds its own replica of the flow from the others, seals it,
    # mines a context and the `mine` module pays its answers.
    client.donate(100 * config.storage.base_reward, network_id)
    report = client.mine(network_id, [0], epochs=1)[0]
    assert report["answers"] >= 1 and report["iterations"] >= 1, report
    assert report["rewards_paid"] >= config.storage.base_reward, report
    # Faults: one miner (m = 1) dies; the file still downloads byte-identical, and a new
    # miner on a fresh store takes its place and rebuilds its shards from the others.
    root = receipt["root"]
    victim = 1
    ray.kill(ray.get_actor(miner_name(victim)), no_restart=True)
    assert client.download(root) == data
    fresh = config.replace(data_dir=config.data_dir + "/fresh")
    replacement = StorageMiner.options(name=miner_name(victim), num_cpus=0.1).remote(
        fresh.to_dict(), victim, fresh.data_dir)
    rebuilt = client.repair(root)
    assert rebuilt[victim], rebuilt
    assert ray.get(replacement.stats.remote())["shards"] == len(rebuilt[victim])
    ray.kill(ray.get_actor(miner_name((victim + 1) % config.storage.miners)), no_restart=True)
    assert client.download(root) == data  # the rebuilt shards serve in its place
    # A crashed miner that Ray restarts reopens its LMDB store: its shards still serve.
    runtime.kill_actor(ray.get_actor(miner_name(0)), restart=True)
    assert client.download(root) == data
