"""The gRPC gateway's refusals, over a real gRPC server and raw channel (no Ray): bad
request bytes and ids that cannot name a blob get INVALID_ARGUMENT with a typed error,
before anything reaches a disperser."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from zg_actors.da.blob import QUOTED_PREFIX_BYTES, check_blob_id
from zg_actors.da.errors import InvalidBlobId
from zg_actors.rpc import disperser_pb2 as pb
from zg_actors.rpc.client import OPTIONS
from zg_actors.rpc.gateway import DisperserService, add_disperser_service

MIB = 1024 * 1024


class Recorded:
    """Stands in for the service's Metrics: what it was told, as (call, name, value, tags)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, dict]] = []

    def inc(self, name: str, value: float = 1, **tags: object) -> None:
        self.calls.append(("inc", name, value, tags))

    def observe(self, name: str, value: float, **tags: object) -> None:
        self.calls.append(("observe", name, value, tags))


async def _call_raw(method: str, payloads: list[bytes]) -> tuple[list, DisperserService]:
    """Send each payload as the raw request bytes of `method`; the (code, details) of
    each answer, and the service (to check that nothing reached a disperser)."""
    server = grpc.aio.server(options=OPTIONS)
    service = DisperserService(dispersers=1, max_blob_bytes=1024)
    service.metrics = Recorded()
    add_disperser_service(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    answers = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as channel:
            call = channel.unary_unary(f"/zg.disperser.Disperser/{method}")  # bytes as they are
            for payload in payloads:
                try:
                    await call(payload, timeout=10)
                    answers.append((grpc.StatusCode.OK, ""))
                except grpc.aio.AioRpcError as exc:
                    answers.append((exc.code(), exc.details()))
    finally:
        await server.stop(None)
    return answers, service


def test_garbage_or_truncated_protobuf_is_invalid_argument() -> None:
    whole = pb.DisperseBlobRequest(data=b"x" * 100).SerializeToString()
    answers, service = asyncio.run(_call_raw("DisperseBlob", [b"\xff\xff\xff\xff",
                                                              whole[:50]]))
    for code, details in answers:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        error = json.loads(details)
        assert error["error"] == "MalformedMessage"
        assert error["message"].startswith("request is not a valid zg.disperser.")
    assert [json.loads(d)["length"] for _, d in answers] == [4, 50]
    assert not service._handles and not service._waiting  # no disperser was asked


def test_every_call_is_counted_by_method_and_errors_by_code() -> None:
    raw = pb.BlobStatusRequest(request_id=b"\x01" * 31).SerializeToString()
    _, service = asyncio.run(_call_raw("GetBlobStatus", [raw, b"\xff\xff"]))
    calls = service.metrics.calls
    method = {"method": "GetBlobStatus"}
    assert [c for c in calls if c[0] == "inc"] == [
        ("inc", "zg_gateway_requests", 1, method),
        ("inc", "zg_gateway_errors", 1, {**method, "code": "INVALID_ARGUMENT"})] * 2
    seconds = [c for c in calls if c[1] == "zg_gateway_request_seconds"]
    assert len(seconds) == 2 and all(c[3] == method and c[2] >= 0 for c in seconds)


@pytest.mark.parametrize("request_id", [b"", b"\x07" * MIB, b"\x01" * 31])
def test_get_blob_status_refuses_ids_of_the_wrong_length(request_id: bytes) -> None:
    raw = pb.BlobStatusRequest(request_id=request_id).SerializeToString()
    [(code, details)], service = asyncio.run(_call_raw("GetBlobStatus", [raw]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    error = json.loads(details)
    assert error["error"] == "InvalidBlobId" and error["length"] == len(request_id)
    assert error["prefix"] == "0x" + request_id[:QUOTED_PREFIX_BYTES].hex()
    assert len(details) < 300  # the id is not echoed back
    assert not service._handles  # no disperser was asked


def test_retrieve_blob_refuses_a_storage_root_of_the_wrong_length() -> None:
    raw = pb.RetrieveBlobRequest(storage_root=b"\x02" * 40).SerializeToString()
    [(code, details)], _ = asyncio.run(_call_raw("RetrieveBlob", [raw]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert json.loads(details)["field"] == "storage_root"


def test_blob_ids_are_32_byte_hashes() -> None:
    check_blob_id("request_id", b"\x00" * 32)
    with pytest.raises(InvalidBlobId, match="got 0 bytes$"):
        check_blob_id("request_id", b"")
    with pytest.raises(InvalidBlobId, match="got 1048576 bytes starting 0x0707070707070707"):
        check_blob_id("request_id", b"\x07" * MIB)
