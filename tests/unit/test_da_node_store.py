"""A DA node's core on a real LMDB store: only its own slots of a batch, proved into each
blob's data root, are stored; bad input names what is wrong and stores nothing; what was
signed survives a reopen, with the indexes that pruning and sampling use."""

from __future__ import annotations

import time

import numpy as np
import pytest

from zg_actors.da.blob import BlobHeader, encode_blob, slice_length
from zg_actors.da.certificate import Batch
from zg_actors.da.errors import InvalidBlob, InvalidSlice
from zg_actors.da.node_store import DANodeStore, VerifiedBatch
from zg_actors.da.sampling import SUBLINE_BYTES

K, N = 4, 12
NETWORK, EPOCH, QUORUM = 0, 3, 1
MINE = [1, 5, 10]  # the slots the quorum gives this node
SIGNATURE = b"\x5a" * 96  # stands for the node's BLS signature of the batch root
EVERY_ANSWER = 2**257  # a sampling target every subline meets (qualities are sums of two hashes)


def make_batch(sizes: tuple[int, ...] = (5_000, 1_200), seed: int = 1,
               network: int = NETWORK) -> tuple[Batch, list]:
    rng = np.random.default_rng(seed)
    blobs = [encode_blob(rng.integers(0, 256, size, dtype=np.uint8).tobytes(), K, N)
             for size in sizes]
    headers = tuple(BlobHeader(b.data_root, b.size, EPOCH, QUORUM, network) for b in blobs)
    return Batch(network, EPOCH, QUORUM, headers), blobs


def rows_of(blobs: list) -> list[np.ndarray]:
    return [b.slices[MINE] for b in blobs]


def roots_of(blobs: list) -> list[bytes]:
    return [b.roots_bytes for b in blobs]


def store_at(path) -> DANodeStore:
    return DANodeStore(path, 7, K, N)


def sign(store: DANodeStore, batch: Batch, blobs: list, stored_at_ms: int) -> VerifiedBatch:
    verified = store.verify_batch(batch, MINE, MINE, rows_of(blobs), roots_of(blobs))
    store.put_batch(verified, SIGNATURE, stored_at_ms)
    return verified


def test_a_signed_batch_is_persisted_and_survives_a_reopen(tmp_path) -> None:
    store = store_at(tmp_path / "node")
    batch, blobs = make_batch()
    sign(store, batch, blobs, int(time.time() * 1000))
    store.close()  # put_batch returned: the records are on disk (synced)

    reopened = store_at(tmp_path / "node")
    assert reopened.signature(batch.root) == SIGNATURE
    assert reopened.blobs() == 2
    for header, blob in zip(batch.blobs, blobs, strict=True):
        held = reopened.held(header.key)
        assert sorted(held) == MINE
        for slot, (data, proof) in held.items():
            assert np.array_equal(data, blob.slices[slot])
            assert proof == blob.slice_proof(slot).to_list()
    # The sampling index is rebuilt from the records: answers come from what is held.
    assert reopened.networks() == [NETWORK]
    answers = reopened.sampling_answers(NETWORK, b"\x01" * 32, EVERY_ANSWER, 5)
    assert len(answers) == 5
    assert {(key, slot) for key, slot, *_ in answers} <= {
        (h.key, s) for h in batch.blobs for s in MINE}


def test_pruning_deletes_only_what_is_past_retention_also_after_a_reopen(tmp_path) -> None:
    store = store_at(tmp_path / "node")
    old, old_blobs = make_batch(seed=1)
    new, new_blobs = make_batch(sizes=(3_000,), seed=2)
    sign(store, old, old_blobs, 1_000_000)  # unix ms
    sign(store, new, new_blobs, 2_000_000)
    store.close()

    reopened = store_at(tmp_path / "node")
    assert reopened.prune(before=1_500) == 2  # unix s: between the two batches
    assert all(reopened.held(h.key) == {} for h in old.blobs)
    assert sorted(reopened.held(new.blobs[0].key)) == MINE
    assert reopened.prune(before=1_500) == 0
    assert reopened.prune(before=2_001) == 1 and reopened.blobs() == 0


@pytest.mark.parametrize("case", ["slots", "counts", "batch", "array", "dtype", "shape",
                                  "roots", "slice"])
def test_bad_input_is_refused_by_name_and_stores_nothing(tmp_path, case: str) -> None:
    store = store_at(tmp_path / "node")
    batch, blobs = make_batch()
    slots, rows, roots = list(MINE), rows_of(blobs), roots_of(blobs)
    error: type[Exception] = InvalidBlob
    named = ""
    if case == "slots":
        slots, named = [1, 5, 11], "[1, 5, 11]"
        rows = [b.slices[slots] for b in blobs]
    elif case == "counts":
        rows, named = rows[:1], "1 slice sets"
    elif case == "batch":  # a header of another network's batch slipped in
        other, _ = make_batch(network=NETWORK + 1)
        batch = Batch(NETWORK, EPOCH, QUORUM, (batch.blobs[0], other.blobs[1]))
        named = f"(network, epoch, quorum) ({NETWORK + 1}, {EPOCH}, {QUORUM})"
    elif case == "array":
        rows[0], named = rows[0].tolist(), "got list"
    elif case == "dtype":
        rows[0], named = rows[0].astype(np.uint16), "got uint16"
    elif case == "shape":
        rows[1], named = rows[1][:, :-1], f"shape {rows[1][:, :-1].shape}"
    elif case == "roots":
        roots[0], named = roots[0][:-1], f"got {len(roots[0]) - 1}"
    elif case == "slice":
        rows[1] = rows[1].copy()
        rows[1][2, 0] ^= 0xFF
        error, named = InvalidSlice, f"slice {MINE[2]}"

    with pytest.raises(error, match=named.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        store.verify_batch(batch, MINE, slots, rows, roots)
    assert store.blobs() == 0 and store.signature(batch.root) is None
    assert all(store.held(h.key) == {} for h in batch.blobs)
    store.close()
    assert store_at(tmp_path / "node").blobs() == 0


def test_sampling_answers_stop_at_the_limit_and_name_held_slots(tmp_path) -> None:
    store = store_at(tmp_path / "node")
    batch, blobs = make_batch(sizes=(40 * SUBLINE_BYTES,))
    sign(store, batch, blobs, int(time.time() * 1000))
    [header] = batch.blobs
    answers = store.sampling_answers(NETWORK, b"\x02" * 32, EVERY_ANSWER, 3)
    assert len(answers) == 3
    for key, slot, subline, sectors, proofs, slice_proof in answers:
        assert key == header.key and slot in MINE
        assert 0 <= subline < slice_length(header.size, K) // SUBLINE_BYTES
        assert slice_proof == blobs[0].slice_proof(slot).to_list()
        assert len(sectors) == len(proofs) > 0
    assert store.sampling_answers(NETWORK + 1, b"\x02" * 32, EVERY_ANSWER, 3) == []
