"""Python client of the DA `Disperser` gRPC service (no Ray needed)."""

from __future__ import annotations

from typing import Any

import grpc

from zg_actors.da.params import BlobStatus
from zg_actors.rpc import disperser_pb2 as pb
from zg_actors.rpc import disperser_pb2_grpc as pb_grpc
from zg_actors.rpc.errors import MAX_MESSAGE_BYTES, from_status

DEFAULT_TIMEOUT_S = 120.0
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
           ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]


class DisperserClient:
    """Blocking client; every failure is a typed RpcError (rpc/errors.py)."""

    def __init__(self, address: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(address, options=OPTIONS)
        self.stub = pb_grpc.DisperserStub(self.channel)

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise from_status(exc.code(), exc.details() or "") from None

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the gateway accepts a connection within timeout_s."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            return False
        return True

    def disperse_blob(self, data: bytes) -> tuple[BlobStatus, bytes]:
        """(status, request id) of a new blob; status is PROCESSING."""
        reply = self._call(self.stub.DisperseBlob, pb.DisperseBlobRequest(data=data))
        return BlobStatus(reply.result), reply.request_id

    def get_blob_status(self, request_id: bytes) -> dict[str, Any]:
        reply = self._call(self.stub.GetBlobStatus, pb.BlobStatusRequest(request_id=request_id))
        header = reply.info.blob_header
        return {"request_id": request_id, "status": BlobStatus(reply.status).name,
                "storage_root": header.storage_root, "epoch": header.epoch,
                "quorum_id": header.quorum_id, "size": header.size,
                "network_id": header.network_id, "error": reply.error}

    def retrieve_blob(self, storage_root: bytes, epoch: int, quorum_id: int) -> bytes:
        reply = self._call(self.stub.RetrieveBlob, pb.RetrieveBlobRequest(
            storage_root=storage_root, epoch=epoch, quorum_id=quorum_id))
        return reply.data

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> DisperserClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
