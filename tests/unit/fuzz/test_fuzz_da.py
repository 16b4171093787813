"""DA bytes from outside: the Disperser gateway's gRPC requests (proto bytes, then the
request validation and the disperser store lookups behind them), blob headers, DA
certificates, epoch registries, and a disperser's batch of slices at a DA node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from zg_actors.crypto import bls
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.blob import BlobHeader, check_blob_id, check_size
from zg_actors.da.certificate import Batch, DACertificate
from zg_actors.da.disperser_store import DisperserStore
from zg_actors.da.node_store import DANodeStore
from zg_actors.da.params import MAX_BLOB_BYTES
from zg_actors.da.quorum import EpochRegistry, EpochSigner
from zg_actors.errors import ZgError
from zg_actors.rpc import disperser_pb2 as pb
from zg_actors.rpc.errors import MalformedMessage, from_status
from zg_actors.rpc.gateway import _parse_or_refuse

from ..helpers import IDENTITIES
from ..test_da_node_store import MINE, make_batch, roots_of, rows_of, store_at
from .budget import fuzz
from .inputs import any_bytes, any_int, outcome, outside_bytes
from .test_fuzz_rpc import json_values

ROOT = keccak256(b"data root")
HEADERS = [BlobHeader(ROOT, 5_000, 3, 1, 0), BlobHeader(keccak256(b"other"), 1, 0, 0, 2**63)]
REQUESTS = [pb.DisperseBlobRequest(data=b"blob bytes" * 20),
            pb.BlobStatusRequest(request_id=HEADERS[0].key),
            pb.RetrieveBlobRequest(storage_root=ROOT, epoch=3, quorum_id=1),
            pb.RetrieveBlobRequest(storage_root=ROOT, epoch=2**64 - 1, quorum_id=2**64 - 1)]


def _certificate() -> DACertificate:
    batch = Batch(0, 3, 1, tuple(HEADERS[:1]))
    return DACertificate(batch, b"\x07", bls.sign(IDENTITIES[0].bls_secret, batch.sign_bytes))


def _registry() -> EpochRegistry:
    return EpochRegistry(3, keccak256(b"seed"), tuple(
        EpochSigner(i.address, i.bls_pubkey, 2, bls.sign(i.bls_secret, b"epoch"))
        for i in IDENTITIES[:2]))


@fuzz()
@given(outside_bytes([r.SerializeToString() for r in REQUESTS]),
       st.sampled_from([pb.DisperseBlobRequest, pb.BlobStatusRequest, pb.RetrieveBlobRequest]))
def test_gateway_requests_parse_or_are_refused_then_validated(raw: bytes, message: type
                                                              ) -> None:
    request = _parse_or_refuse(message)(raw)
    if isinstance(request, MalformedMessage):
        request.to_dict()
        return
    assert isinstance(request, message)
    if message is pb.DisperseBlobRequest:
        outcome(check_size, len(request.data), MAX_BLOB_BYTES)
    elif message is pb.BlobStatusRequest:
        outcome(check_blob_id, "request_id", request.request_id)
    else:
        outcome(check_blob_id, "storage_root", request.storage_root)


@pytest.fixture(scope="module")
def disperser_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DisperserStore]:
    store = DisperserStore(Path(tmp_path_factory.mktemp("disperser")), 0, map_mb=16)
    yield store
    store.store.close()


@fuzz()
@given(st.data())
def test_the_disperser_answers_a_lookup_or_refuses_it_with_a_typed_error(
        disperser_store: DisperserStore, data: st.DataObject) -> None:
    """What GetBlobStatus and RetrieveBlob ask a disperser: any id, any uint64 epoch and
    quorum (proto3 gives 0..2**64-1)."""
    blob_id = data.draw(st.one_of(any_bytes, st.just(ROOT)))
    uint64 = st.integers(0, 2**64 - 1)
    assert isinstance(outcome(disperser_store.status, blob_id), ZgError)
    assert isinstance(outcome(disperser_store.find, blob_id, data.draw(uint64),
                              data.draw(uint64)), ZgError)


@fuzz()
@given(outside_bytes([h.encode() for h in HEADERS] + [_certificate().encode(),
                                                      _registry().encode()]))
def test_headers_certificates_and_registries_decode_or_are_refused(data: bytes) -> None:
    for decoder in (BlobHeader.decode, DACertificate.decode, EpochRegistry.decode):
        outcome(decoder, data)


def test_headers_certificates_and_registries_round_trip() -> None:
    for header in HEADERS:
        assert BlobHeader.decode(header.encode()) == header
    assert DACertificate.decode(_certificate().encode()) == _certificate()
    assert EpochRegistry.decode(_registry().encode()) == _registry()


@pytest.fixture(scope="module")
def node_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DANodeStore]:
    store = store_at(Path(tmp_path_factory.mktemp("da-node")))
    yield store
    store.store.close()


@fuzz(0.5)
@given(st.data())
def test_a_disperser_batch_is_verified_or_refused_with_a_typed_error(
        node_store: DANodeStore, data: st.DataObject) -> None:
    """store_batch's input, field by field from a valid batch: slots, rows (their shape,
    dtype and bytes), slice roots; headers as bytes (BlobHeader.decode)."""
    batch, blobs = make_batch(seed=data.draw(st.integers(0, 3)))
    slots, rows, roots = list(MINE), rows_of(blobs), roots_of(blobs)
    if data.draw(st.booleans()):
        slots = data.draw(st.lists(any_int, max_size=4))
    if data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(rows) - 1))
        flat = bytearray(rows[index].tobytes())
        raw = data.draw(outside_bytes([bytes(flat)]))
        shape = data.draw(st.sampled_from(["same", "flat", "wide"]))
        row = np.frombuffer(raw, dtype=np.uint8)
        if shape == "same" and len(raw) == len(flat):
            row = row.reshape(rows[index].shape)
        elif shape == "wide" and len(raw) % len(MINE) == 0:
            row = row.reshape(len(MINE), -1)
        rows[index] = row
    if data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(roots) - 1))
        roots[index] = data.draw(outside_bytes([roots[index]]))
    headers = [data.draw(outside_bytes([h.encode()])) if data.draw(st.booleans())
               else h.encode() for h in batch.blobs]
    decoded = [outcome(BlobHeader.decode, h) for h in headers]
    if any(isinstance(h, ZgError) for h in decoded):
        return
    batch = Batch(batch.network_id, batch.epoch, batch.quorum_id, tuple(decoded))
    outcome(node_store.verify_batch, batch, MINE, slots, rows, roots)


@fuzz()
@example(grpc.StatusCode.INVALID_ARGUMENT, "5")  # JSON but not an object: AttributeError
@example(grpc.StatusCode.NOT_FOUND, '{"grpc_code": "X"}')  # a field twice: TypeError
@given(st.sampled_from(list(grpc.StatusCode)), st.one_of(
    st.text(max_size=40), json_values.map(json.dumps), st.dictionaries(
        st.sampled_from(["message", "code", "grpc_code", "field", "length"]), json_values,
        max_size=4).map(json.dumps)))
def test_a_servers_error_details_become_a_typed_error_at_the_client(code: grpc.StatusCode,
                                                                   details: str) -> None:
    """The gateway sends an error's fields as JSON in the status details; the client's
    from_status reads them from whatever the server (or a proxy) sent."""
    error = from_status(code, details)
    assert isinstance(error, ZgError) and str(error)
