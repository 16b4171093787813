"""A storage miner's core (pure): check a segment against the on-chain root, keep its
own erasure-code shard in LMDB, serve it with the segment's proof, rebuild from peers.

A miner never stores a shard it has not verified. A data miner may get its own
data row alone, with the segment's k subtree roots: the row must hash to its
subtree root, the k roots to the segment root, and the proof must lead from that
to the file root recorded by the `flow` module (file.verify_data_shard). A parity
miner gets all k data rows, checks them as the whole segment (file.verify_segment)
and computes its parity row. Only then is the shard written (synced) to LMDB, and
only then is it acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.merkle import MerkleProof, hashes_from_list, proof_from_list
from zg_actors.erasure import data_matrix, encode_parity
from zg_actors.erasure import decode as ec_decode
from zg_actors.errors import InvalidInput
from zg_actors.storage.errors import DataUnavailable, NotAssigned, SegmentRejected
from zg_actors.storage.file import (
    segment_count,
    segment_length,
    verify_data_shard,
    verify_segment,
)
from zg_actors.storage.placement import assigned_segments, miner_shard
from zg_actors.store import Store, u64

SHARDS_DB = "shards"  # (network, tx_seq, segment) -> [shard index, shard bytes, proof]
ENTRIES_DB = "entries"  # (network, tx_seq) -> [root, size]: what the chain said
PENDING_DB = "pending"  # (network, tx_seq) -> b"": confirmations not yet on chain
# (network, tx_seq, segment) -> shard index, for a shard kept in place of its own miner
# (repair.rebuild_target); a shard without a record here is the miner's own.
STAND_IN_DB = "stand_in"


@dataclass(frozen=True)
class Redundancy:
    miners: int
    data_shards: int  # k
    parity_shards: int  # m
    replicated: bool = False  # k = 1 and every shard is a whole copy, not RS parity

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
    key = u64(network_id) + u64(tx_seq)
    return key if segment is None else key + u64(segment)


def segment_shard(segment: np.ndarray, shard: int, redundancy: Redundancy) -> np.ndarray:
    """Row `shard` of the canonical k + m encoding of one segment (only that row is computed:
    a data row is a slice, a parity row needs the parity matmul)."""
    k = redundancy.data_shards
    rows = data_matrix(segment, k)
    if shard < k or redundancy.replicated:
        return rows[min(shard, k - 1)]
    return encode_parity(rows, redundancy.parity_shards)[shard - k]


@dataclass(frozen=True)
class ShardDelivery:
    """What a client sends one miner for one segment (docs/spec/storage.md "Redundancy").

    `rows` are data rows of the canonical code: either the miner's own data row alone,
    with the k data rows' subtree roots (data_shard_height), or all k of them, which a
    parity miner needs and which any miner can check as the whole segment.
    """

    index: int  # the segment
    rows: Mapping[int, np.ndarray]
    proof: MerkleProof  # segment root -> file root
    subtree_roots: tuple[bytes, ...] = ()


def unpack_deliveries(rows: np.ndarray, deliveries: list[list]) -> list[ShardDelivery]:
    """ShardDeliveries from the wire form: `rows` packs every delivery's data rows in
    order; each delivery is [segment, [data row indexes], row bytes, subtree roots, proof].
    InvalidInput names what does not fit."""
    packed = np.asarray(rows)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise InvalidInput(f"packed rows must be a 1-D uint8 array, got {packed.dtype} with "
                           f"shape {packed.shape}", shape=packed.shape)
    out = []
    offset = 0
    try:
        for index, row_ids, row_bytes, subtrees, proof in deliveries:
            got = {}
            for j in row_ids:
                got[int(j)] = packed[offset:offset + int(row_bytes)]
                offset += int(row_bytes)
            out.append(ShardDelivery(int(index), got, proof_from_list(proof),
                                     hashes_from_list(subtrees, "subtree roots")))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed shard delivery: {exc}") from exc
    if offset != len(packed):
        raise InvalidInput(f"deliveries describe {offset} bytes of rows, {len(packed)} were "
                           "sent", described=offset, sent=len(packed))
    return out


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
            if redundancy.replicated:  # any one copy is the segment
                data = bytes(np.asarray(shards[chosen[0]], dtype=np.uint8)[:length])
            else:
                data = ec_decode({i: shards[i] for i in chosen}, k, redundancy.parity_shards,
                                 length)
            leaf = verify_segment(entry.root, entry.size, index, data, proof)
            return bytes(data), leaf
        except (SegmentRejected, InvalidInput) as exc:
            last = exc
    raise DataUnavailable(f"segment {index} of entry {entry.tx_seq}: no {k} of the shards "
                          f"{sorted(shards)} decode to data matching the root ({last})",
                          segment=index, shards=len(shards))


def collect_shards(answers: Iterable[tuple[Sequence[int], Sequence[dict | None]]]
                   ) -> dict[int, tuple[dict[int, np.ndarray], MerkleProof]]:
    """{segment: ({shard index: data}, segment proof)} from miners' get_shards answers,
    each (segments asked, one answer per segment: None where that miner keeps none)."""
    fetched: dict[int, tuple[dict[int, np.ndarray], MerkleProof]] = {}
    for segments, got in answers:
        for segment, answer in zip(segments, got, strict=True):
            if answer is not None:
                shards = fetched[segment][0] if segment in fetched else {}
                shards[answer["shard"]] = answer["data"]
                fetched[segment] = (shards, proof_from_list(answer["proof"]))
    return fetched


class MinerStore:
    """One miner's LMDB: its shards with their segment proofs, and pending confirmations."""

    def __init__(self, path: str | Path, index: int, redundancy: Redundancy,
                 map_mb: int = 1024) -> None:
        self.index = index
        self.redundancy = redundancy
        self.store = Store(path, [SHARDS_DB, ENTRIES_DB, PENDING_DB, STAND_IN_DB], map_mb)

    def shard_index(self, entry: EntryRef, segment: int) -> int:
        shard = self._own_shard(entry.tx_seq, segment)
        if shard is None:
            raise NotAssigned(f"miner {self.index} keeps no shard of segment {segment} of entry "
                              f"{entry.tx_seq}", miner=self.index, segment=segment,
                              tx_seq=entry.tx_seq)
        return shard

    def accept_segment(self, entry: EntryRef, index: int, segment: np.ndarray,
                       proof: MerkleProof) -> int:
        """Verify a whole segment, persist this miner's shard of it; returns the shard index.

        Raises SegmentRejected or NotAssigned and stores nothing on bad input.
        """
        rows = data_matrix(segment, self.redundancy.data_shards)
        return self.accept_deliveries(entry, [ShardDelivery(index, dict(enumerate(rows)),
                                                            proof)])[0]

    def accept_deliveries(self, entry: EntryRef, deliveries: list[ShardDelivery]) -> list[int]:
        """Verify each delivery against the on-chain root, then persist this miner's shards
        in one synced LMDB write; one bad delivery rejects the batch and nothing is stored."""
        verified = self.verify_deliveries(entry, deliveries)
        self.put_shards(entry, verified)
        return [shard for _, shard, _, _ in verified]

    def verify_deliveries(self, entry: EntryRef, deliveries: list[ShardDelivery]
                          ) -> list[tuple[int, int, np.ndarray, MerkleProof]]:
        """This miner's shard of each delivery, checked against `entry`'s root; stores
        nothing. Raises SegmentRejected or NotAssigned on the first bad one."""
        out = []
        for delivery in deliveries:
            shard = self.shard_index(entry, delivery.index)
            out.append((delivery.index, shard, self._verified_row(entry, delivery, shard),
                        delivery.proof))
        return out

    def _verified_row(self, entry: EntryRef, delivery: ShardDelivery, shard: int) -> np.ndarray:
        k = self.redundancy.data_shards
        index = delivery.index
        if shard < k and set(delivery.rows) == {shard} and (delivery.subtree_roots or k > 1):
            verify_data_shard(entry.root, entry.size, index, shard, delivery.rows[shard],
                              delivery.subtree_roots, k, delivery.proof)
            return np.asarray(delivery.rows[shard], dtype=np.uint8)
        if set(delivery.rows) != set(range(k)):
            raise SegmentRejected(f"miner {self.index} keeps shard {shard} of segment {index}: "
                                  f"it needs {'its data row or ' if shard < k else ''}all {k} "
                                  f"data rows, got rows {sorted(delivery.rows)}",
                                  index=index, shard=shard, rows=sorted(delivery.rows))
        length = segment_length(entry.size, index)
        joined = np.concatenate([np.asarray(delivery.rows[j], dtype=np.uint8)
                                 for j in range(k)])
        if len(joined) < length:
            raise SegmentRejected(f"segment {index}: {len(joined)} bytes in {k} rows, expected "
                                  f"{length}", index=index, length=len(joined))
        segment = joined[:length]
        verify_segment(entry.root, entry.size, index, segment, delivery.proof)
        return segment_shard(segment, shard, self.redundancy)

    def put_shards(self, entry: EntryRef,
                   shards: list[tuple[int, int, np.ndarray, MerkleProof]]) -> None:
        writes: list[tuple[str, bytes, bytes | None]] = []
        for index, shard, data, proof in shards:
            key = _key(entry.network_id, entry.tx_seq, index)
            writes.append((SHARDS_DB, key, encode([shard, bytes(data), proof.to_list()])))
            if shard != self._own_shard(entry.tx_seq, index):
                writes.append((STAND_IN_DB, key, encode(shard)))
        writes.append((ENTRIES_DB, _key(entry.network_id, entry.tx_seq),
                       encode([entry.root, entry.size])))
        if self.is_complete(entry, extra=[index for index, *_ in shards]):
            writes.append((PENDING_DB, _key(entry.network_id, entry.tx_seq), b""))
        self.store.write(writes)

    def keep_rebuilt(self, entry: EntryRef,
                     rebuilds: list[tuple[int, int, Mapping[int, np.ndarray], MerkleProof]]
                     ) -> list[int]:
        """Decode each segment from peers' shards, check it against the entry's root, and
        keep the given shard of it (this miner's own, or in place of a lost miner) in one
        synced write; returns the segments kept. Raises DataUnavailable when a segment's
        shards do not decode to data matching the root, InvalidInput when this miner
        already keeps another shard of it; nothing is stored then."""
        kept = []
        for index, shard, shards, proof in rebuilds:
            if not 0 <= shard < self.redundancy.shards:
                raise InvalidInput(f"shard {shard} is not one of {self.redundancy.shards}",
                                   shard=shard)
            present = self.get_shard(entry.network_id, entry.tx_seq, index)
            if present is not None and present["shard"] != shard:
                raise InvalidInput(f"miner {self.index} keeps shard {present['shard']} of "
                                   f"segment {index} of entry {entry.tx_seq}, not {shard}: "
                                   "a segment's shards live on distinct miners",
                                   miner=self.index, segment=index, shard=shard)
            segment, _ = rebuild_segment(entry, index, shards, proof, self.redundancy)
            row = segment_shard(np.frombuffer(segment, dtype=np.uint8), shard, self.redundancy)
            kept.append((index, shard, row, proof))
        self.put_shards(entry, kept)
        return [index for index, *_ in kept]

    def holdings(self) -> dict[tuple[int, int], tuple[bytes, int, dict[int, int]]]:
        """{(network, tx_seq): (root, size, {segment: shard index kept})} of every entry
        this miner keeps shards of: what the repairer plans with. Reads keys only."""
        stand_ins = {k: as_int(decode(v)) for k, v in self.store.items(STAND_IN_DB)}
        out: dict[tuple[int, int], tuple[bytes, int, dict[int, int]]] = {}
        for entry in self.entries():
            out[(entry.network_id, entry.tx_seq)] = (entry.root, entry.size, {})
        for key in self.store.keys(SHARDS_DB):
            network_id, tx_seq, index = (int.from_bytes(key[i:i + 8], "big")
                                         for i in (0, 8, 16))
            shard = stand_ins.get(key, self._own_shard(tx_seq, index))
            if (network_id, tx_seq) in out and shard is not None:
                out[(network_id, tx_seq)][2][index] = shard
        return out

    def _own_shard(self, tx_seq: int, segment: int) -> int | None:
        return miner_shard(tx_seq, segment, self.index, self.redundancy.miners,
                           self.redundancy.shards)

    def get_shards(self, network_id: int, tx_seq: int, indexes: list[int]) -> list[dict | None]:
        return [self.get_shard(network_id, tx_seq, index) for index in indexes]

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
        return [int.from_bytes(k[16:], "big") for k in self.store.keys(SHARDS_DB, prefix, end)]

    def assigned(self, entry: EntryRef) -> list[int]:
        return assigned_segments(entry.tx_seq, entry.segments, self.index,
                                 self.redundancy.miners, self.redundancy.shards)

    def is_complete(self, entry: EntryRef, extra: list[int] | None = None) -> bool:
        """Whether this miner keeps a shard of every segment assigned to it, and at least
        one is (only then can it confirm the entry on chain)."""
        held = set(self.held_segments(entry.network_id, entry.tx_seq)) | set(extra or [])
        assigned = self.assigned(entry)
        return bool(assigned) and all(i in held for i in assigned)

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
