"""Dispersal and retrieval logic without Ray: batching, routing, slices per signer.

The Disperser and DANode actors (da/actors.py) wrap these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from zg_actors.crypto.merkle import proof_from_list
from zg_actors.da.blob import BlobHeader, EncodedBlob, verify_slice
from zg_actors.da.errors import InvalidSlice
from zg_actors.da.params import BlobStatus
from zg_actors.da.quorum import Quorum

BatchKey = tuple[int, int, int]  # (network id, epoch, quorum id)


@dataclass
class PendingBlob:
    header: BlobHeader
    blob: EncodedBlob | None  # None once its slices went to the DA nodes
    created: float  # unix s, when its DisperseBlob was accepted
    status: int = BlobStatus.PROCESSING  # as last persisted


@dataclass
class OpenBatch:
    blobs: list[PendingBlob] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


class BatchQueue:
    """Blobs grouped per (network, epoch, quorum); a batch is due when it holds
    max_blobs blobs or max_bytes bytes, or interval_s after its first blob.

    Group commit: while `max_signing` batches of a key are out for signatures, its open
    batch is not sealed by the interval and keeps filling (up to the size limits). Under
    load batches grow with the signing time, so a slow BLS backend costs fewer, bigger
    certificates instead of a backlog of small ones; at low load nothing waits."""

    def __init__(self, interval_s: float, max_blobs: int, max_bytes: int,
                 max_signing: int = 1) -> None:
        self.interval_s = interval_s
        self.max_blobs = max_blobs
        self.max_bytes = max_bytes
        self.max_signing = max_signing
        self.open: dict[BatchKey, OpenBatch] = {}
        self.signing: dict[BatchKey, int] = {}  # batches popped and not yet signed()

    def add(self, key: BatchKey, pending: PendingBlob, now: float) -> None:
        batch = self.open.setdefault(key, OpenBatch(opened=now))
        batch.blobs.append(pending)
        batch.size += pending.header.size

    def due(self, now: float) -> list[BatchKey]:
        return [key for key, b in self.open.items()
                if len(b.blobs) >= self.max_blobs or b.size >= self.max_bytes
                or (now - b.opened >= self.interval_s
                    and self.signing.get(key, 0) < self.max_signing)]

    def pop(self, key: BatchKey) -> list[PendingBlob]:
        """The batch's blobs; it counts as out for signatures until signed(key)."""
        self.signing[key] = self.signing.get(key, 0) + 1
        return self.open.pop(key).blobs

    def signed(self, key: BatchKey) -> None:
        """A batch of `key` has its signatures (or failed): the next one may seal."""
        left = self.signing.get(key, 0) - 1
        if left > 0:
            self.signing[key] = left
        else:
            self.signing.pop(key, None)

    def __len__(self) -> int:
        return sum(len(b.blobs) for b in self.open.values())


def choose_network(loads: Mapping[int, int], routed: Mapping[int, int]) -> int:
    """The least loaded network (blobs queued or awaiting their certificate); ties go to
    the one given the fewest blobs so far, so a new network starts taking work at once."""
    return min(loads, key=lambda n: (loads[n], routed.get(n, 0), n))


def slots_by_signer(quorum: Quorum) -> dict[int, list[int]]:
    """{registry signer index: [slots it holds]}: which slices go to which DA node."""
    out: dict[int, list[int]] = {}
    for slot, signer in enumerate(quorum.holders):
        out.setdefault(signer, []).append(slot)
    return out


def slices_for(blob: EncodedBlob, slots: list[int]) -> np.ndarray:
    """The rows of `slots`, one array (ready for Ray's object store); the node checks them
    against the blob's slice roots (EncodedBlob.roots_bytes), sent beside them."""
    return blob.slices[slots]


def verified_slices(header: BlobHeader, n: int,
                    served: Mapping[int, tuple[np.ndarray, list]]) -> dict[int, np.ndarray]:
    """The served slices that check against the data root; corrupt ones are dropped (the
    code decodes erasures, it cannot locate errors)."""
    good = {}
    for slot, (data, proof) in served.items():
        try:
            verify_slice(header.data_root, slot, data, proof_from_list(proof), n)
        except InvalidSlice:
            continue
        good[slot] = data
    return good


def bad_encoding_proof(good: Mapping[int, tuple[np.ndarray, list]], k: int) -> list:
    """Args of da.prove_bad_encoding: k verified slices with their proofs (index order)."""
    chosen = sorted(good.items())[:k]
    return [[slot, np.asarray(data).tobytes(), proof] for slot, (data, proof) in chosen]
