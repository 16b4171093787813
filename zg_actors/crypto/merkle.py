"""0G's Merkle tree and proofs (docs/spec/storage.md "File root", steps 5-6).

The same tree serves file roots, segment roots, block tx roots and DA slice
roots: hash adjacent pairs left to right with keccak(left || right); an odd
last node is carried up unchanged; repeat until one node is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zg_actors.crypto.keccak import HASH_BYTES, keccak256
from zg_actors.errors import InvalidInput, InvalidProof

SECTOR_BYTES = 256  # one 0G sector (0G code also says "chunk"): a leaf of storage and DA trees
# Root of a tree with no leaves (an empty block's tx root): not a keccak output
# of anything, so it never collides with a real root.
EMPTY_ROOT = bytes(HASH_BYTES)


@dataclass(frozen=True)
class MerkleProof:
    """lemma = [leaf hash, sibling hashes bottom-up, root]; path[i] is True when the
    node on the path is the left child at step i (0G's layout)."""

    lemma: tuple[bytes, ...]
    path: tuple[bool, ...]

    @property
    def leaf(self) -> bytes:
        return self.lemma[0]

    @property
    def root(self) -> bytes:
        return self.lemma[-1]

    def to_list(self) -> list:
        return [list(self.lemma), [1 if p else 0 for p in self.path]]


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root level last."""
    if not leaves:
        raise InvalidInput("a Merkle tree needs at least one leaf", leaves=0)
    level = list(leaves)
    levels = [level]
    while len(level) > 1:
        pairs = len(level) // 2
        parent = [keccak256(level[2 * i] + level[2 * i + 1]) for i in range(pairs)]
        if len(level) % 2:
            parent.append(level[-1])
        level = parent
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the 0G tree over `leaves`; EMPTY_ROOT for no leaves."""
    if not leaves:
        return EMPTY_ROOT
    return merkle_levels(leaves)[-1][0]


def sector_hashes(data: bytes, sector_bytes: int) -> list[bytes]:
    """keccak of each `sector_bytes`-long sector of `data`: the leaves of its 0G tree."""
    return [keccak256(data[i:i + sector_bytes]) for i in range(0, len(data), sector_bytes)]


def sector_tree_root(data: bytes, sector_bytes: int, backend: str | None = None) -> bytes:
    """Root of the 0G tree over `data`'s sector hashes (a DA slice root, a storage segment
    root); callers check that data is whole sectors. `backend` ("cpu", "cupy", "fastest";
    default this process's, see crypto.sector_tree) picks the hardware, not the result."""
    return sector_tree_roots(data, sector_bytes, backend)[0]


def sector_tree_roots(rows: Any, sector_bytes: int, backend: str | None = None) -> list[bytes]:
    """sector_tree_root of each row of a rows x length uint8 array (numpy, or CuPy on a GPU),
    in one pass: on a GPU every row shares each kernel launch."""
    from zg_actors.crypto import sector_tree  # it imports this module

    return sector_tree.resolve(backend).roots(rows, sector_bytes)


def proof_from_levels(levels: list[list[bytes]], index: int) -> MerkleProof:
    leaf_count = len(levels[0])
    if not 0 <= index < leaf_count:
        raise InvalidInput(f"leaf index {index} out of range for {leaf_count} leaves",
                           index=index, leaves=leaf_count)
    if leaf_count == 1:
        return MerkleProof((levels[0][0],), ())
    lemma = [levels[0][index]]
    path: list[bool] = []
    position = index
    for level in levels[:-1]:
        is_left = position % 2 == 0
        sibling = position + 1 if is_left else position - 1
        if sibling < len(level):  # a carried-up odd node adds no step
            lemma.append(level[sibling])
            path.append(is_left)
        position //= 2
    lemma.append(levels[-1][0])
    return MerkleProof(tuple(lemma), tuple(path))


def merkle_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    """Proof that leaves[index] is in the tree; a single-leaf proof is lemma=[root], path=[]."""
    return proof_from_levels(merkle_levels(leaves), index)


def _expected_path(index: int, leaf_count: int) -> list[bool]:
    path: list[bool] = []
    position, width = index, leaf_count
    while width > 1:
        is_left = position % 2 == 0
        if is_left and position + 1 >= width:
            pass  # carried up, no step
        else:
            path.append(is_left)
        position //= 2
        width = (width + 1) // 2
    return path


def verify_proof(proof: MerkleProof, root: bytes, leaf: bytes, index: int,
                 leaf_count: int) -> None:
    """Raise InvalidProof unless `proof` shows `leaf` at `index` of a `leaf_count`-leaf
    tree whose root is `root`."""
    if leaf_count == 1:
        if proof.lemma != (root,) or proof.path or leaf != root or index != 0:
            raise InvalidProof("single-leaf proof must be lemma=[root], path=[]",
                               root=root, leaf=leaf, index=index)
        return
    if not 0 <= index < leaf_count:
        raise InvalidProof(f"leaf index {index} out of range for {leaf_count} leaves",
                           index=index, leaves=leaf_count)
    if len(proof.lemma) != len(proof.path) + 2:
        raise InvalidProof(f"lemma has {len(proof.lemma)} hashes for {len(proof.path)} steps",
                           lemma=len(proof.lemma), path=len(proof.path))
    if list(proof.path) != _expected_path(index, leaf_count):
        raise InvalidProof(f"proof path does not lead to leaf index {index}", index=index)
    if proof.lemma[0] != leaf:
        raise InvalidProof("proof is for another leaf", expected=leaf, got=proof.lemma[0])
    if proof.lemma[-1] != root:
        raise InvalidProof("proof is for another root", expected=root, got=proof.lemma[-1])
    node = leaf
    for sibling, is_left in zip(proof.lemma[1:-1], proof.path, strict=True):
        node = keccak256(node + sibling) if is_left else keccak256(sibling + node)
    if node != root:
        raise InvalidProof("proof hashes do not reach the root", expected=root, got=node)


def hashes_from_list(items: Sequence, what: str) -> tuple[bytes, ...]:
    """Hashes that crossed an actor boundary, as bytes; InvalidProof names an item that is
    not bytes (bytes(n) of an int n would be n zero bytes: a peer's 10**9 is a GB, 2**64 an
    OverflowError)."""
    try:
        hashes = tuple(items)
    except TypeError as exc:
        raise InvalidProof(f"malformed {what}: {exc}") from exc
    for i, item in enumerate(hashes):
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise InvalidProof(f"malformed {what}: item {i} is {type(item).__name__}, not "
                               f"bytes", item=i, type=type(item).__name__)
    return tuple(bytes(h) for h in hashes)


def proof_from_list(raw: Sequence) -> MerkleProof:
    """Inverse of MerkleProof.to_list (for proofs that crossed an actor boundary)."""
    try:
        lemma, path = raw
        steps = tuple(bool(p) for p in path)
    except (TypeError, ValueError) as exc:
        raise InvalidProof(f"malformed Merkle proof: {exc}") from exc
    return MerkleProof(hashes_from_list(lemma, "Merkle proof lemma"), steps)
