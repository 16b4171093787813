"""File roots and submissions, exactly as 0G's storage client computes them
(docs/spec/storage.md "File root" and "Submission").

Uploading: one call builds everything the client sends.

    tree = file_tree(data, keep_height)    # hashed once (one GPU pass if one is here)
    tree.root                              # the file's id everywhere
    tree.nodes                             # the submission's (root, height) nodes
    tree.segment(padded, i), tree.proof(i), tree.subtree_roots[i]   # segment i's delivery

Checking: verify_segment / verify_data_shard (a miner, or a download, checks one
segment or data shard against the on-chain root), verify_file (a download checks
that its verified segment roots build the file root).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from zg_actors.crypto import merkle
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import (
    MerkleProof,
    merkle_levels,
    merkle_root,
    proof_from_levels,
    verify_proof,
)
from zg_actors.errors import InvalidInput, InvalidProof
from zg_actors.storage.constants import (
    PADDING_UNITS,
    SECTOR_BYTES,
    SECTORS_PER_SEGMENT,
    SEGMENT_BYTES,
    SEGMENT_HEIGHT,
)
from zg_actors.storage.errors import DataUnavailable, SegmentRejected

BytesLike = bytes | bytearray | memoryview | np.ndarray
Node = tuple[bytes, int]  # (root over its sectors, height = log2(sectors))


def chunk_count(size: int) -> int:
    """Sectors the file occupies: ceil(size / 256), at least 1 (an empty file is one sector)."""
    if size < 0:
        raise InvalidInput(f"file size must be >= 0 bytes, got {size}", size=size)
    return max(1, -(-size // SECTOR_BYTES))


def next_pow2(value: int) -> int:
    return 1 << max(0, (value - 1).bit_length())


def padded_chunks(chunks: int) -> int:
    """0G's ComputePaddedSize: powers of two stay; others round up to next_pow2 / 16 sectors."""
    pow2 = next_pow2(chunks)
    if pow2 == chunks:
        return chunks
    unit = max(1, pow2 // PADDING_UNITS)
    return -(-chunks // unit) * unit


def padded_size(size: int) -> int:
    """Bytes after padding: what the tree, the flow and the miners see."""
    return padded_chunks(chunk_count(size)) * SECTOR_BYTES


def segment_count(size: int) -> int:
    return -(-padded_size(size) // SEGMENT_BYTES)


def segment_length(size: int, index: int) -> int:
    """Bytes of padded segment `index` (the last may be shorter than 256 KiB)."""
    total = padded_size(size)
    return min(SEGMENT_BYTES, total - index * SEGMENT_BYTES)


def fragment_bytes(max_entry_bytes: int) -> int:
    """Bytes per fragment when a file is split over several flow entries.

    0G's client (transfer/uploader.go SplitableUpload) aligns its `--fragment-size` to a
    power of two so that every full fragment needs no padding; here the per-entry limit
    is a hard cap, so the fragment is the largest power of two <= max_entry_bytes.
    """
    if max_entry_bytes < SECTOR_BYTES:
        raise InvalidInput(f"max_entry_bytes must be >= {SECTOR_BYTES}, got {max_entry_bytes}",
                           max_entry_bytes=max_entry_bytes)
    return 1 << (max_entry_bytes.bit_length() - 1)


def split_fragments(size: int, max_entry_bytes: int) -> list[tuple[int, int]]:
    """(offset, length) of each flow entry of a `size`-byte file, in file order.

    A file of at most max_entry_bytes is one entry; a bigger one is cut into consecutive
    fragments of fragment_bytes(max_entry_bytes), the last one shorter.
    """
    chunk_count(size)  # rejects a negative size
    if size <= max_entry_bytes:
        return [(0, size)]
    step = fragment_bytes(max_entry_bytes)
    return [(offset, min(step, size - offset)) for offset in range(0, size, step)]


def node_heights(chunks: int) -> list[int]:
    """The submission's node heights: padded chunks as descending powers of two."""
    padded = padded_chunks(chunks)
    return [h for h in range(padded.bit_length() - 1, -1, -1) if padded >> h & 1]


def sector_hashes(segment: bytes) -> list[bytes]:
    return merkle.sector_hashes(segment, SECTOR_BYTES)


def segment_root(segment: BytesLike) -> bytes:
    """Root of the 0G tree over keccak(sector) of the segment's sectors."""
    data = bytes(segment)
    if not data or len(data) % SECTOR_BYTES or len(data) > SEGMENT_BYTES:
        raise InvalidInput(f"a segment is 1..{SECTORS_PER_SEGMENT} whole sectors, got "
                           f"{len(data)} bytes", length=len(data))
    return merkle.sector_tree_root(data, SECTOR_BYTES)


def submission_root(nodes: Sequence[Node]) -> bytes:
    """The file root from its submission nodes (0G's Submission.root(): a right fold).

    Equal to the carried-up tree over segment roots because the nodes are
    descending powers of two laid out left to right.
    """
    if not nodes:
        raise InvalidInput("a submission has at least one node", nodes=0)
    root = nodes[-1][0]
    for node_root, _ in reversed(nodes[:-1]):
        root = keccak256(node_root + root)
    return root


def pad(data: BytesLike) -> bytes:
    raw = bytes(data)
    return raw + bytes(padded_size(len(raw)) - len(raw))


RowHasher = Callable[[np.ndarray], Sequence[bytes]]
"""The sector-tree root of each row of a rows x length uint8 array (the contract of
crypto.merkle.sector_tree_roots); a client passes its own to spread rows over workers."""


def sector_roots(rows: np.ndarray) -> list[bytes]:
    """The sector-tree root of each row in one pass, on this process's hashing backend
    (a GPU when one is reachable: every row shares each kernel launch)."""
    return merkle.sector_tree_roots(rows, SECTOR_BYTES)


@dataclass(frozen=True)
class FileTree:
    """The two-level tree of a file: segment roots, then the file root over them.

    file_tree(data) computes all of it, once; the rest only reads it.
    """

    size: int  # bytes before padding
    segment_roots: tuple[bytes, ...]
    levels: tuple[tuple[bytes, ...], ...]  # over the segment roots, leaves first
    nodes: tuple[Node, ...]
    # Per segment, the nodes of its own tree at file_tree's `keep_height` (sectors are
    # height 0): what lets a miner check one data shard without the rest of the segment.
    subtree_roots: tuple[tuple[bytes, ...], ...] = ()

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def segments(self) -> int:
        return len(self.segment_roots)

    @property
    def padded_size(self) -> int:
        return padded_size(self.size)

    def segment(self, padded: bytes, index: int) -> bytes:
        """Bytes of segment `index` cut from the padded data."""
        return padded[index * SEGMENT_BYTES:index * SEGMENT_BYTES + segment_length(self.size,
                                                                                    index)]

    def proof(self, index: int) -> MerkleProof:
        """Proof of segment root `index` to the file root."""
        return proof_from_levels([list(level) for level in self.levels], index)


def file_tree(data: BytesLike, keep_height: int | None = None,
              hash_rows: RowHasher = sector_roots) -> FileTree:
    """Segment roots, file root and submission nodes of `data`; with `keep_height`,
    also every segment's tree nodes at that height (subtree_roots).

    Whole segments are power-of-two trees, so their nodes at a height are the
    sector-tree roots of consecutive rows of that many sectors: all of them go to
    `hash_rows` as one array (one GPU pass), and each segment root is built from its
    rows' roots. A shorter last segment is hashed here, sector by sector, because
    the submission's sub-segment nodes are trees over its sectors.
    """
    if keep_height is not None and keep_height < 0:
        raise InvalidInput(f"keep_height must be >= 0, got {keep_height}",
                           keep_height=keep_height)
    raw = bytes(data)
    size = len(raw)
    padded = np.frombuffer(pad(raw), dtype=np.uint8)
    whole = len(padded) // SEGMENT_BYTES
    height = SEGMENT_HEIGHT if keep_height is None else min(keep_height, SEGMENT_HEIGHT)
    per_segment = 1 << (SEGMENT_HEIGHT - height)  # rows of 2^height sectors
    row_roots = list(hash_rows(padded[:whole * SEGMENT_BYTES].reshape(
        whole * per_segment, SEGMENT_BYTES // per_segment))) if whole else []
    if len(row_roots) != whole * per_segment:
        raise InvalidInput(f"hash_rows gave {len(row_roots)} roots for "
                           f"{whole * per_segment} rows", roots=len(row_roots))
    kept = [tuple(row_roots[i:i + per_segment])
            for i in range(0, len(row_roots), per_segment)]
    roots = [merkle_levels(rows)[-1][0] for rows in kept]
    last_leaves: tuple[bytes, ...] = ()
    if whole < segment_count(size):
        last_leaves = tuple(sector_hashes(padded[whole * SEGMENT_BYTES:].tobytes()))
        last_levels = merkle_levels(last_leaves)
        roots.append(last_levels[-1][0])
        kept.append(tuple(last_levels[min(height, len(last_levels) - 1)]))
    nodes: list[Node] = []
    offset = 0  # in sectors
    for node_height in node_heights(chunk_count(size)):
        if node_height >= SEGMENT_HEIGHT:
            first = offset // SECTORS_PER_SEGMENT
            count = 1 << (node_height - SEGMENT_HEIGHT)
            node_root = merkle_levels(roots[first:first + count])[-1][0]
        else:  # a sub-segment node: only a shorter last segment holds them
            within = offset % SECTORS_PER_SEGMENT
            node_root = merkle_levels(last_leaves[within:within + (1 << node_height)])[-1][0]
        nodes.append((node_root, node_height))
        offset += 1 << node_height
    levels = tuple(tuple(level) for level in merkle_levels(roots))
    return FileTree(size, tuple(roots), levels, tuple(nodes),
                    tuple(kept) if keep_height is not None else ())


def file_root(data: BytesLike) -> bytes:
    """The 0G file root of `data` (the file's id)."""
    return file_tree(data).root


def submission_nodes(data: BytesLike) -> tuple[Node, ...]:
    return file_tree(data).nodes


def _checked_segment_count(size: int, index: int) -> int:
    """Segments of a `size`-byte file; SegmentRejected unless `index` is one of them."""
    count = segment_count(size)
    if not 0 <= index < count:
        raise SegmentRejected(f"segment index {index} out of range for {count} segments",
                              index=index, segments=count)
    return count


def data_shard_height(segment_bytes: int, k: int) -> int | None:
    """Height of the subtree of a segment's tree that each of its k data shards is, or None.

    Data shard j of the canonical code is the j-th k-th of the segment. When the
    segment is a power of two of sectors and k a power of two dividing it, that is
    exactly the j-th subtree at this height, so the shard can be checked alone: hash
    it to its subtree root, put that among the other k - 1 subtree roots, and the
    segment root they build must be proven to the file root.
    """
    sectors = segment_bytes // SECTOR_BYTES
    if sectors * SECTOR_BYTES != segment_bytes or sectors & (sectors - 1) or k & (k - 1) \
            or sectors < k or sectors == 0:
        return None
    return (sectors // k).bit_length() - 1


def verify_data_shard(root: bytes, size: int, index: int, shard: int, row: BytesLike,
                      subtree_roots: Sequence[bytes], k: int, proof: MerkleProof) -> bytes:
    """Check data shard `shard` (of k) of segment `index` on its own; returns the segment root.

    Raises SegmentRejected when the segment's layout does not allow it, or on a wrong
    length, subtree root count, data or proof.
    """
    count = _checked_segment_count(size, index)
    length = segment_length(size, index)
    if data_shard_height(length, k) is None:
        raise SegmentRejected(f"segment {index} ({length} bytes) cannot be split into {k} "
                              "subtrees: send the whole segment", index=index, length=length)
    if not 0 <= shard < k:
        raise SegmentRejected(f"shard {shard} is not a data shard of {k}", shard=shard)
    if len(row) != length // k:
        raise SegmentRejected(f"data shard {shard} of segment {index} has {len(row)} bytes, "
                              f"expected {length // k}", index=index, length=len(row))
    if len(subtree_roots) != k:
        raise SegmentRejected(f"segment {index}: {len(subtree_roots)} subtree roots, expected "
                              f"{k}", index=index, subtree_roots=len(subtree_roots))
    roots = [bytes(r) for r in subtree_roots]
    roots[shard] = merkle.sector_tree_root(bytes(row), SECTOR_BYTES)
    leaf = merkle_levels(roots)[-1][0]
    try:
        verify_proof(proof, root, leaf, index, count)
    except InvalidProof as exc:
        raise SegmentRejected(f"segment {index}, data shard {shard}: {exc}", index=index,
                              shard=shard, root=root) from exc
    return leaf


def verify_segment(root: bytes, size: int, index: int, segment: BytesLike,
                   proof: MerkleProof) -> bytes:
    """Check segment `index` of a `size`-byte file against the file root; returns its root.

    Raises SegmentRejected (naming the index) on a wrong length, data or proof.
    """
    count = _checked_segment_count(size, index)
    expected = segment_length(size, index)
    if len(segment) != expected:
        raise SegmentRejected(f"segment {index} has {len(segment)} bytes, expected {expected}",
                              index=index, length=len(segment), expected=expected)
    leaf = segment_root(segment)
    try:
        verify_proof(proof, root, leaf, index, count)
    except InvalidProof as exc:
        raise SegmentRejected(f"segment {index}: {exc}", index=index, root=root) from exc
    return leaf


def verify_file(root: bytes, size: int, segment_roots: Sequence[bytes]) -> None:
    """Check that the roots of a downloaded file's segments, each checked with
    verify_segment, are all of its segments and build its root; DataUnavailable if not."""
    count = segment_count(size)
    if len(segment_roots) != count or merkle_root(segment_roots) != root:
        raise DataUnavailable(f"{len(segment_roots)} segment roots do not build the file root "
                              f"0x{root.hex()} of {count} segments", root=root,
                              segments=len(segment_roots))
