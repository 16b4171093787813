"""Storage bytes from outside: a client's segments and their Merkle proofs (store_segment),
packed shard deliveries (store_shards: rows, subtree roots, proofs), and a downloaded
file's segment roots, fuzzed from valid ones against a miner's core on a real LMDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from zg_actors.crypto.merkle import proof_from_list
from zg_actors.errors import ZgError
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.file import FileTree, file_tree, pad, verify_file
from zg_actors.storage.miner import EntryRef, MinerStore, unpack_deliveries
from zg_actors.storage.placement import miner_shard

from ..test_storage_miner import REDUNDANCY
from .budget import fuzz
from .inputs import any_bytes, any_int, outcome, outside_bytes

DATA = bytes(range(256)) * ((2 * SEGMENT_BYTES + 500) // 256) + b"tail"
TREE: FileTree = file_tree(DATA)
PADDED = pad(DATA)
ENTRY = EntryRef(0, 5, TREE.root, len(DATA))
SEGMENTS = [TREE.segment(PADDED, i) for i in range(TREE.segments)]
MINERS = REDUNDANCY.data_shards + REDUNDANCY.parity_shards + 1


def owner_of(segment: int) -> int:
    return next(i for i in range(MINERS)
                if miner_shard(ENTRY.tx_seq, segment, i, MINERS, 3) is not None)


@pytest.fixture(scope="module")
def miners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MinerStore]]:
    root = Path(tmp_path_factory.mktemp("miners"))
    stores = [MinerStore(root / f"m{i}", i, REDUNDANCY) for i in range(MINERS)]
    yield stores
    for store in stores:
        store.close()


# What a proof may look like after crossing from a client: the valid [lemma, path], a
# changed one, or any nesting of values.
_proof_values = st.recursive(st.one_of(any_bytes, any_int, st.booleans(), st.none(),
                                       st.text(max_size=4)),
                             lambda inner: st.lists(inner, max_size=5), max_leaves=12)


def proofs(index: int) -> st.SearchStrategy:
    lemma, path = TREE.proof(index).to_list()
    return st.one_of(st.just([lemma, path]), _proof_values, st.builds(
        lambda lem, pat: [lem, pat],
        st.one_of(st.just(lemma), st.lists(st.one_of(st.sampled_from(lemma), any_bytes,
                                                     any_int), max_size=6)),
        st.one_of(st.just(path), st.lists(st.one_of(st.booleans(), any_int), max_size=6))))


@fuzz()
@example([[2**64], []])  # an int lemma item: bytes(2**64) raised OverflowError
@example([[10**3, b"x"], [True]])
@given(_proof_values)
def test_proofs_from_outside_convert_or_are_refused(raw: object) -> None:
    outcome(proof_from_list, raw)


@fuzz()
@given(st.data())
def test_a_segment_is_stored_or_refused_with_a_typed_error(miners: list[MinerStore],
                                                           data: st.DataObject) -> None:
    """store_segment's input: segment index, bytes and proof, from valid ones."""
    index = data.draw(st.integers(0, len(SEGMENTS) - 1))
    segment = data.draw(st.one_of(st.just(SEGMENTS[index]), outside_bytes(SEGMENTS)))
    proof = outcome(proof_from_list, data.draw(proofs(index)))
    if isinstance(proof, ZgError):
        return
    at = data.draw(st.one_of(st.just(index), any_int))
    outcome(miners[owner_of(index)].accept_segment, ENTRY, at,
            np.frombuffer(segment, dtype=np.uint8), proof)


def test_subtree_roots_that_are_not_bytes_are_refused() -> None:
    """Found by the long run: an int among a delivery's subtree roots became bytes(int),
    int zero bytes (MemoryError at 25e9, OverflowError at 2**63)."""
    rows, deliveries = _valid_delivery(0)
    for root in (9_223_372_036_854_775_775, 25_276_194_760):
        deliveries[0][3] = [root]
        assert isinstance(outcome(unpack_deliveries, rows, deliveries), ZgError)


def _valid_delivery(index: int) -> tuple[np.ndarray, list]:
    """A whole segment for a parity miner: all k data rows packed, no subtree roots."""
    rows = np.frombuffer(SEGMENTS[index], dtype=np.uint8).reshape(REDUNDANCY.data_shards, -1)
    return rows.reshape(-1), [[index, list(range(REDUNDANCY.data_shards)), rows.shape[1], [],
                               TREE.proof(index).to_list()]]


@fuzz()
@given(st.data())
def test_shard_deliveries_are_stored_or_refused_with_a_typed_error(
        miners: list[MinerStore], data: st.DataObject) -> None:
    """store_shards' input: the claimed root and size, packed rows and the deliveries."""
    index = data.draw(st.integers(0, len(SEGMENTS) - 1))
    rows, deliveries = _valid_delivery(index)
    if data.draw(st.booleans()):
        rows = np.frombuffer(data.draw(outside_bytes([rows.tobytes()])), dtype=np.uint8)
    if data.draw(st.booleans()):
        field = data.draw(st.integers(0, 4))
        deliveries[0][field] = data.draw(st.one_of(_proof_values, proofs(index)))
    if data.draw(st.booleans()):
        deliveries = data.draw(st.one_of(_proof_values.map(lambda v: [v]),
                                         st.lists(st.just(deliveries[0]), max_size=3)))
    parsed = outcome(unpack_deliveries, rows, deliveries)
    if isinstance(parsed, ZgError):
        return
    claimed = EntryRef(0, 5, data.draw(st.one_of(st.just(TREE.root), any_bytes)),
                       data.draw(st.one_of(st.just(len(DATA)), any_int)))
    for miner in miners:
        outcome(miner.verify_deliveries, claimed, parsed)


@fuzz()
@given(st.lists(st.one_of(any_bytes, st.sampled_from(TREE.levels[0])), max_size=5), any_int,
       st.one_of(st.just(TREE.root), any_bytes))
def test_a_downloads_segment_roots_build_its_root_or_are_refused(roots: list[bytes],
                                                                size: int,
                                                                root: bytes) -> None:
    outcome(verify_file, root, size, roots)
