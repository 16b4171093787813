"""A storage miner's core (pure): check a segment against the on-chain root, keep its
own erasure-code shard in LMDB, serve it with the segment's proof, rebuild from peers.

A miner never stores a segment it has not verified: the data must hash to the
segment root, and the proof must lead from that root at the given index to the
file root recorded by the `flow` module. Only then is the segment encoded and
the miner's shard written (synced) to LMDB, and only then is it acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.merkle import MerkleProof, proof_from_list
from zg_actors.erasure import decode as ec_decode
from zg_actors.erasure import encode as ec_encode
from zg_actors.errors import InvalidInput
from zg_actors.storage.errors import DataUnavailable, NotAssigned, SegmentRejected
from zg_actors.storage.file import segment_count, segment_length, verify_segment
from zg_actors.storage.placement import assigned_segments, miner_shard
from zg_actors.store import Store

SHARDS_DB = "shards"  # (network, tx_seq, segment) -> [shard index, shard bytes, proof]
ENTRIES_DB = "entries"  # (network, tx_seq) -> [root, size]: what the chain said
PENDING_DB = "pending"  # (network, tx_seq) -> b"": confirmations not yet on chain


@dataclass(frozen=True)
class Redundancy:
    miners: int
    data_shards: int  # k
    parity_shards: int  # m

    @property
    def shards(self) -> int:
        return self.data_shards + self.parity_shards


@dataclass(frozen=True)
class EntryRef:
    """The on-chain facts a miner checks segments against."""

    network_id: int
    tx_seq: int
    root: bytes
    size: int

    @property
    def segments(self) -> int:
        return segment_count(self.size)


def _key(network_id: int, tx_seq: int, segment: int | None = None) -> bytes:
    key = network_id.to_bytes(8, "big") + tx_seq.to_bytes(8, "big")
    return key if segment is None else key + segment.to_bytes(8, "big")


def segment_shard(segment: np.ndarray, shard: int, redundancy: Redundancy) -> np.ndarray:
    """Row `shard` of the canonical k + m encoding of one segment."""
    return ec_encode(segment, redundancy.data_shards, redundancy.parity_shards)[shard]


def rebuild_segment(entry: EntryRef, index: int, shards: Mapping[int, np.ndarray],
                    proof: MerkleProof, redundancy: Redundancy) -> tuple[bytes, bytes]:
    """Decode segment `index` from any k shards that verify; returns (segment, segment root).

    A corrupt shard makes the decoded segment fail its proof, so other k-subsets
    are tried before giving up.
    """
    k = redundancy.data_shards
    length = segment_length(entry.size, index)
    if len(shards) < k:
        raise DataUnavailable(f"segment {index} of entry {entry.tx_seq}: {len(shards)} shards, "
                              f"need {k}", segment=index, shards=len(shards), needed=k)
    last: Exception | None = None
    for chosen in combinations(sorted(shards), k):
        try:
            data = ec_decode({i: shards[i] for i in chosen}, k, redundancy.parity_shards,
                             length)
            leaf = verify_segment(entry.root, entry.size, index, data, proof)
            return bytes(data), leaf
        except (SegmentRejected, InvalidInput) as exc:
            last = exc
    raise DataUnavailable(f"segment {index} of entry {entry.tx_seq}: no {k} of the shards "
                          f"{sorted(shards)} decode to data matching the root ({last})",
                          segment=index, shards=len(shards))


class MinerStore:
    """One miner's LMDB: its shards with their segment proofs, and pending confirmations."""

    def __init__(self, path: str | Path, index: int, redundancy: Redundancy,
                 map_mb: int = 1024) -> None:
        self.index = index
        self.redundancy = redundancy
        self.store = Store(path, [SHARDS_DB, ENTRIES_DB, PENDING_DB], map_mb)

    def shard_index(self, entry: EntryRef, segment: int) -> int:
        shard = miner_shard(entry.tx_seq, segment, self.index, self.redundancy.miners,
                            self.redundancy.shards)
        if shard is None:
            raise NotAssigned(f"miner {self.index} keeps no shard of segment {segment} of entry "
                              f"{entry.tx_seq}", miner=self.index, segment=segment,
                              tx_seq=entry.tx_seq)
        return shard

    def accept_segment(self, entry: EntryRef, index: int, segment: np.ndarray,
                       proof: MerkleProof) -> int:
        """Verify, encode, persist this miner's shard; returns the shard index.

        Raises SegmentRejected or NotAssigned and stores nothing on bad input.
        """
        return self.accept_segments(entry, [(index, segment, proof)])[0]

    def accept_segments(self, entry: EntryRef,
                        items: list[tuple[int, np.ndarray, MerkleProof]]) -> list[int]:
        """accept_segment for several segments in one synced LMDB write; one bad
        segment rejects the batch and nothing is stored."""
        shards = []
        for index, segment, proof in items:
            shards.append(self.shard_index(entry, index))
            verify_segment(entry.root, entry.size, index, segment, proof)
        self.put_shards(entry, [(index, shard, segment_shard(segment, shard, self.redundancy),
                                 proof) for (index, segment, proof), shard
                                in zip(items, shards, strict=True)])
        return shards

    def put_shard(self, entry: EntryRef, index: int, shard: int, data: np.ndarray,
                  proof: MerkleProof) -> None:
        self.put_shards(entry, [(index, shard, data, proof)])

    def put_shards(self, entry: EntryRef,
                   shards: list[tuple[int, int, np.ndarray, MerkleProof]]) -> None:
        writes = [(SHARDS_DB, _key(entry.network_id, entry.tx_seq, index),
                   encode([shard, bytes(data), proof.to_list()]))
                  for index, shard, data, proof in shards]
        writes.append((ENTRIES_DB, _key(entry.network_id, entry.tx_seq),
                       encode([entry.root, entry.size])))
        if self.is_complete(entry, extra=[index for index, *_ in shards]):
            writes.append((PENDING_DB, _key(entry.network_id, entry.tx_seq), b""))
        self.store.write(writes)

    def get_shard(self, network_id: int, tx_seq: int, index: int) -> dict | None:
        raw = self.store.get(SHARDS_DB, _key(network_id, tx_seq, index))
        if raw is None:
            return None
        shard, data, proof = as_list(decode(raw), 3)
        return {"shard": as_int(shard), "data": np.frombuffer(as_bytes(data), dtype=np.uint8),
                "proof": proof_from_list(proof).to_list()}

    def held_segments(self, network_id: int, tx_seq: int) -> list[int]:
        prefix = _key(network_id, tx_seq)
        end = _key(network_id, tx_seq + 1)
        return [int.from_bytes(k[16:], "big") for k, _ in self.store.items(SHARDS_DB, prefix, end)]

    def missing_segments(self, entry: EntryRef) -> list[int]:
        held = set(self.held_segments(entry.network_id, entry.tx_seq))
        return [i for i in self.assigned(entry) if i not in held]

    def assigned(self, entry: EntryRef) -> list[int]:
        return assigned_segments(entry.tx_seq, entry.segments, self.index,
                                 self.redundancy.miners, self.redundancy.shards)

    def is_complete(self, entry: EntryRef, extra: list[int] | None = None) -> bool:
        held = set(self.held_segments(entry.network_id, entry.tx_seq)) | set(extra or [])
        return all(i in held for i in self.assigned(entry))

    def pending_confirmations(self) -> list[tuple[int, int]]:
        return [(int.from_bytes(k[:8], "big"), int.from_bytes(k[8:16], "big"))
                for k, _ in self.store.items(PENDING_DB)]

    def confirmed(self, done: Iterable[tuple[int, int]]) -> None:
        self.store.write([(PENDING_DB, _key(n, s), None) for n, s in done])

    def entries(self) -> list[EntryRef]:
        out = []
        for key, value in self.store.items(ENTRIES_DB):
            root, size = as_list(decode(value), 2)
            out.append(EntryRef(int.from_bytes(key[:8], "big"), int.from_bytes(key[8:16], "big"),
                                as_bytes(root), as_int(size)))
        return out

    def stats(self) -> dict:
        return {"miner": self.index, "shards": self.store.count(SHARDS_DB),
                "entries": self.store.count(ENTRIES_DB),
                "pending_confirmations": self.store.count(PENDING_DB)}

    def close(self) -> None:
        self.store.close()
