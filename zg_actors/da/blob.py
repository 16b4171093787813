"""Blobs: layout into slices, slice roots, the data root and blob headers (docs/spec/da.md).

A blob of `size` bytes is laid out by the canonical erasure code
(docs/spec/erasure.md) into n slices of equal length, k data and n - k parity,
each padded to whole 256-byte sectors. Slice i's root is the 0G Merkle tree
over the keccak of its sectors; the data root is the 0G tree over the n slice
roots, so one Merkle proof ties any slice to the data root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from zg_actors import erasure
from zg_actors.crypto.encoding import EncodingError, as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import HASH_BYTES, keccak256
from zg_actors.crypto.merkle import (
    MerkleProof,
    merkle_levels,
    merkle_root,
    proof_from_levels,
    sector_tree_root,
    verify_proof,
)
from zg_actors.da.errors import BlobTooLarge, InvalidBlob, InvalidBlobId, InvalidSlice
from zg_actors.da.params import MAX_BLOB_BYTES, MAX_SLICES, SECTOR_BYTES
from zg_actors.errors import InvalidProof

QUOTED_PREFIX_BYTES = 8  # of a malformed id, what an error message quotes


def check_code(k: int, n: int) -> None:
    """k data of n slices: 1 <= k < n <= 256 (the GF(2^8) code's limit)."""
    if not 1 <= k < n <= MAX_SLICES:
        raise InvalidBlob(f"need 1 <= k < n <= {MAX_SLICES}, got k={k}, n={n}", k=k, n=n)


def check_size(size: int, max_blob_bytes: int = MAX_BLOB_BYTES) -> None:
    """An empty blob certifies nothing; an oversized one would not fit 0G's limits."""
    if size < 1:
        raise InvalidBlob("a blob needs at least 1 byte", size=size)
    if size > max_blob_bytes:
        raise BlobTooLarge(f"blob is {size} bytes, the maximum is {max_blob_bytes}",
                           size=size, maximum=max_blob_bytes)


def check_blob_id(field: str, value: bytes) -> None:
    """A request id (keccak of a blob header) or a data root is HASH_BYTES long; anything
    else names no blob and is refused before it becomes a store key or enters an error
    message (which quotes only a prefix: a long id must not travel back whole)."""
    if len(value) == HASH_BYTES:
        return
    prefix = value[:QUOTED_PREFIX_BYTES]
    quoted = f" starting 0x{prefix.hex()}" if prefix else ""
    raise InvalidBlobId(f"{field} must be {HASH_BYTES} bytes, got {len(value)} bytes{quoted}",
                        field=field, length=len(value), prefix=prefix)


def slice_length(size: int, k: int) -> int:
    """Bytes per slice: the blob padded to k whole sectors per slice, divided by k."""
    return erasure.shard_length(size, k, SECTOR_BYTES)


def slice_root(data: np.ndarray | bytes) -> bytes:
    """0G tree root over keccak of each 256-byte sector of one slice."""
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw or len(raw) % SECTOR_BYTES:
        raise InvalidSlice(f"a slice is whole {SECTOR_BYTES}-byte sectors, got {len(raw)} bytes",
                           length=len(raw))
    return sector_tree_root(raw, SECTOR_BYTES)


def data_root(slice_roots: Sequence[bytes]) -> bytes:
    return merkle_root(list(slice_roots))


@dataclass(frozen=True)
class EncodedBlob:
    """A blob's n slices (an n x L uint8 array) with their roots and the data root."""

    slices: np.ndarray
    slice_roots: tuple[bytes, ...]
    size: int
    k: int
    data_root: bytes

    @property
    def n(self) -> int:
        return len(self.slice_roots)

    @cached_property
    def _levels(self) -> list[list[bytes]]:
        return merkle_levels(list(self.slice_roots))

    def slice_proof(self, index: int) -> MerkleProof:
        return proof_from_levels(self._levels, index)

    @cached_property
    def roots_bytes(self) -> bytes:
        """The n slice roots as one string: what a DA node gets beside its slices."""
        return b"".join(self.slice_roots)


def commit_slices(slices: np.ndarray, k: int, size: int,
                  roots: Sequence[bytes] | None = None,
                  root: bytes | None = None) -> EncodedBlob:
    """Roots and data root of already encoded slices (e.g. from an encoder actor);
    `roots`: their slice roots, and `root` the tree over them (the data root), if the
    encoder computed them."""
    if roots is None:
        roots = [slice_root(row) for row in slices]
    elif len(roots) != len(slices):
        raise InvalidBlob(f"{len(roots)} slice roots for {len(slices)} slices",
                          roots=len(roots), slices=len(slices))
    return EncodedBlob(slices, tuple(roots), size, k,
                       data_root(roots) if root is None else root)


def encode_blob(payload: bytes | np.ndarray, k: int, n: int,
                max_blob_bytes: int = MAX_BLOB_BYTES) -> EncodedBlob:
    """Lay out and erasure-code `payload` into n slices and commit to them."""
    check_code(k, n)
    check_size(len(payload), max_blob_bytes)
    slices = erasure.encode(payload, k, n - k, SECTOR_BYTES)
    return commit_slices(slices, k, len(payload))


def verify_slice(root: bytes, index: int, data: np.ndarray | bytes, proof: MerkleProof,
                 n: int) -> bytes:
    """Raise InvalidSlice unless `data` is slice `index` of the blob with data root `root`;
    returns the slice's root."""
    computed = slice_root(data)
    try:
        verify_proof(proof, root, computed, index, n)
    except InvalidProof as exc:
        raise InvalidSlice(f"slice {index} does not match data root 0x{root.hex()[:16]}: {exc}",
                           index=index, data_root=root) from exc
    return computed


def split_roots(raw: bytes, n: int) -> list[bytes]:
    """A blob's n slice roots from one n x 32-byte string (a batch sends them so)."""
    if not isinstance(raw, bytes) or len(raw) != n * HASH_BYTES:
        length = len(raw) if isinstance(raw, bytes) else type(raw).__name__
        raise InvalidBlob(f"need {n} slice roots of {HASH_BYTES} bytes ({n * HASH_BYTES} "
                          f"bytes), got {length}", expected=n * HASH_BYTES, got=str(length))
    return [raw[i:i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES)]


def verify_held_slices(data_root: bytes, slots: Sequence[int], rows: np.ndarray,
                       slice_roots: Sequence[bytes]) -> None:
    """Raise InvalidSlice unless the n slice roots tree to `data_root` and row i of `rows`
    has the root of slot slots[i]: every slice checked against the data root. One tree
    over all n roots (n - 1 hashes) replaces a Merkle proof per slice (log2 n each)."""
    if merkle_root(list(slice_roots)) != data_root:
        raise InvalidSlice(f"the slice roots sent do not tree to data root "
                           f"0x{data_root.hex()[:16]}", data_root=data_root)
    if len(rows) != len(slots):
        raise InvalidSlice(f"{len(rows)} slices for {len(slots)} slots", slices=len(rows),
                           slots=len(slots))
    for slot, row in zip(slots, rows, strict=True):
        if not 0 <= slot < len(slice_roots) or slice_root(row) != slice_roots[slot]:
            raise InvalidSlice(f"slice {slot} does not match data root "
                               f"0x{data_root.hex()[:16]}", index=slot, data_root=data_root)


def decode_blob(slices_by_index: dict[int, np.ndarray], k: int, n: int, size: int) -> bytes:
    """The blob from any k verified slices (callers drop slices that failed verify_slice)."""
    return erasure.decode(slices_by_index, k, n - k, size)


@dataclass(frozen=True)
class BlobHeader:
    """What a certificate commits to for one blob; its hash is the blob's key."""

    data_root: bytes
    size: int
    epoch: int
    quorum_id: int
    network_id: int

    def to_list(self) -> list:
        return [self.data_root, self.size, self.epoch, self.quorum_id, self.network_id]

    def encode(self) -> bytes:
        return encode(self.to_list())

    @cached_property
    def key(self) -> bytes:
        return keccak256(self.encode())

    @classmethod
    def from_list(cls, raw: object) -> BlobHeader:
        try:
            f = as_list(raw, 5)  # type: ignore[arg-type]
            return cls(as_bytes(f[0], HASH_BYTES), as_int(f[1]), as_int(f[2]), as_int(f[3]),
                       as_int(f[4]))
        except EncodingError as exc:
            raise InvalidBlob(f"malformed blob header: {exc}") from exc

    @classmethod
    def decode(cls, data: bytes) -> BlobHeader:
        try:
            return cls.from_list(decode(data))
        except EncodingError as exc:
            raise InvalidBlob(f"malformed blob header: {exc}") from exc


def batch_root(headers: Sequence[BlobHeader]) -> bytes:
    """Merkle root over the blob headers' keys: DA nodes sign this once per batch."""
    if not headers:
        raise InvalidBlob("a batch needs at least one blob", blobs=0)
    return merkle_root([h.key for h in headers])
