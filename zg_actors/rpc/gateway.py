"""Gateway: a Ray actor serving the DA `Disperser` gRPC service on a configurable port.

DisperseBlob and RetrieveBlob go to a disperser actor; typed product errors become
gRPC status codes (rpc/errors.py); request bytes that are not the method's message, and
ids that are not 32 bytes, are INVALID_ARGUMENT before anything reaches a disperser.
GetBlobStatus is answered from a cache that follows each disperser's status feed
(da/status.py): polls cost no Ray call while the feeds are live; ids the cache does not
know go to the dispersers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import grpc
import numpy as np
import ray
from google.protobuf.message import DecodeError

from zg_actors.config import Config, config_from_dict
from zg_actors.da.blob import check_blob_id, check_size
from zg_actors.da.disperser_actor import disperser_name
from zg_actors.da.status import StatusCache
from zg_actors.errors import Unavailable, unwrap
from zg_actors.metrics import GATEWAY_METRICS, Metrics
from zg_actors.placement import control_options
from zg_actors.rpc import disperser_pb2 as pb
from zg_actors.rpc import disperser_pb2_grpc as pb_grpc
from zg_actors.rpc.client import OPTIONS
from zg_actors.rpc.errors import MalformedMessage, error_details, status_code

GATEWAY_NAME = "gateway"
GATEWAY_KIND = "da-grpc"  # its `gateway` tag in the gateway metrics
GROUP_MAX_BLOBS = 32  # DisperseBlob requests waiting together go to a disperser in one call
GROUP_MAX_BYTES = 32 << 20
GROUPS_IN_FLIGHT = 2  # calls per gateway at once; requests arriving meanwhile form the next
FEED_WAIT_S = 2.0  # a status-feed call waits this long for a change (a long poll)
FEED_PAUSE_S = 0.05  # between feed calls: changes of a busy disperser come in groups
FEED_RETRY_S = 1.0  # after a failed feed call (a disperser down or restarting)
log = logging.getLogger(__name__)


class DisperserService(pb_grpc.DisperserServicer):
    def __init__(self, dispersers: int, max_blob_bytes: int) -> None:
        self.dispersers = dispersers
        self.max_blob_bytes = max_blob_bytes
        self._turn = 0
        self._handles: dict[int, Any] = {}
        self._waiting: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._groups_in_flight = 0
        self.cache = StatusCache(dispersers)
        self.metrics = Metrics(GATEWAY_METRICS, gateway=GATEWAY_KIND)
        self._followers: list[asyncio.Task] = []

    def follow_feeds(self) -> None:
        """Start following every disperser's status feed (from inside the event loop)."""
        if not self._followers:
            loop = asyncio.get_running_loop()
            self._followers = [loop.create_task(self._follow(i))
                               for i in range(self.dispersers)]

    def stop_following(self) -> None:
        for task in self._followers:
            task.cancel()
        self._followers = []

    async def _follow(self, index: int) -> None:
        while True:
            try:
                answer = await self._call(index, "status_changes", self.cache.position(index),
                                          FEED_WAIT_S)
            except Exception as exc:  # not running yet, restarting, or gone
                log.debug("gateway: status feed of disperser %d: %s", index, exc)
                self.cache.lost(index)
                await asyncio.sleep(FEED_RETRY_S)
                continue
            self.cache.apply(index, answer)
            await asyncio.sleep(FEED_PAUSE_S)

    def _handle(self, index: int) -> Any:
        """The disperser's handle, looked up once (a blocking GCS call) and kept: Ray
        restarts an actor behind the same handle; a handle that fails is looked up again."""
        if index not in self._handles:
            try:
                self._handles[index] = ray.get_actor(disperser_name(index))
            except ValueError as exc:
                raise Unavailable(f"disperser {index} is not running",
                                  disperser=index) from exc
        return self._handles[index]

    async def _call(self, index: int, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle(index), method).remote(*args)
        except ray.exceptions.RayActorError:
            self._handles.pop(index, None)  # gone for good (killed, not restarting)
            raise

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        inner = unwrap(exc)
        if isinstance(inner, ray.exceptions.RayActorError):  # ActorUnavailableError too
            # A disperser restarting (or gone): the client should retry, not give up.
            inner = Unavailable(f"the disperser is restarting or gone, retry: {inner}",
                                cause=type(inner).__name__)
        await context.abort(status_code(inner), error_details(inner))

    async def _first_that_knows(self, method: str, *args: Any) -> Any:
        """Ask each disperser in turn: a request id belongs to the one that made it."""
        last: BaseException | None = None
        for index in range(self.dispersers):
            try:
                return await self._call(index, method, *args)
            except Exception as exc:
                last = exc
        assert last is not None
        raise last

    async def DisperseBlob(self, request: pb.DisperseBlobRequest,
                           context: grpc.aio.ServicerContext) -> pb.DisperseBlobReply:
        try:
            check_size(len(request.data), self.max_blob_bytes)  # before it crosses Ray
            result = await self._disperse(np.frombuffer(request.data, dtype=np.uint8))
        except Exception as exc:
            await self._fail(context, exc)
        self.cache.learn(result)
        return pb.DisperseBlobReply(result=result["status"], request_id=result["request_id"])

    async def _disperse(self, blob: np.ndarray) -> dict:
        """Group commit: requests that arrive while earlier groups are with a disperser
        wait and go together (Disperser.disperse_many), so a stream of small blobs costs
        one Ray call and one LMDB sync per group, not per blob."""
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append((blob, answer))
        self._send_groups()
        return await answer

    def _send_groups(self) -> None:
        while self._waiting and self._groups_in_flight < GROUPS_IN_FLIGHT:
            group, size = [], 0
            while self._waiting and len(group) < GROUP_MAX_BLOBS and (
                    not group or size + len(self._waiting[0][0]) <= GROUP_MAX_BYTES):
                group.append(self._waiting.popleft())
                size += len(group[-1][0])
            self._groups_in_flight += 1
            asyncio.ensure_future(self._send_group(group))

    async def _send_group(self, group: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        self._turn += 1
        try:
            answers = await self._call(self._turn % self.dispersers, "disperse_many",
                                       [blob for blob, _ in group])
        except Exception as exc:  # the whole call failed: every request gets the error
            answers = [exc] * len(group)
        finally:
            self._groups_in_flight -= 1
        for (_, waiter), answer in zip(group, answers, strict=True):
            if waiter.done():  # the client went away
                continue
            if isinstance(answer, BaseException):
                waiter.set_exception(answer)
            else:
                waiter.set_result(answer)
        self._send_groups()

    async def GetBlobStatus(self, request: pb.BlobStatusRequest,
                            context: grpc.aio.ServicerContext) -> pb.BlobStatusReply:
        try:
            check_blob_id("request_id", request.request_id)  # before a cache or store lookup
        except Exception as exc:
            await self._fail(context, exc)
        status = self.cache.get(request.request_id)
        if status is None:
            try:
                status = await self._first_that_knows("status", request.request_id)
            except Exception as exc:
                await self._fail(context, exc)
            self.cache.learn(status)
        header = pb.BlobHeader(storage_root=status["data_root"], epoch=status["epoch"],
                               quorum_id=status["quorum_id"], size=status["size"],
                               network_id=status["network_id"])
        return pb.BlobStatusReply(status=status["status"],
                                  info=pb.BlobInfo(blob_header=header), error=status["error"])

    async def RetrieveBlob(self, request: pb.RetrieveBlobRequest,
                           context: grpc.aio.ServicerContext) -> pb.RetrieveBlobReply:
        try:
            check_blob_id("storage_root", request.storage_root)
            key = await self._first_that_knows("find", request.storage_root, request.epoch,
                                               request.quorum_id)
            data = await self._first_that_knows("retrieve", key)
        except Exception as exc:
            await self._fail(context, exc)
        return pb.RetrieveBlobReply(data=data.tobytes())


def _parse_or_refuse(message: Any) -> Any:
    """The method's request deserializer: bytes that are not a `message` become a
    MalformedMessage instead of an exception, which gRPC would answer as UNKNOWN with
    the parser's internals."""
    def parse(raw: bytes) -> Any:
        try:
            return message.FromString(raw)
        except DecodeError as exc:
            return MalformedMessage(f"request is not a valid {message.DESCRIPTOR.full_name} "
                                    f"({len(raw)} bytes): {str(exc)[:80]}",
                                    message_type=message.DESCRIPTOR.full_name, length=len(raw))
    return parse


def _refusing_malformed(method: Any, name: str, metrics: Metrics) -> Any:
    """`method`, answering a MalformedMessage request with its error (INVALID_ARGUMENT);
    every call counted and timed in `metrics` under `name`, with its error code."""
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        answered = False
        try:
            if isinstance(request, MalformedMessage):
                await context.abort(status_code(request), error_details(request))
            reply = await method(request, context)
            answered = True
            return reply
        finally:
            metrics.inc("zg_gateway_requests", method=name)
            metrics.observe("zg_gateway_request_seconds", time.perf_counter() - started,
                            method=name)
            if not answered:  # aborted with a code, or raised: gRPC answers UNKNOWN
                code = context.code()
                metrics.inc("zg_gateway_errors", method=name,
                            code=grpc.StatusCode.UNKNOWN.name if code is None else code.name)
    return handle


def add_disperser_service(service: DisperserService, server: grpc.aio.Server) -> None:
    """Serve `service` as the `Disperser` of disperser.proto, with malformed requests
    answered INVALID_ARGUMENT (the generated add_DisperserServicer_to_server parses with
    FromString, whose DecodeError reaches the client as UNKNOWN)."""
    descriptor = pb.DESCRIPTOR.services_by_name["Disperser"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            _refusing_malformed(getattr(service, method.name), method.name, service.metrics),
            request_deserializer=_parse_or_refuse(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString)
        for method in descriptor.methods}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(descriptor.full_name, handlers),))
    server.add_registered_method_handlers(descriptor.full_name, handlers)


