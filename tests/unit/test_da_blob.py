"""Blobs: layout, slice roots, data root, headers, retrieval from any k slices."""

from __future__ import annotations

import numpy as np
import pytest

from zg_actors.config import load_config
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_root
from zg_actors.da import params
from zg_actors.da.blob import (
    BlobHeader,
    batch_root,
    check_size,
    commit_slices,
    decode_blob,
    encode_blob,
    slice_length,
    slice_root,
    split_roots,
    verify_held_slices,
    verify_slice,
)
from zg_actors.da.errors import BlobTooLarge, InvalidBlob, InvalidSlice


def payload(size: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def test_defaults_are_0g_sized() -> None:
    da = load_config().da
    assert (da.k, da.n, da.max_blob_bytes) == (32, 96, 32_505_852)
    assert (params.DEFAULT_K, params.DEFAULT_N, params.MAX_BLOB_BYTES) == (32, 96, 32_505_852)
    assert params.signing_threshold(96) == 64
    assert [s.value for s in params.BlobStatus] == [0, 1, 2, 3, 4, 5]


def test_layout_roots_and_any_k_slices_recover_the_blob() -> None:
    data = payload(10_000)
    blob = encode_blob(data, k=4, n=12)
    length = slice_length(len(data), 4)
    assert blob.slices.shape == (12, length) and length % params.SECTOR_BYTES == 0
    # Data slices are the zero-padded blob in order.
    assert blob.slices[:4].tobytes()[:len(data)] == data
    first = blob.slices[0].tobytes()
    assert blob.slice_roots[0] == merkle_root([keccak256(first[i:i + 256])
                                               for i in range(0, length, 256)])
    assert blob.data_root == merkle_root(list(blob.slice_roots))
    # Committing with roots an encoder computed gives the same blob; a wrong count fails.
    given = commit_slices(blob.slices, 4, len(data), list(blob.slice_roots))
    assert given.data_root == blob.data_root
    assert commit_slices(blob.slices, 4, len(data), list(blob.slice_roots),
                         blob.data_root).slice_proof(5) == blob.slice_proof(5)
    with pytest.raises(InvalidBlob, match="11 slice roots for 12 slices"):
        commit_slices(blob.slices, 4, len(data), list(blob.slice_roots)[:11])
    for index in range(12):
        verify_slice(blob.data_root, index, blob.slices[index], blob.slice_proof(index), 12)
    parity_only = {i: blob.slices[i] for i in (4, 7, 9, 11)}
    assert decode_blob(parity_only, 4, 12, len(data)) == data


def test_default_code_on_a_100_kb_blob() -> None:
    data = payload(100_000, seed=2)
    blob = encode_blob(data, params.DEFAULT_K, params.DEFAULT_N)
    assert blob.n == 96 and blob.slices.shape[1] == 3_328  # 100,000 / 32 rounded up to sectors
    chosen = {i: blob.slices[i] for i in range(64, 96)}
    assert decode_blob(chosen, 32, 96, len(data)) == data


def test_corrupted_or_misplaced_slice_is_rejected() -> None:
    blob = encode_blob(payload(4_000), k=4, n=12)
    bad = blob.slices[3].copy()
    bad[17] ^= 1
    with pytest.raises(InvalidSlice) as info:
        verify_slice(blob.data_root, 3, bad, blob.slice_proof(3), 12)
    assert info.value.details["index"] == 3
    with pytest.raises(InvalidSlice):
        verify_slice(blob.data_root, 4, blob.slices[3], blob.slice_proof(3), 12)
    with pytest.raises(InvalidSlice):
        slice_root(b"x" * 100)  # not whole sectors


def test_a_node_checks_its_slices_against_the_roots_and_the_roots_against_the_data_root(
) -> None:
    blob = encode_blob(payload(5_000), k=4, n=12)
    roots = split_roots(blob.roots_bytes, 12)
    assert roots == list(blob.slice_roots)
    slots = [1, 5, 11]
    verify_held_slices(blob.data_root, slots, blob.slices[slots], roots)
    bad = blob.slices[slots].copy()
    bad[1, 300] ^= 1  # slot 5's bytes changed
    with pytest.raises(InvalidSlice) as info:
        verify_held_slices(blob.data_root, slots, bad, roots)
    assert info.value.details["index"] == 5
    # The right rows under other slots, and a root swapped for the bad row's own root.
    with pytest.raises(InvalidSlice, match="slice 2 "):
        verify_held_slices(blob.data_root, [2, 5, 11], blob.slices[slots], roots)
    forged = list(roots)
    forged[5] = slice_root(bad[1])
    with pytest.raises(InvalidSlice, match="do not tree to data root"):
        verify_held_slices(blob.data_root, slots, bad, forged)
    with pytest.raises(InvalidSlice, match="2 slices for 3 slots"):
        verify_held_slices(blob.data_root, slots, blob.slices[[1, 5]], roots)
    with pytest.raises(InvalidSlice) as info:
        verify_held_slices(blob.data_root, [12], blob.slices[[1]], roots)  # no such slot
    assert info.value.details["index"] == 12
    with pytest.raises(InvalidBlob) as info:
        split_roots(blob.roots_bytes[:-1], 12)
    assert info.value.details == {"expected": 384, "got": "383"}


def test_size_limits_name_the_size() -> None:
    check_size(params.MAX_BLOB_BYTES)
    with pytest.raises(BlobTooLarge) as info:
        check_size(params.MAX_BLOB_BYTES + 1)
    assert info.value.details == {"size": 32_505_853, "maximum": 32_505_852}
    with pytest.raises(InvalidBlob):
        encode_blob(b"", 4, 12)
    with pytest.raises(BlobTooLarge):
        encode_blob(b"x" * 1001, 4, 12, max_blob_bytes=1000)
    with pytest.raises(InvalidBlob):
        encode_blob(b"x", 12, 12)


def test_header_round_trip_key_and_batch_root() -> None:
    header = BlobHeader(keccak256(b"root"), 1234, 3, 1, 7)
    assert BlobHeader.decode(header.encode()) == header
    assert header.key == keccak256(header.encode())
    other = BlobHeader(keccak256(b"root"), 1234, 3, 1, 8)
    assert other.key != header.key
    assert batch_root([header, other]) == merkle_root([header.key, other.key])
    with pytest.raises(InvalidBlob):
        BlobHeader.decode(b"\x01\x02")


def test_da_config_errors_name_the_key() -> None:
    from zg_actors.config import ConfigError

    with pytest.raises(ConfigError, match="da.k: must be 1..n-1"):
        load_config().replace(**{"da.k": 96})
    with pytest.raises(ConfigError, match="da.n"):
        load_config().replace(**{"da.n": 300})
