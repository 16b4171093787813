"""File roots pinned to 0G's own test vectors, and to a literal port of 0G's Go client.

Sources (public repositories, read for facts and figures only):
  * github.com/0glabs/0g-ts-sdk tests/MerkleTree.test.js and tests/ZgFile.test.js
    (same vectors in github.com/0gfoundation/0g-ts-sdk tests/): expected roots.
  * github.com/0gfoundation/0g-storage-client core/dataflow.go (MerkleTree, SegmentRoot,
    ReadAt, NumSplits), core/flow.go (NextPow2, ComputePaddedSize, splitNodes, createNode),
    core/iterator.go (IteratorPaddedSize), core/tree_builder_initializer.go, and the
    TreeBuilder.Build of core/merkle (queue of nodes, odd last node moved to the back).
"""

from __future__ import annotations

import random
from collections import deque

import pytest

from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_root
from zg_actors.storage.file import file_tree, next_pow2, padded_chunks

# ---- literal vectors ------------------------------------------------------------------------


def _chunk_data(i: int) -> bytes:
    # createChunkData(i) of 0g-ts-sdk tests/MerkleTree.test.js
    return f"chunk data - {i}".encode()


# 0g-ts-sdk tests/MerkleTree.test.js, "Multiple-Node Tree Root": leaves are
# keccak(createChunkData(i)) for i < n.
TREE_VECTORS = {
    3: "6f5d8d4ca0790ea245a280ece40fb7493d5f957b8d42931e3326ba3fd0c86e41",
    4: "2418ddec22d6fb98525835c9876a95db78491cc3430df47a9ed4b2a337c5452c",
    5: "2dea03c693750777940bcd0cc3f5d93543c075fa3b9a07b9fd86ec8fbaf6a8b2",
    6: "318c92000aefba6ebf570a8a6daa57aa643f04350ffbe583999ddd9e24ceb147",
    7: "ca80116fb7fb8d6ef4a47e322f22e94ae8beb03e6fcbf8ab59c4d6f54fe42c4d",
    35: "209c511bf4349096c4951cb825bebbf219de745c2b36261bed8c64a105982912",
    36: "c8855b6bfb57c37673397678dd3199fbbe6cd3b0b4cda2800cfab298d271ae2a",
}


@pytest.mark.parametrize("leaves", sorted(TREE_VECTORS))
def test_tree_shape_matches_0g_ts_sdk_vectors(leaves: int) -> None:
    hashes = [keccak256(_chunk_data(i)) for i in range(leaves)]
    assert merkle_root(hashes).hex() == TREE_VECTORS[leaves]


def test_interior_node_matches_0g_ts_sdk_vector() -> None:
    # 0g-ts-sdk tests/MerkleTree.test.js, "Node.fromLeftAndRight"
    node = keccak256(keccak256(_chunk_data(0)) + keccak256(_chunk_data(1)))
    assert node.hex() == "e733f492cef3dbbf28ba4584ca5a35d3e87604a6ad16ff9f10970af2c467b056"


def test_file_root_matches_0g_ts_sdk_example_ts() -> None:
    # 0g-ts-sdk tests/ZgFile.test.js: the root of tests/example.ts (83 bytes, shown here).
    data = (b"\n// This is a test file to test the merkle tree calculation\n"
            b'export const Hi = "Hi";')
    assert len(data) == 83
    assert file_tree(data).root.hex() == (
        "76f3f9a729197e04a7b46c3fe0af7e56d8f0f39dacc3a36496fc9242a9beaa23")


def test_submission_shape_matches_0g_ts_sdk_example_md() -> None:
    # 0g-ts-sdk tests/ZgFile.test.js "createSubmission": tests/example.md is 20182 bytes and
    # its submission has two nodes of heights 6 and 4 (79 chunks padded to 80).
    tree = file_tree(bytes(20182))
    assert padded_chunks(79) == 80
    assert [h for _, h in tree.nodes] == [6, 4]


# ---- literal port of 0G's Go client (github.com/0gfoundation/0g-storage-client) -----------

GO_CHUNK = 256  # DefaultChunkSize
GO_SEGMENT_MAX_CHUNKS = 1024  # DefaultSegmentMaxChunks
GO_SEGMENT = GO_CHUNK * GO_SEGMENT_MAX_CHUNKS  # DefaultSegmentSize
MASK64 = (1 << 64) - 1


def go_next_pow2(value: int) -> int:  # core/flow.go NextPow2 (uint64 bit smearing)
    x = (value - 1) & MASK64
    for shift in (32, 16, 8, 4, 2, 1):
        x |= x >> shift
    return (x + 1) & MASK64


