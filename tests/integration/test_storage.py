"""The storage log layer on a real local Ray cluster: upload, verified download,
rejection of bad segments, a miner crashing mid-upload, miner loss and the repairer."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import ray

from zg_actors import runtime
from zg_actors.cli import main
from zg_actors.crypto import sector_tree
from zg_actors.errors import ZgError
from zg_actors.storage.actors import StorageMiner, find_miners, miner_name, stop_miners
from zg_actors.storage.constants import SEGMENT_BYTES, STATUS_FINALIZED, STATUS_UPLOADING
from zg_actors.storage.errors import UploadIncomplete, WrongEntry
from zg_actors.storage.file import file_tree, pad, sector_roots, split_fragments
from zg_actors.storage.kv.encoding import (
    SKIP_CHECKS_VERSION,
    KVTx,
    StreamWrite,
    encode_tx,
    stream_id_from_name,
    stream_tags,
)
from zg_actors.storage.kv.replay import FlowEntry, Replayer
from zg_actors.storage.kv.state import KVState
from zg_actors.storage.kv.store import MemoryStore
from zg_actors.storage.sdk import StorageClient

from .conftest import cli_json

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(deployment):
    d, config = deployment
    # A quick repairer: rebuild what has been missing for 5 s (a restart takes ~1-3 s here).
    config = config.replace(**{"storage.repair_grace_s": 5.0, "storage.repair_interval_s": 1.0})
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
    # A crashed miner that Ray restarts reopens its LMDB store: its shards still serve.
    runtime.kill_actor(ray.get_actor(miner_name(0)), restart=True)
    assert client.download(receipt["root"]) == data


def shards_on_live_miners(config, network_id: int, tx_seq: int) -> dict[int, set[int]]:
    """{segment: shard indexes the live miners keep} of one entry."""
    held: dict[int, set[int]] = {}
    for handle in find_miners(config).values():
        try:
            holdings = ray.get(handle.holdings.remote(), timeout=30)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            continue
        for segment, shard in holdings.get((network_id, tx_seq), (b"", 0, {}))[2].items():
            held.setdefault(segment, set()).add(shard)
    return held


def test_a_miner_crashing_mid_upload_is_sent_again_and_the_file_outlives_more_than_m_losses(
        storage) -> None:
    client, config, network_id = storage
    shards = config.storage.data_shards + config.storage.parity_shards
    # Issue 17's scenario: 26 MiB (104 segments, 312 shards); miner 2 crashes (Ray
    # restarts it) once the entry is on chain, while its shards are in flight.
    data = os.urandom(26 * 2**20)
    root = file_tree(data).root

    def crash_when_submitted() -> None:
        runtime.wait_for(lambda: client._query(network_id, "file_info", root) is not None,
                         120, 0.02)
        runtime.kill_actor(ray.get_actor(miner_name(2)), restart=True)

    crasher = threading.Thread(target=crash_when_submitted)
    crasher.start()
    receipt = client.upload(data, network_id)
    crasher.join()
    segments = receipt["segments"]
    # Success means FINALIZED: the shards miner 2 lost were sent again after its restart.
    assert receipt["status"] == STATUS_FINALIZED == client.file_info(root)["status"]
    assert receipt["shards_resent"] > 0, "the crash hit no shard in flight"
    assert receipt["shard_acks"] == segments * shards
    assert all(len(held) == shards for held in
               shards_on_live_miners(config, network_id, receipt["tx_seq"]).values())
    # m = 1 miner lost for good: the file still downloads byte-identical, and the
    # repairer, unasked, rebuilds that miner's shards from k peers onto live miners.
    ray.kill(ray.get_actor(miner_name(3)), no_restart=True)
    assert client.download(root) == data
    assert runtime.wait_for(lambda: [len(h) for h in shards_on_live_miners(
        config, network_id, receipt["tx_seq"]).values()] == [shards] * segments, 180, 1.0)
    # Then m more (2 of 4 in all): still byte-identical.
    ray.kill(ray.get_actor(miner_name(0)), no_restart=True)
    assert client.download(root) == data
    # With miners 0 and 3 gone for good, a new upload cannot reach FINALIZED: without
    # waiting it says UPLOADING and which shards were not acknowledged; waiting, it fails
    # at its deadline naming the miners and segments.
    impatient = StorageClient(config.replace(**{"storage.upload_deadline_s": 3.0}),
                              start=False)
    small = os.urandom(4 * SEGMENT_BYTES)
    sent = impatient.upload(small, network_id, wait=False)
    assert sent["status"] == STATUS_UPLOADING
    assert set(sent["fragments"][0]["missing"]) == {0, 3}
    with pytest.raises(UploadIncomplete, match="miner 0 has not acknowledged segments") as info:
        impatient.upload(small, network_id)
    assert "miner 3" in str(info.value) and info.value.details["tx_seq"] == sent["tx_seq"]
    # A new miner 0 on an empty store: the repairer refills it, unasked, back to k + m.
    fresh = config.replace(data_dir=config.data_dir + "/fresh")
    replacement = StorageMiner.options(name=miner_name(0), num_cpus=0.1).remote(
        fresh.to_dict(), 0, fresh.data_dir)
    assert runtime.wait_for(lambda: [len(h) for h in shards_on_live_miners(
        config, network_id, receipt["tx_seq"]).values()] == [shards] * segments, 180, 1.0)
    assert ray.get(replacement.stats.remote())["shards"] > 0
    assert client.download(root) == data


def test_download_of_an_unknown_root_starts_no_miners(deployment, tmp_path, capsys) -> None:
    unknown = "0x" + "11" * 32
    assert main(["download", unknown, str(tmp_path / "out.bin"), "--json"]) == 2
    error = cli_json(capsys)
    assert error["code"] == "UNKNOWN_FILE" and error["root"] == unknown
    assert find_miners(deployment[1]) == {}
    assert not (tmp_path / "out.bin").exists()


def test_a_big_file_tree_is_hashed_in_pieces_by_ray_tasks(deployment) -> None:
    """On a CPU, the client hands file_tree a row hasher that spreads the rows over Ray
    tasks (one per cluster CPU); the tree is the one this process alone computes."""
    if sector_tree.resolve().name != "cpu":
        pytest.skip("this process hashes on a GPU: in one pass, not in pieces")
    client = StorageClient(deployment[1], start=False)
    client.warm_up()
    data = os.urandom(40 * SEGMENT_BYTES + 999)  # 41 segments: 2 pieces on 2 CPUs
    hasher = client._row_hasher(len(data))
    assert hasher is not sector_roots
    assert file_tree(data, client._keep_height, hasher) == file_tree(data, client._keep_height)


def test_tagged_uploads_carry_their_tags_each_as_a_new_entry_and_replay_as_kv_txs(
        storage, tmp_path, capsys) -> None:
    client, _config, network_id = storage
    stream = stream_id_from_name("notes")
    tags = stream_tags([stream])
    body = encode_tx(KVTx(SKIP_CHECKS_VERSION, writes=(StreamWrite(stream, b"k", b"v1"),)))
    root = file_tree(body).root
    source = tmp_path / "kv-tx.bin"
    source.write_bytes(body)
    assert main(["upload", str(source), "--network", str(network_id), "--tags",
                 "0x" + tags.hex(), "--json"]) == 0
    first = cli_json(capsys)
    assert first["tags"] == "0x" + tags.hex() and first["status"] == STATUS_FINALIZED
    # The same bytes with the same tags again: a message of its own, a new entry (as 0G's
    # client always submits), not the earlier entry of that root.
    again = client.upload(body, network_id, tags=tags)
    assert again["tx_seq"] == first["tx_seq"] + 1 and again["root"] == root
    assert again["status"] == STATUS_FINALIZED
    entries = [client._query(network_id, "entry", seq)
               for seq in (first["tx_seq"], again["tx_seq"])]
    assert [(e["tags"], e["root"], e["status"]) for e in entries] == \
        [(tags, root, STATUS_FINALIZED)] * 2
    # An untagged upload of that root still reuses an entry it has.
    plain = client.upload(body, network_id)
    assert plain["tx_seq"] in (first["tx_seq"], again["tx_seq"]) and plain["tags"] == b""
    # What a KV node does with them: the entries' tags and data replay as KV txs.
    replayer = Replayer(KVState(MemoryStore()), [stream])
    flow = client._query(network_id, "flow")["entries"]
    results = []
    for seq in range(flow):
        info = client._query(network_id, "entry", seq)
        entry = FlowEntry(seq, info["sender"], info["tags"])
        data = client.download(info["root"]) if replayer.needs_data(entry) else None
        results.append(replayer.apply(entry, data))
    assert results[first["tx_seq"]] == results[again["tx_seq"]] == "Commit"
    assert replayer.state.get_value(stream, b"k").version == again["tx_seq"]
