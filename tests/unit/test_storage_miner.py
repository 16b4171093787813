"""A miner's core on a real LMDB store: verify before storing, shards survive a reopen,
any k shards rebuild a segment, the CLI's file root needs no cluster."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from zg_actors.cli import main
from zg_actors.erasure import data_matrix
from zg_actors.erasure import encode as ec_encode
from zg_actors.errors import InvalidInput
from zg_actors.storage.cli import parse_root
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.errors import DataUnavailable, NotAssigned, SegmentRejected
from zg_actors.storage.file import data_shard_height, file_tree, pad, verify_data_shard
from zg_actors.storage.miner import (
    EntryRef,
    MinerStore,
    Redundancy,
    ShardDelivery,
    rebuild_segment,
    segment_shard,
    unpack_deliveries,
)
from zg_actors.storage.placement import miner_shard

REDUNDANCY = Redundancy(miners=4, data_shards=2, parity_shards=1)


def make_entry(size: int = 2 * SEGMENT_BYTES + 500):
    data = os.urandom(size)
    tree = file_tree(data)
    return EntryRef(0, 5, tree.root, size), tree, pad(data)


def owner_of(entry: EntryRef, segment: int) -> int:
    return next(i for i in range(4) if miner_shard(entry.tx_seq, segment, i, 4, 3) is not None)


def test_verified_segment_is_persisted_and_survives_reopen(tmp_path) -> None:
    entry, tree, padded = make_entry()
    index = owner_of(entry, 0)
    store = MinerStore(tmp_path / "m", index, REDUNDANCY)
    segment = np.frombuffer(tree.segment(padded, 0), dtype=np.uint8)
    shard = store.accept_segment(entry, 0, segment, tree.proof(0))
    store.close()
    reopened = MinerStore(tmp_path / "m", index, REDUNDANCY)
    got = reopened.get_shard(0, 5, 0)
    assert got["shard"] == shard
    assert np.array_equal(got["data"], ec_encode(segment, 2, 1)[shard])
    assert reopened.stats()["shards"] == 1


def test_bad_segments_store_nothing(tmp_path) -> None:
    entry, tree, padded = make_entry()
    index = owner_of(entry, 1)
    store = MinerStore(tmp_path / "m", index, REDUNDANCY)
    tampered = bytearray(tree.segment(padded, 1))
    tampered[0] ^= 1
    with pytest.raises(SegmentRejected):
        store.accept_segment(entry, 1, np.frombuffer(bytes(tampered), dtype=np.uint8),
                             tree.proof(1))
    with pytest.raises(SegmentRejected):
        store.accept_segment(entry, 1, np.frombuffer(tree.segment(padded, 1), dtype=np.uint8),
                             tree.proof(0))
    outsider = next(i for i in range(4) if miner_shard(entry.tx_seq, 1, i, 4, 3) is None)
    with pytest.raises(NotAssigned, match=f"miner {outsider}"):
        MinerStore(tmp_path / "o", outsider, REDUNDANCY).accept_segment(
            entry, 1, np.frombuffer(tree.segment(padded, 1), dtype=np.uint8), tree.proof(1))
    assert store.stats()["shards"] == 0


def test_any_k_shards_rebuild_a_segment_and_a_corrupt_one_is_skipped() -> None:
    entry, tree, padded = make_entry()
    segment = tree.segment(padded, 2)
    shards = dict(enumerate(ec_encode(segment, 2, 1)))
    for lost in range(3):
        rest = {i: s for i, s in shards.items() if i != lost}
        assert rebuild_segment(entry, 2, rest, tree.proof(2), REDUNDANCY)[0] == segment
    corrupt = {**shards, 0: shards[0].copy()}
    corrupt[0][5] ^= 1
    assert rebuild_segment(entry, 2, corrupt, tree.proof(2), REDUNDANCY)[0] == segment
    with pytest.raises(DataUnavailable, match="need 2"):
        rebuild_segment(entry, 2, {1: shards[1]}, tree.proof(2), REDUNDANCY)


def test_cli_file_root_without_a_cluster(tmp_path, capsys) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(300_000)
    path.write_bytes(data)
    assert main(["file-root", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "0x" + file_tree(data).root.hex()
    assert main(["file-root", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["size"] == 300_000 and out["segments"] == 2 and len(out["nodes"]) == 2
    assert main(["file-root", str(tmp_path / "missing"), "--json"]) == 2
    assert "missing" in json.loads(capsys.readouterr().out)["message"]


@pytest.mark.parametrize("out", ["missing-dir/out.bin", "."])
def test_cli_download_checks_its_output_path_before_any_cluster(tmp_path, capsys,
                                                                  out: str) -> None:
    # The unit conftest refuses ray.init: reaching a cluster would fail this test.
    target = str(tmp_path / out)
    assert main(["download", "0x" + "11" * 32, target, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["code"] == "INVALID_INPUT" and error["out"] == target
    assert not (tmp_path / "missing-dir").exists()


def test_parse_root_names_the_bad_value() -> None:
    assert parse_root("0x" + "ab" * 32) == bytes([0xAB]) * 32
    with pytest.raises(InvalidInput, match="'zz'"):
        parse_root("zz")
    with pytest.raises(InvalidInput, match="3 bytes"):
        parse_root("abcdef")


# ---- shard deliveries: a data miner checks its own row alone, a parity miner all k rows ----

def deliveries_for(entry: EntryRef, tree, padded: bytes, index: int, miner: int,
                   redundancy: Redundancy = REDUNDANCY) -> ShardDelivery:
    """What the SDK sends `miner` for segment `index` (its own row when it can)."""
    k = redundancy.data_shards
    shard = miner_shard(entry.tx_seq, index, miner, redundancy.miners, redundancy.shards)
    segment = np.frombuffer(tree.segment(padded, index), dtype=np.uint8)
    rows = data_matrix(segment, k)
    if shard < k and len(segment) == SEGMENT_BYTES:
        return ShardDelivery(index, {shard: rows[shard]}, tree.proof(index),
                             tree.subtree_roots[index])
    return ShardDelivery(index, dict(enumerate(rows)), tree.proof(index))


def test_data_shard_height_only_for_whole_subtrees() -> None:
    assert data_shard_height(SEGMENT_BYTES, 2) == 9
    assert data_shard_height(SEGMENT_BYTES, 4) == 8
    assert data_shard_height(SEGMENT_BYTES, 1) == 10
    assert data_shard_height(SEGMENT_BYTES, 3) is None  # k not a power of two
    assert data_shard_height(768 * 256, 2) is None  # 768 sectors: not a power of two
    assert data_shard_height(256, 2) is None  # fewer sectors than shards


def test_a_data_row_alone_proves_itself_and_tampering_is_caught() -> None:
    data = os.urandom(3 * SEGMENT_BYTES)
    tree = file_tree(data, keep_height=data_shard_height(SEGMENT_BYTES, 2))
    padded = pad(data)
    rows = data_matrix(np.frombuffer(tree.segment(padded, 1), dtype=np.uint8), 2)
    subtrees = tree.subtree_roots[1]
    assert len(subtrees) == 2
    for shard in (0, 1):
        assert verify_data_shard(tree.root, len(data), 1, shard, rows[shard], subtrees, 2,
                                 tree.proof(1)) == tree.segment_roots[1]
    tampered = rows[0].copy()
    tampered[100] ^= 1
    with pytest.raises(SegmentRejected, match="segment 1, data shard 0"):
        verify_data_shard(tree.root, len(data), 1, 0, tampered, subtrees, 2, tree.proof(1))
    with pytest.raises(SegmentRejected):  # row 1 presented as row 0
        verify_data_shard(tree.root, len(data), 1, 0, rows[1], subtrees, 2, tree.proof(1))
    with pytest.raises(SegmentRejected):  # a forged sibling subtree root
        verify_data_shard(tree.root, len(data), 1, 0, rows[0], (subtrees[0], bytes(32)), 2,
                          tree.proof(1))
    with pytest.raises(SegmentRejected, match="2 subtree roots, expected 4"):
        verify_data_shard(tree.root, len(data), 1, 0, rows[0][:SEGMENT_BYTES // 4],
                          subtrees, 4, tree.proof(1))
    with pytest.raises(SegmentRejected, match="has 100 bytes"):
        verify_data_shard(tree.root, len(data), 1, 0, rows[0][:100], subtrees, 2,
                          tree.proof(1))
    short = os.urandom(SEGMENT_BYTES + 3 * 256 * 200)  # last segment: 600 sectors
    short_tree = file_tree(short, keep_height=9)
    with pytest.raises(SegmentRejected, match="send the whole segment"):
        verify_data_shard(short_tree.root, len(short), 1, 0, bytes(300 * 256), (), 2,
                          short_tree.proof(1))


def test_every_miner_keeps_the_canonical_row_of_its_delivery(tmp_path) -> None:
    entry, tree, padded = make_entry(2 * SEGMENT_BYTES + 500)
    tree = file_tree(padded[:entry.size], keep_height=9)
    for miner in range(4):
        store = MinerStore(tmp_path / f"m{miner}", miner, REDUNDANCY)
        mine = [i for i in range(tree.segments)
                if miner_shard(entry.tx_seq, i, miner, 4, 3) is not None]
        shards = store.accept_deliveries(entry, [deliveries_for(entry, tree, padded, i, miner)
                                                 for i in mine])
        for index, shard in zip(mine, shards, strict=True):
            segment = np.frombuffer(tree.segment(padded, index), dtype=np.uint8)
            assert np.array_equal(store.get_shard(0, 5, index)["data"],
                                  ec_encode(segment, 2, 1)[shard])
            assert np.array_equal(segment_shard(segment, shard, REDUNDANCY),
                                  ec_encode(segment, 2, 1)[shard])


def test_a_parity_miner_needs_all_rows_and_a_bad_delivery_stores_nothing(tmp_path) -> None:
    entry, tree, padded = make_entry(2 * SEGMENT_BYTES)
    tree = file_tree(padded[:entry.size], keep_height=9)
    index = 0
    parity = next(i for i in range(4) if miner_shard(entry.tx_seq, index, i, 4, 3) == 2)
    store = MinerStore(tmp_path / "p", parity, REDUNDANCY)
    rows = data_matrix(np.frombuffer(tree.segment(padded, index), dtype=np.uint8), 2)
    with pytest.raises(SegmentRejected, match="all 2 data rows, got rows \\[0\\]"):
        store.accept_deliveries(entry, [ShardDelivery(index, {0: rows[0]}, tree.proof(index),
                                                      tree.subtree_roots[index])])
    good = deliveries_for(entry, tree, padded, 1, parity)
    bad_rows = {0: rows[0], 1: rows[1].copy()}
    bad_rows[1][7] ^= 1
    with pytest.raises(SegmentRejected):  # one bad delivery: the good one is not kept either
        store.accept_deliveries(entry, [good, ShardDelivery(index, bad_rows,
                                                            tree.proof(index))])
    assert store.stats()["shards"] == 0


def test_unpack_deliveries_checks_the_packing() -> None:
    rows = np.arange(512, dtype=np.uint8)
    proof = [[b"\x01" * 32], []]
    parsed = unpack_deliveries(rows, [[3, [0], 256, [b"\x02" * 32], proof],
                                      [4, [1], 256, [], proof]])
    assert [p.index for p in parsed] == [3, 4]
    assert np.array_equal(parsed[1].rows[1], rows[256:])
    assert parsed[0].subtree_roots == (b"\x02" * 32,)
    with pytest.raises(InvalidInput, match="describe 256 bytes of rows, 512 were sent"):
        unpack_deliveries(rows, [[3, [0], 256, [], proof]])
    with pytest.raises(InvalidInput, match="malformed"):
        unpack_deliveries(rows, [[3, [0], 256]])
    with pytest.raises(InvalidInput, match="1-D uint8"):
        unpack_deliveries(rows.astype(np.int32), [])


def test_replication_keeps_whole_copies_and_any_one_serves(tmp_path) -> None:
    replicated = Redundancy(miners=4, data_shards=1, parity_shards=2, replicated=True)
    entry, tree, padded = make_entry(2 * SEGMENT_BYTES + 500)
    tree = file_tree(padded[:entry.size], keep_height=data_shard_height(SEGMENT_BYTES, 1))
    copies = {}
    for miner in range(4):
        store = MinerStore(tmp_path / f"r{miner}", miner, replicated)
        for index in range(tree.segments):
            if miner_shard(entry.tx_seq, index, miner, 4, 3) is None:
                continue
            shard = store.accept_deliveries(
                entry, [deliveries_for(entry, tree, padded, index, miner, replicated)])[0]
            copies.setdefault(index, {})[shard] = store.get_shard(0, 5, index)["data"]
    for index, held in copies.items():
        segment = tree.segment(padded, index)
        assert len(held) == 3 and all(bytes(c) == segment for c in held.values())
        for shard, copy in held.items():  # any one copy rebuilds the segment
            assert rebuild_segment(entry, index, {shard: copy}, tree.proof(index),
                                   replicated)[0] == segment
        corrupt = {s: c.copy() for s, c in held.items()}
        corrupt[0][3] ^= 1
        assert rebuild_segment(entry, index, corrupt, tree.proof(index), replicated)[0] == segment


def test_config_replication_factor_sets_the_holders() -> None:
    from zg_actors.config import load_config
    from zg_actors.errors import InvalidInput as ConfigError
    from zg_actors.storage.actors import redundancy_of

    config = load_config().replace(**{"storage.replication_factor": 3})
    assert config.storage.shards == 3
    assert redundancy_of(config) == Redundancy(4, 1, 2, replicated=True)
    with pytest.raises(ConfigError, match="storage.miners"):
        load_config().replace(**{"storage.replication_factor": 5})
