"""File roots and submissions, exactly as 0G's storage client computes them
(spec/storage.md "File root" and "Submission").

    tree = file_tree(data)
    tree.root                      # the file's id everywhere
    tree.segment(data, i), tree.proof(i)   # what a miner receives for segment i
    tree.nodes                     # the submission's (root, height) nodes
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zg_actors.crypto import merkle
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import MerkleProof, merkle_levels, proof_from_levels, verify_proof
from zg_actors.errors import InvalidInput, InvalidProof
from zg_actors.storage.constants import (
    PADDING_UNITS,
    SECTOR_BYTES,
    SECTORS_PER_SEGMENT,
    SEGMENT_BYTES,
    SEGMENT_HEIGHT,
)
from zg_actors.storage.errors import SegmentRejected

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


@dataclass(frozen=True)
class FileTree:
    """The two-level tree of a file: segment roots, then the file root over them."""

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


def file_tree(data: BytesLike, keep_height: int | None = None) -> FileTree:
    """Segment roots, file root and submission nodes of `data`; with `keep_height`, also
    every segment's tree nodes at that height (FileTree.subtree_roots)."""
    raw = bytes(data)
    padded = pad(raw)
    part = segment_trees(padded, 0, segment_count(len(raw)), keep_height)
    return assemble_tree(len(raw), [part], last_segment_leaves(padded))


@dataclass(frozen=True)
class SegmentTrees:
    """Roots (and kept subtree nodes) of consecutive segments: one piece of a file tree."""

    first: int  # index of the first segment
    roots: tuple[bytes, ...]
    subtree_roots: tuple[tuple[bytes, ...], ...]  # empty without keep_height


def segment_trees(padded: BytesLike, first: int, stop: int,
                  keep_height: int | None = None) -> SegmentTrees:
    """Hash segments first..stop-1 of the padded data: the bulk of a file tree's work,
    independent per segment, so pieces can be hashed in parallel and assembled."""
    view = memoryview(padded).cast("B") if not isinstance(padded, bytes) else padded
    roots = []
    subtrees = []
    for index in range(first, stop):
        segment = bytes(view[index * SEGMENT_BYTES:(index + 1) * SEGMENT_BYTES])
        levels = merkle_levels(sector_hashes(segment))
        roots.append(levels[-1][0])
        if keep_height is not None:
            subtrees.append(tuple(levels[min(keep_height, len(levels) - 1)]))
    return SegmentTrees(first, tuple(roots), tuple(subtrees))


def last_segment_leaves(padded: BytesLike) -> tuple[bytes, ...]:
    """Sector hashes of the last segment: the only one sub-segment submission nodes cover."""
    last = (len(padded) - 1) // SEGMENT_BYTES * SEGMENT_BYTES
    return tuple(sector_hashes(bytes(memoryview(padded)[last:])))


def assemble_tree(size: int, parts: Sequence[SegmentTrees],
                  last_leaves: Sequence[bytes]) -> FileTree:
    """The FileTree of a `size`-byte file from its segments' pieces (in any order)."""
    ordered = sorted((p for p in parts if p.roots), key=lambda p: p.first)
    roots = tuple(r for p in ordered for r in p.roots)
    subtrees = tuple(t for p in ordered for t in p.subtree_roots)
    if len(roots) != segment_count(size) or [p.first for p in ordered] != list(
            itertools.accumulate([0] + [len(p.roots) for p in ordered[:-1]])):
        raise InvalidInput(f"segment pieces cover {len(roots)} segments, the file has "
                           f"{segment_count(size)}", segments=len(roots))
    levels = tuple(tuple(level) for level in merkle_levels(roots))
    nodes: list[Node] = []
    offset = 0  # in sectors
    for height in node_heights(chunk_count(size)):
        if height >= SEGMENT_HEIGHT:
            first = offset // SECTORS_PER_SEGMENT
            count = 1 << (height - SEGMENT_HEIGHT)
            root = merkle_levels(roots[first:first + count])[-1][0]
        else:  # a sub-segment node: only the last segment holds them
            within = offset % SECTORS_PER_SEGMENT
            root = merkle_levels(last_leaves[within:within + (1 << height)])[-1][0]
        nodes.append((root, height))
        offset += 1 << height
    return FileTree(size, roots, levels, tuple(nodes), subtrees)


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
