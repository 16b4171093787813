"""Files over storage.max_entry_bytes are split into several flow entries (docs/spec/storage.md
"Submission and the flow"), like 0G's client with --fragment-size."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from zg_actors.errors import InvalidInput
from zg_actors.metrics import STORAGE_METRICS, Metrics
from zg_actors.storage.cli import parse_roots
from zg_actors.storage.constants import SEGMENT_BYTES, STATUS_FINALIZED, STATUS_UPLOADING
from zg_actors.storage.file import file_tree, fragment_bytes, segment_count, split_fragments
from zg_actors.storage.sdk import StorageClient


def test_fragment_is_the_largest_power_of_two_under_the_limit() -> None:
    assert fragment_bytes(262_144) == 262_144
    assert fragment_bytes(262_145) == 262_144
    assert fragment_bytes(600_000) == 524_288
    assert fragment_bytes(4 * 2**30) == 4 * 2**30  # 0G's default --fragment-size
    assert fragment_bytes(256) == 256
    with pytest.raises(InvalidInput):
        fragment_bytes(255)


@pytest.mark.parametrize("size,limit,expected", [
    (0, 1024, [(0, 0)]),
    (1024, 1024, [(0, 1024)]),  # at the limit: one entry
    (1000, 1500, [(0, 1000)]),
    (1025, 1024, [(0, 1024), (1024, 1)]),
    (4096, 1024, [(0, 1024), (1024, 1024), (2048, 1024), (3072, 1024)]),
    (3000, 1500, [(0, 1024), (1024, 1024), (2048, 952)]),  # limit not a power of two
    (600_000, 262_144, [(0, 262_144), (262_144, 262_144), (524_288, 75_712)]),
])
def test_split_fragments(size: int, limit: int, expected: list[tuple[int, int]]) -> None:
    pieces = split_fragments(size, limit)
    assert pieces == expected
    # Consecutive, covering the file, each within the limit.
    assert sum(length for _, length in pieces) == size
    assert all(o == sum(n for _, n in pieces[:i]) for i, (o, _) in enumerate(pieces))
    assert all(length <= limit for _, length in pieces)


def test_full_fragments_need_no_padding() -> None:
    for _offset, length in split_fragments(5 * SEGMENT_BYTES + 77, 3 * SEGMENT_BYTES)[:-1]:
        assert file_tree(bytes(length)).padded_size == length
        assert len(file_tree(bytes(length)).nodes) == 1


def test_split_rejects_negative_size() -> None:
    with pytest.raises(InvalidInput):
        split_fragments(-1, 1024)


class FakeChain:
    """A StorageClient whose entries live in a dict: exercises upload's splitting and the
    fragment download/info paths without Ray."""

    def __init__(self, limit: int) -> None:
        self.entries: dict[bytes, dict] = {}
        self.tags: list[bytes] = []  # of each entry submitted
        self.client = object.__new__(StorageClient)
        self.client.config = SimpleNamespace(storage=SimpleNamespace(max_entry_bytes=limit))
        self.client.metrics = Metrics(STORAGE_METRICS)
        self.client.networks = lambda: [3]  # type: ignore[method-assign]
        self.client._upload_entry = self.upload_entry  # type: ignore[method-assign]
        self.client.file_info = self.file_info  # type: ignore[method-assign]
        self.client.download = self.download  # type: ignore[method-assign]

    def upload_entry(self, net: int, data: bytes, on_progress, wait: bool,
                     tags: bytes = b"") -> dict:
        assert len(data) <= self.client.config.storage.max_entry_bytes
        self.tags.append(tags)
        tree = file_tree(data)
        seq = len(self.entries)
        self.entries[tree.root] = {"tx_seq": seq, "size": len(data), "data": data,
                                   "status": STATUS_FINALIZED if seq else STATUS_UPLOADING,
                                   "network_id": net}
        if on_progress:
            on_progress(tree.segments, tree.segments)
        return {"root": tree.root, "tx_seq": seq, "size": len(data), "segments": tree.segments,
                "status": self.entries[tree.root]["status"], "missing": {},
                "shard_acks": tree.segments, "shards_resent": 0, "sequence_misses": 0,
                "seconds": 0.0}

    def file_info(self, root: bytes, network_id: int | None = None) -> dict:
        entry = self.entries[root]
        return {k: v for k, v in entry.items() if k != "data"}

    def download(self, root: bytes, on_progress=None) -> bytes:
        count = segment_count(self.entries[root]["size"])
        if on_progress:
            on_progress(count, count)
        return self.entries[root]["data"]


def test_upload_splits_and_download_fragments_joins() -> None:
    chain = FakeChain(limit=2 * SEGMENT_BYTES)
    data = os.urandom(5 * SEGMENT_BYTES + 1000)
    seen: list[tuple[int, int]] = []
    receipt = chain.client.upload(data, on_progress=lambda d, t: seen.append((d, t)))
    pieces = [data[o:o + n] for o, n in split_fragments(len(data), 2 * SEGMENT_BYTES)]
    assert len(pieces) == 3
    assert receipt["roots"] == [file_tree(p).root for p in pieces]
    assert receipt["root"] == receipt["roots"][0] and receipt["tx_seq"] == 0
    assert [f["tx_seq"] for f in receipt["fragments"]] == [0, 1, 2]
    assert [f["size"] for f in receipt["fragments"]] == [len(p) for p in pieces]
    assert receipt["size"] == len(data) and receipt["network_id"] == 3
    assert receipt["segments"] == 2 + 2 + 2 == seen[-1][1]
    assert [d for d, _ in seen] == [2, 4, 6]
    # FINALIZED only once every fragment is (the fake leaves the first one UPLOADING).
    assert receipt["status"] == STATUS_UPLOADING
    assert [f["status"] for f in receipt["fragments"]] == [STATUS_UPLOADING,
                                                           STATUS_FINALIZED, STATUS_FINALIZED]
    assert chain.client.download_fragments(receipt["roots"]) == data
    assert chain.tags == [b"", b"", b""] and receipt["tags"] == b""
    info = chain.client.fragments_info(receipt["roots"])
    assert info["size"] == len(data) and info["entries"] == 3 and info["segments"] == 6
    assert info["status"] == STATUS_UPLOADING  # the first fragment is not finalized yet
    chain.entries[receipt["roots"][0]]["status"] = STATUS_FINALIZED
    assert chain.client.fragments_info(receipt["roots"])["status"] == STATUS_FINALIZED


def test_upload_within_the_limit_is_one_entry() -> None:
    chain = FakeChain(limit=2 * SEGMENT_BYTES)
    data = os.urandom(2 * SEGMENT_BYTES)
    receipt = chain.client.upload(data)
    assert receipt["roots"] == [file_tree(data).root] == [receipt["root"]]
    assert len(chain.entries) == 1


def test_parse_roots() -> None:
    a, b = "ab" * 32, "0x" + "cd" * 32
    assert parse_roots(a) == [bytes.fromhex(a)]
    assert parse_roots(f"{a}, {b}") == [bytes.fromhex(a), bytes.fromhex(b[2:])]
    with pytest.raises(InvalidInput):
        parse_roots(f"{a},")
    with pytest.raises(InvalidInput):
        parse_roots("12,34")


def test_upload_gives_its_tags_to_every_fragment() -> None:
    chain = FakeChain(limit=2 * SEGMENT_BYTES)
    tags = b"\x01" * 64
    receipt = chain.client.upload(os.urandom(3 * SEGMENT_BYTES), tags=tags)
    assert chain.tags == [tags, tags] and receipt["tags"] == tags