@ray.remote(max_restarts=-1, max_task_retries=0)
class Gateway:
    """Serves gRPC on `da.gateway_port` (0: a free port) on every interface of its node."""

    def __init__(self, config_dict: dict) -> None:
        self.config = config_from_dict(config_dict)
        self.server: grpc.aio.Server | None = None
        self.service: DisperserService | None = None
        self.port = 0

    async def start(self) -> dict:
        if self.server is None:
            self.server = grpc.aio.server(options=OPTIONS)
            self.service = DisperserService(self.config.da.dispersers,
                                            self.config.da.max_blob_bytes)
            self.service.follow_feeds()
            add_disperser_service(self.service, self.server)
            self.port = self.server.add_insecure_port(f"[::]:{self.config.da.gateway_port}")
            await self.server.start()
            log.info("gateway serving the DA Disperser service on port %d", self.port)
        return await self.endpoint()

    async def endpoint(self) -> dict:
        """Where it listens (port 0: not started)."""
        return {"port": self.port, "host": ray.util.get_node_ip_address()}

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=1.0)
            self.server = None
        if self.service is not None:
            self.service.stop_following()
            self.service = None


def deploy_gateway(config: Config, detached: bool = False) -> tuple[Any, dict]:
    """Start (or find) the named gateway actor; returns it and where it listens."""
    lifetime = {"lifetime": "detached"} if detached else {}
    gateway = Gateway.options(name=GATEWAY_NAME, num_cpus=config.da.gateway_num_cpus,
                              get_if_exists=True, **lifetime, **control_options()).remote(
        config.to_dict())
    return gateway, ray.get(gateway.start.remote(), timeout=60)
