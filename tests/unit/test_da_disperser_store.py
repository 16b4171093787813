"""A disperser's records on a real LMDB store: a blob is recorded with its payload before
its request id is answered, a reopened store finds what it has to resume, a final blob
drops its payload, and a full store refuses new blobs with nothing recorded."""

from __future__ import annotations

import os

import pytest

from zg_actors.da.blob import BlobHeader, encode_blob
from zg_actors.da.dispersal import PendingBlob
from zg_actors.da.disperser_store import DisperserStore
from zg_actors.da.errors import InvalidBlobId, Overloaded, UnknownBlob
from zg_actors.da.params import BlobStatus

K, N = 4, 12


def pending(size: int, quorum_id: int = 0) -> tuple[PendingBlob, bytes]:
    payload = os.urandom(size)
    blob = encode_blob(payload, K, N)
    return PendingBlob(BlobHeader(blob.data_root, size, 2, quorum_id, 1), blob, 1000.0), payload


def test_accepted_blobs_are_recorded_with_their_payload_and_resumed_after_a_reopen(
        tmp_path) -> None:
    store = DisperserStore(tmp_path / "d", 0)
    (first, first_payload), (second, second_payload) = pending(3_000), pending(500, 1)
    store.accept([(first, first_payload), (second, second_payload)])
    store.finish([second], BlobStatus.FINALIZED, "", now=1010.0)
    assert second.status == BlobStatus.FINALIZED
    store.close()

    reopened = DisperserStore(tmp_path / "d", 0)
    assert reopened.unfinished == [first.header.key]
    assert reopened.status_counts == {BlobStatus.PROCESSING: 1, BlobStatus.FINALIZED: 1}
    assert reopened.payload(first.header.key) == first_payload
    assert reopened.payload(second.header.key) is None  # final: nothing left to resume
    assert reopened.record(second.header.key)["finalized_at"] == 1010.0
    assert reopened.status(first.header.key) == {
        "request_id": first.header.key, "status": BlobStatus.PROCESSING, "error": "",
        "data_root": first.header.data_root, "size": 3_000, "epoch": 2, "quorum_id": 0,
        "network_id": 1}
    assert reopened.header(first.header.key) == first.header
    assert reopened.find(second.header.data_root, 2, 1) == second.header.key


def test_a_confirmed_blob_keeps_its_payload_and_a_failed_one_says_why(tmp_path) -> None:
    store = DisperserStore(tmp_path / "d", 0)
    blob, payload = pending(1_000)
    store.accept([(blob, payload)])
    store.finish([blob], BlobStatus.CONFIRMED, "", now=1001.0)
    assert store.payload(blob.header.key) == payload
    store.finish([blob], BlobStatus.FAILED, "certificate not final before the timeout",
                 now=1002.0)
    assert store.status(blob.header.key)["error"] == "certificate not final before the timeout"
    assert store.payload(blob.header.key) is None
    assert store.status_counts == {BlobStatus.PROCESSING: 0, BlobStatus.CONFIRMED: 0,
                                   BlobStatus.FAILED: 1}


def test_unknown_and_malformed_ids_are_refused_by_name(tmp_path) -> None:
    store = DisperserStore(tmp_path / "d", 0)
    with pytest.raises(UnknownBlob, match="0x" + "01" * 32):
        store.status(b"\x01" * 32)
    with pytest.raises(InvalidBlobId):
        store.record(b"\x01" * 5)
    with pytest.raises(UnknownBlob, match="epoch 3 quorum 0") as unknown:
        store.find(b"\x02" * 32, 3, 0)
    assert unknown.value.details["epoch"] == 3


def test_a_full_store_refuses_new_blobs_and_records_nothing(tmp_path) -> None:
    store = DisperserStore(tmp_path / "d", 4, map_mb=1)
    blob, payload = pending(2 * 1024 * 1024)
    with pytest.raises(Overloaded, match="disperser 4's store is full") as full:
        store.accept([(blob, payload)])
    assert full.value.details == {"lmdb_map_mb": 1}
    assert store.status_counts == {} and store.payload(blob.header.key) is None
    with pytest.raises(UnknownBlob):
        store.record(blob.header.key)
