"""A DA node's core (pure): check a batch's slices, keep them in LMDB, serve them back.

A DA node signs a batch root only for slices it holds: exactly its slots of the
epoch's quorum, one row per slot of each blob's slice length, every row proving
into its blob's data root (docs/spec/da.md). `DANodeStore.verify_batch` checks all
that and stores nothing; `put_batch` writes the slices, the blob records and the
signature in one synced LMDB write, which returns before the signature is handed
out. Blobs past retention are pruned oldest first; the newest few per network
are what the node answers sampling rounds for.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import HASH_BYTES
from zg_actors.crypto.merkle import merkle_levels, proof_from_levels
from zg_actors.da.blob import BlobHeader, slice_length, split_roots, verify_held_slices
from zg_actors.da.certificate import Batch
from zg_actors.da.errors import InvalidBlob
from zg_actors.da.sampling import find_answers
from zg_actors.store import Store, Write

SLICES_DB = "slices"  # blob key -> [all n slice roots (n x 32 bytes), this node's rows]
BLOBS_DB = "blobs"  # blob key -> [stored at (unix ms), [slots held], blob header]
SIGNED_DB = "signed"  # batch root -> this node's BLS signature of it
SAMPLE_RECENT_BLOBS = 16  # blobs (newest) per network a node scans for sampling answers

Held = dict[int, tuple[np.ndarray, list]]  # {slot: (slice, Merkle proof into the data root)}


@dataclass(frozen=True)
class VerifiedBatch:
    """A batch's slices as checked by verify_batch: ready to persist and sign."""

    batch: Batch
    slots: tuple[int, ...]
    rows: tuple[tuple[BlobHeader, bytes, np.ndarray], ...]  # (header, slice roots, rows)