def go_compute_padded_size(chunks: int) -> tuple[int, int]:  # core/flow.go ComputePaddedSize
    pow2 = go_next_pow2(chunks)
    if pow2 == chunks:
        return pow2, pow2
    min_chunk = pow2 // 16 if pow2 >= 16 else 1
    return ((chunks - 1) // min_chunk + 1) * min_chunk, pow2


def go_num_splits(total: int, unit: int) -> int:  # core/dataflow.go NumSplits
    return (total - 1) // unit + 1


def go_padded_size(size: int) -> int:  # core/iterator.go IteratorPaddedSize(size, true)
    return go_compute_padded_size(go_num_splits(size, GO_CHUNK))[0] * GO_CHUNK


def go_build(leaves: list[bytes]) -> bytes:
    """core/merkle TreeBuilder.Build: pair the leaves, then a queue of nodes in which each
    round pops pairs from the front, pushes parents to the back and moves an odd one last."""
    queue: deque[bytes] = deque()
    for i in range(0, len(leaves), 2):
        if i == len(leaves) - 1:
            queue.append(leaves[i])
            continue
        queue.append(keccak256(leaves[i] + leaves[i + 1]))
    while len(queue) > 1:
        count = len(queue)
        for _ in range(count // 2):
            left, right = queue.popleft(), queue.popleft()
            queue.append(keccak256(left + right))
        if count % 2:
            queue.append(queue.popleft())
    return queue[0]


def go_read_at(data: bytes, read_size: int, offset: int, padded: int) -> bytes:
    """core/dataflow.go ReadAt: up to read_size bytes, zeros past the data."""
    length = min(read_size, padded - offset)
    if offset >= len(data):
        return bytes(length)
    buf = bytearray(length)
    part = data[offset:offset + length]
    buf[:len(part)] = part
    return bytes(buf)


def go_segment_root(chunks: bytes) -> bytes:  # core/dataflow.go SegmentRoot (no extra pad)
    leaves = [keccak256(chunks[o:o + GO_CHUNK].ljust(GO_CHUNK, b"\0"))
              for o in range(0, len(chunks), GO_CHUNK)]
    return go_build(leaves)


def go_merkle_tree_root(data: bytes) -> bytes:
    """core/dataflow.go MerkleTree via TreeBuilderInitializer (batch = one segment)."""
    padded = go_padded_size(len(data))
    segments = (padded - 1) // GO_SEGMENT + 1  # NumSegmentsPadded
    roots = [go_segment_root(go_read_at(data, GO_SEGMENT, task * GO_SEGMENT, padded))
             for task in range(segments)]
    return go_build(roots)


def go_submission_nodes(data: bytes) -> list[tuple[bytes, int]]:
    """core/flow.go CreateSubmission: splitNodes, then createNode / createSegmentNode."""
    chunks = go_num_splits(len(data), GO_CHUNK)
    padded_chunks_, next_size = go_compute_padded_size(chunks)
    sizes = []
    while padded_chunks_ > 0:
        if padded_chunks_ >= next_size:
            padded_chunks_ -= next_size
            sizes.append(next_size)
        next_size //= 2
    padded = go_padded_size(len(data))
    nodes, offset = [], 0
    for node_chunks in sizes:
        batch = GO_CHUNK * min(node_chunks, GO_SEGMENT_MAX_CHUNKS)
        size = GO_CHUNK * node_chunks
        roots = [go_segment_root(go_read_at(data, batch, offset + task * batch, padded))
                 for task in range((size - 1) // batch + 1)]
        nodes.append((go_build(roots), node_chunks.bit_length() - 1))
        offset += size
    return nodes


def test_next_pow2_matches_go() -> None:
    for value in [*range(1, 5000), 2**20 - 1, 2**20, 2**20 + 1, 2**33 + 5]:
        assert next_pow2(value) == go_next_pow2(value), value
        assert padded_chunks(value) == go_compute_padded_size(value)[0], value


SIZES = sorted({
    1, 2, 255, 256, 257, 511, 512, 4096, 4097, 15 * 256 + 1, 17 * 256, 20182,
    GO_SEGMENT - 1, GO_SEGMENT, GO_SEGMENT + 1, GO_SEGMENT + 256 * 37,
    2 * GO_SEGMENT + 12_345, 3 * GO_SEGMENT, 3 * GO_SEGMENT + 1,
    5 * GO_SEGMENT - 7, 1_000_000, 17 * GO_SEGMENT + 3,  # 17 segments: 18 after padding
    2**22 - 1, 2**22, 2**22 + 1, 5_000_000,
})


@pytest.mark.parametrize("size", SIZES)
def test_file_root_and_nodes_equal_literal_go_port(size: int) -> None:
    data = random.Random(size).randbytes(size)
    tree = file_tree(data)
    assert tree.root == go_merkle_tree_root(data)
    assert list(tree.nodes) == go_submission_nodes(data)
    assert tree.padded_size == go_padded_size(size)


def test_random_sizes_equal_literal_go_port() -> None:
    rng = random.Random(7)
    for _ in range(40):
        size = rng.randrange(1, 3 * GO_SEGMENT)
        data = rng.randbytes(size)
        assert file_tree(data).root == go_merkle_tree_root(data), size


def go_validate_hash(lemma: list[bytes], path: list[bool], root: bytes, leaf: bytes,
                     position: int, leaves: int) -> bool:
    """core/merkle/proof.go Proof.ValidateHash: format, leaf, root, position, then the
    hash chain (isLeft: keccak(node || sibling), else keccak(sibling || node))."""
    if len(lemma) != (1 if not path else len(path) + 2):
        return False
    if lemma[0] != leaf or lemma[-1] != root:
        return False
    at, count = 0, leaves
    for is_left in reversed(path):  # calculateProofPosition
        left_leaves = (1 << (count - 1).bit_length()) // 2
        if is_left:
            count = left_leaves
        else:
            at += left_leaves
            count -= left_leaves
    if at != position:
        return False
    node = lemma[0]
    for i, is_left in enumerate(path):
        node = keccak256(node + lemma[i + 1]) if is_left else keccak256(lemma[i + 1] + node)
    return node == lemma[-1]


@pytest.mark.parametrize("segments", [1, 2, 3, 5, 7, 12, 18, 33])
def test_segment_proofs_pass_literal_go_validation(segments: int) -> None:
    data = random.Random(segments).randbytes(segments * GO_SEGMENT - 100)
    tree = file_tree(data)
    segments = tree.segments  # after padding (33 data segments pad to 36)
    for index in range(segments):
        proof = tree.proof(index)
        assert go_validate_hash(list(proof.lemma), list(proof.path), tree.root,
                                tree.segment_roots[index], index, segments), index
        assert not go_validate_hash(list(proof.lemma), list(proof.path), tree.root,
                                    tree.segment_roots[index], (index + 1) % segments,
                                    segments) or segments == 1
