"""File roots and submissions (docs/spec/storage.md "File root"), checked against a literal
reading of the spec written independently of zg_actors.storage.file."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import MerkleProof
from zg_actors.errors import InvalidInput
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.errors import DataUnavailable, SegmentRejected
from zg_actors.storage.file import (
    chunk_count,
    file_root,
    file_tree,
    padded_chunks,
    sector_roots,
    segment_count,
    submission_root,
    verify_file,
    verify_segment,
)


def spec_tree(leaves: list[bytes]) -> bytes:
    """Steps 5: adjacent pairs left to right, odd last node carried up."""
    while len(leaves) > 1:
        nxt = [keccak256(leaves[i] + leaves[i + 1]) for i in range(0, len(leaves) - 1, 2)]
        if len(leaves) % 2:
            nxt.append(leaves[-1])
        leaves = nxt
    return leaves[0]


def spec_root(data: bytes) -> bytes:
    chunks = max(1, -(-len(data) // 256))
    p = 1
    while p < chunks:
        p *= 2
    padded = chunks if p == chunks else -(-chunks // max(1, p // 16)) * max(1, p // 16)
    data = data + bytes(padded * 256 - len(data))
    segments = [data[i:i + SEGMENT_BYTES] for i in range(0, len(data), SEGMENT_BYTES)]
    roots = [spec_tree([keccak256(s[j:j + 256]) for j in range(0, len(s), 256)])
             for s in segments]
    return spec_tree(roots)


@pytest.mark.parametrize("chunks, padded", [
    (1, 1), (2, 2), (3, 3), (5, 5), (17, 18), (31, 32), (33, 36), (1000, 1024),
    (1025, 1152), (20481, 22528), (4096, 4096)])
def test_padding_follows_0g_compute_padded_size(chunks: int, padded: int) -> None:
    assert padded_chunks(chunks) == padded


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 4095, 4097, 100_000, SEGMENT_BYTES - 1,
                                  SEGMENT_BYTES, SEGMENT_BYTES + 1, 3 * SEGMENT_BYTES + 12_345,
                                  5 * 1024 * 1024 + 3])
def test_file_root_matches_the_spec_for_many_sizes(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert file_root(data) == spec_root(data)


def test_one_sector_file_root_is_the_sector_hash() -> None:
    assert file_root(b"abc") == keccak256(b"abc" + bytes(253))
    assert file_root(b"") == keccak256(bytes(256))


@pytest.mark.parametrize("size", [1, 768, 300_000, 1_300_000, 5 * 1024 * 1024 + 3])
def test_submission_nodes_are_descending_powers_whose_fold_is_the_root(size: int) -> None:
    tree = file_tree(os.urandom(size))
    heights = [h for _, h in tree.nodes]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == len(heights)
    assert sum(1 << h for h in heights) == padded_chunks(chunk_count(size))
    assert submission_root(tree.nodes) == tree.root
    assert tree.segments == segment_count(size)


def test_submission_node_roots_are_trees_over_their_sectors() -> None:
    data = os.urandom(1025 * 256)  # 1152 padded sectors: nodes of 1024 and 128 sectors
    tree = file_tree(data)
    padded = data + bytes(1152 * 256 - len(data))
    sectors = [keccak256(padded[i:i + 256]) for i in range(0, len(padded), 256)]
    assert tree.nodes == ((spec_tree(sectors[:1024]), 10), (spec_tree(sectors[1024:]), 7))


def test_every_segment_proof_verifies_and_a_tampered_one_does_not() -> None:
    data = os.urandom(3 * SEGMENT_BYTES + 1000)
    tree = file_tree(data)
    padded = data + bytes(tree.padded_size - len(data))
    for i in range(tree.segments):
        verify_segment(tree.root, len(data), i, tree.segment(padded, i), tree.proof(i))
    segment = bytearray(tree.segment(padded, 1))
    segment[7] ^= 1
    with pytest.raises(SegmentRejected, match="segment 1"):
        verify_segment(tree.root, len(data), 1, bytes(segment), tree.proof(1))
    with pytest.raises(SegmentRejected):  # the proof of another index
        verify_segment(tree.root, len(data), 2, tree.segment(padded, 2), tree.proof(1))
    with pytest.raises(SegmentRejected):  # the right proof, another root
        verify_segment(keccak256(b"x"), len(data), 0, tree.segment(padded, 0), tree.proof(0))
    with pytest.raises(SegmentRejected, match="out of range"):
        verify_segment(tree.root, len(data), 9, tree.segment(padded, 0), tree.proof(0))


def test_single_segment_file_proof_is_the_root_alone() -> None:
    tree = file_tree(b"hello")
    assert tree.proof(0) == MerkleProof((tree.root,), ())


def test_negative_size_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="-1"):
        chunk_count(-1)


@pytest.mark.parametrize("size", [1, 300, SEGMENT_BYTES, 5 * SEGMENT_BYTES + 777,
                                  17 * SEGMENT_BYTES])
def test_a_tree_hashed_in_pieces_is_the_same_tree(size: int) -> None:
    """A client may spread file_tree's rows over workers (hash_rows): same tree."""
    data = os.urandom(size)
    whole = file_tree(data, keep_height=9)

    def in_pieces(rows: np.ndarray, pieces: int) -> list[bytes]:
        bounds = [len(rows) * i // pieces for i in range(pieces + 1)]
        return [root for i in range(pieces)
                for root in sector_roots(rows[bounds[i]:bounds[i + 1]])]

    for pieces in (1, 2, 3):
        assert file_tree(data, 9, lambda rows, p=pieces: in_pieces(rows, p)) == whole


@pytest.mark.parametrize("size, keep_height, rows", [
    (3 * SEGMENT_BYTES, None, (3, SEGMENT_BYTES)),  # whole segments are the rows
    (3 * SEGMENT_BYTES + 1000, 9, (6, SEGMENT_BYTES // 2)),  # 2 subtrees per whole segment
    (2 * SEGMENT_BYTES, 0, (2048, 256)),  # one row per sector
    (1000, None, None)])  # a single short segment is hashed apart, sector by sector
def test_file_tree_hashes_all_whole_segments_in_one_call(size: int, keep_height: int | None,
                                                         rows: tuple[int, int] | None) -> None:
    """The segments' rows reach hash_rows as one array: one pass on a GPU."""
    calls: list[tuple[int, ...]] = []

    def recording(array: np.ndarray) -> list[bytes]:
        calls.append(array.shape)
        return sector_roots(array)

    data = random.Random(size).randbytes(size)
    tree = file_tree(data, keep_height, recording)
    assert calls == ([rows] if rows else [])
    assert tree == file_tree(data, keep_height) and tree.root == spec_root(data)


def test_file_tree_rejects_a_bad_keep_height_and_a_short_row_hasher() -> None:
    with pytest.raises(InvalidInput, match="keep_height must be >= 0, got -1"):
        file_tree(b"x", keep_height=-1)
    with pytest.raises(InvalidInput, match="hash_rows gave 1 roots for 2 rows"):
        file_tree(bytes(2 * SEGMENT_BYTES), None, lambda rows: sector_roots(rows[:1]))


def test_verify_file_checks_the_segment_roots_against_the_root() -> None:
    data = os.urandom(3 * SEGMENT_BYTES + 5)
    tree = file_tree(data)
    verify_file(tree.root, len(data), tree.segment_roots)
    with pytest.raises(DataUnavailable, match="3 segment roots do not build"):
        verify_file(tree.root, len(data), tree.segment_roots[:3])
    with pytest.raises(DataUnavailable, match=f"0x{tree.root.hex()}"):
        verify_file(tree.root, len(data), (keccak256(b"x"), *tree.segment_roots[1:]))
