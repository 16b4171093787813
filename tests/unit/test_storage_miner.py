"""A miner's core on a real LMDB store: verify before storing, shards survive a reopen,
any k shards rebuild a segment, the CLI's file root needs no cluster."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from zg_actors.cli import main
from zg_actors.erasure import encode as ec_encode
from zg_actors.errors import InvalidInput
from zg_actors.storage.cli import parse_root
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.errors import DataUnavailable, NotAssigned, SegmentRejected
from zg_actors.storage.file import file_tree, pad
from zg_actors.storage.miner import EntryRef, MinerStore, Redundancy, rebuild_segment
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


def test_parse_root_names_the_bad_value() -> None:
    assert parse_root("0x" + "ab" * 32) == bytes([0xAB]) * 32
    with pytest.raises(InvalidInput, match="'zz'"):
        parse_root("zz")
    with pytest.raises(InvalidInput, match="3 bytes"):
        parse_root("abcdef")