class DANodeStore:
    """One DA node's LMDB: the slices it signed for, the blob records, its signatures."""

    def __init__(self, path: str | Path, index: int, k: int, n: int,
                 map_mb: int = 1024) -> None:
        self.index = index
        self.k, self.n = k, n
        self.store = Store(path, [SLICES_DB, BLOBS_DB, SIGNED_DB], map_mb)
        # Indexes of the blob records, so that sampling and pruning do not scan every
        # stored blob; built from LMDB on first use (a reopened store keeps its blobs).
        self._recent: dict[int, deque[tuple[BlobHeader, list[int]]]] = {}  # newest last
        self._by_age: list[tuple[int, bytes]] = []  # heap of (stored at, unix ms; blob key)
        self._indexed = False

    @property
    def path(self) -> Path:
        return self.store.path

    def verify_batch(self, batch: Batch, mine: Sequence[int], slots: Sequence[int],
                     slices: Sequence[np.ndarray], slice_roots: Sequence[bytes]
                     ) -> VerifiedBatch:
        """Check this node's slices of every blob of `batch`; stores nothing.

        `mine` are the slots the epoch's quorum gives this node and `slots` those the
        disperser sent; per blob, `slices` holds the rows (one per slot) and
        `slice_roots` all n slice roots, which must tree to the header's data root.
        InvalidBlob or InvalidSlice names what does not fit."""
        if list(slots) != list(mine):
            raise InvalidBlob(f"node {self.index} holds slots {list(mine)} of quorum "
                              f"{batch.quorum_id}, was sent {list(slots)}",
                              expected=str(list(mine)), got=str(list(slots)))
        if not len(batch.blobs) == len(slices) == len(slice_roots):
            raise InvalidBlob(f"{len(batch.blobs)} blob headers, {len(slices)} slice sets and "
                              f"{len(slice_roots)} root sets", blobs=len(batch.blobs))
        rows = []
        for header, held, roots_raw in zip(batch.blobs, slices, slice_roots, strict=True):
            self._check_rows(batch, header, held, len(slots))
            verify_held_slices(header.data_root, slots, held, split_roots(roots_raw, self.n))
            rows.append((header, roots_raw, held))
        return VerifiedBatch(batch, tuple(slots), tuple(rows))

    def _check_rows(self, batch: Batch, header: BlobHeader, rows: object, slots: int) -> None:
        """The blob belongs to the batch, and its rows are one uint8 slice per slot."""
        blob = f"blob 0x{header.key.hex()[:16]}"
        where = (header.network_id, header.epoch, header.quorum_id)
        if where != (batch.network_id, batch.epoch, batch.quorum_id):
            raise InvalidBlob(f"{blob} is for (network, epoch, quorum) {where}, the batch for "
                              f"{(batch.network_id, batch.epoch, batch.quorum_id)}",
                              blob=header.key, got=str(where))
        if not isinstance(rows, np.ndarray):
            raise InvalidBlob(f"{blob}: slices must be a numpy array, got "
                              f"{type(rows).__name__}", blob=header.key,
                              got=type(rows).__name__)
        if rows.dtype != np.uint8:
            raise InvalidBlob(f"{blob}: slices must be uint8, got {rows.dtype}",
                              blob=header.key, dtype=str(rows.dtype))
        expected = (slots, slice_length(header.size, self.k))
        if rows.shape != expected:
            raise InvalidBlob(f"{blob}: slices of shape {rows.shape}, expected {expected} "
                              f"({slots} slots of {expected[1]} bytes)", blob=header.key,
                              shape=str(rows.shape), expected=str(expected))

    def put_batch(self, verified: VerifiedBatch, signature: bytes, stored_at_ms: int) -> None:
        """Persist (synced) the batch's slices, blob records and this node's signature of
        the batch root in one write: the caller hands the signature out only after."""
        slots = list(verified.slots)
        writes: list[Write] = []
        for header, roots_raw, rows in verified.rows:
            # One record per blob: all n roots (proofs are rebuilt from them) and the rows.
            writes.append((SLICES_DB, header.key, encode([roots_raw, rows.tobytes()])))
            writes.append((BLOBS_DB, header.key, encode([stored_at_ms, slots,
                                                         header.encode()])))
        writes.append((SIGNED_DB, verified.batch.root, signature))
        self._ensure_index()
        self.store.write(writes)
        for header, _, _ in verified.rows:
            self._index(stored_at_ms, header, slots)

    def signature(self, batch_root: bytes) -> bytes | None:
        """This node's signature of a batch root, if it signed it."""
        return self.store.get(SIGNED_DB, batch_root)

    def held(self, blob_key: bytes) -> Held:
        """{slot: (slice, Merkle proof into the data root)} of the blob's slots here."""
        raw = self.store.get(BLOBS_DB, blob_key)
        item = self.store.get(SLICES_DB, blob_key)
        if raw is None or item is None:
            return {}
        slots = [as_int(s) for s in as_list(decode(raw)[1])]
        roots_raw, rows_raw = (as_bytes(f) for f in as_list(decode(item), 2))
        levels = merkle_levels(split_roots(roots_raw, len(roots_raw) // HASH_BYTES))
        rows = np.frombuffer(rows_raw, dtype=np.uint8).reshape(len(slots), -1)
        return {slot: (rows[i], proof_from_levels(levels, slot).to_list())
                for i, slot in enumerate(slots)}

    def blobs(self) -> int:
        return self.store.count(BLOBS_DB)

    def prune(self, before: float) -> int:
        """Delete the blobs stored before `before` (unix s): past retention. Returns how
        many were deleted."""
        self._ensure_index()
        writes: list[Write] = []
        while self._by_age and self._by_age[0][0] / 1000 < before:
            _, key = heapq.heappop(self._by_age)
            if self.store.get(BLOBS_DB, key) is None:
                continue
            writes += [(BLOBS_DB, key, None), (SLICES_DB, key, None)]
        if writes:
            self.store.write(writes)
        return len(writes) // 2

    def networks(self) -> list[int]:
        """The networks this node stored blobs for (since it was opened or before)."""
        self._ensure_index()
        return list(self._recent)

    def sampling_answers(self, network_id: int, seed: bytes, target: int,
                         limit: int) -> list[list]:
        """Args of `da.sample` txs for a sampling round (seed, target) of the network, from
        the newest blobs held for it, at most `limit`."""
        self._ensure_index()
        answers: list[list] = []
        for header, _ in list(self._recent.get(network_id, ())):
            for slot, (data, proof) in self.held(header.key).items():
                for subline, sectors, proofs in find_answers(
                        seed, target, header.epoch, header.quorum_id, header.data_root, slot,
                        data.tobytes(), limit - len(answers)):
                    answers.append([header.key, slot, subline, sectors, proofs, proof])
                if len(answers) >= limit:
                    return answers
        return answers

    def _index(self, stored_at: int, header: BlobHeader, slots: list[int]) -> None:
        recent = self._recent.setdefault(header.network_id,
                                         deque(maxlen=SAMPLE_RECENT_BLOBS))
        recent.append((header, slots))
        heapq.heappush(self._by_age, (stored_at, header.key))

    def _ensure_index(self) -> None:
        if self._indexed:
            return
        stored = []
        for _, raw in self.store.items(BLOBS_DB):
            fields = as_list(decode(raw))
            stored.append((as_int(fields[0]), BlobHeader.decode(as_bytes(fields[2])),
                           [as_int(s) for s in as_list(fields[1])]))
        for stored_at, header, slots in sorted(stored, key=lambda b: b[0]):
            self._index(stored_at, header, slots)
        self._indexed = True

    def close(self) -> None:
        self.store.close()
