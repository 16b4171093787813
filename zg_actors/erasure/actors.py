"""EncoderActor and EncoderPool: the erasure code as Ray actors, on GPUs when the cluster has them.

EncoderActor is stateless: it encodes and decodes with the backend chosen in
its own process (CuPy on a GPU actor, else the fastest CPU backend there).
EncoderPool is a plain class that storage and DA create in a driver or inside
another actor: it starts one actor per GPU (num_gpus=1) when the cluster has
GPUs, CPU actors otherwise, bounds the work in flight (callers wait, nothing is
dropped) and offers a blocking and an asyncio API. Payloads and shards travel
as numpy uint8 arrays, which Ray's object store hands over without copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayTaskError

from zg_actors.config import CodecConfig
from zg_actors.erasure import backends, code
from zg_actors.erasure.backends import Backend
from zg_actors.erasure.code import SECTOR_BYTES, BytesLike
from zg_actors.erasure.errors import UnknownBackend
from zg_actors.erasure.field import check_parameters
from zg_actors.errors import Unavailable, ZgError

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 120.0  # actors that cannot be placed in this time mean missing resources
GPU_BACKENDS = (backends.FASTEST, "cupy")  # requested backends that put encoders on GPUs


@ray.remote
class EncoderActor:
    """Encodes and decodes with one backend; holds nothing between calls."""

    def __init__(self, requested: str, gpu: bool) -> None:
        self.requested = requested
        self.gpu = gpu
        self.error: UnknownBackend | None = None
        self.fallback_reason: str | None = None
        try:
            self.backend, self.fallback_reason = backends.choose_backend(requested, gpu)
        except UnknownBackend as exc:  # raised from each call, so callers get it typed
            self.error = exc

    def _ready(self) -> Backend:
        if self.error is not None:
            raise self.error
        return self.backend

    def describe(self) -> dict[str, Any]:
        context = ray.get_runtime_context()
        return {"backend": self._ready().name, "requested": self.requested, "gpu": self.gpu,
                "gpu_ids": [str(i) for i in ray.get_gpu_ids()],
                "node_id": context.get_node_id(), "fallback_reason": self.fallback_reason}

    # Contiguous results: Ray stores those zero-copy; staggered rows would be pickled.
    def encode(self, payload: np.ndarray, k: int, m: int, unit: int) -> np.ndarray:
        return np.ascontiguousarray(code.encode(payload, k, m, unit, backend=self._ready()))

    def encode_many(self, payloads: list[np.ndarray], k: int, m: int,
                    unit: int) -> list[np.ndarray]:
        """encode for several small payloads in one call: one round trip, not one each."""
        return [self.encode(payload, k, m, unit) for payload in payloads]

    def encode_many_with_roots(self, payloads: list[np.ndarray], k: int, m: int,
                               unit: int) -> list[tuple[np.ndarray, list[bytes], bytes]]:
        """encode_many, each result with the root of the 0G tree over each shard's
        `unit`-byte sectors and the 0G tree's root over those (a DA blob's slice roots
        and data root): the hashing, which costs more than the code, then runs in this
        process instead of the caller's, on the GPU when the actor encodes there."""
        out = []
        for payload in payloads:
            shards, roots, root = code.encode_with_roots(payload, k, m, unit,
                                                         backend=self._ready())
            out.append((np.ascontiguousarray(shards), roots, root))
        return out

    def encode_data(self, data: np.ndarray, m: int) -> np.ndarray:
        return np.ascontiguousarray(code.encode_data(data, m, backend=self._ready()))

    def decode(self, shards_by_index: dict[int, np.ndarray], k: int, m: int,
               length: int) -> np.ndarray:
        payload = code.decode(shards_by_index, k, m, length, backend=self._ready())
        return np.frombuffer(payload, dtype=np.uint8)  # an array goes back without a copy


def _own_error(exc: BaseException) -> BaseException:
    """The product's typed error inside a Ray task error, if that is what the actor raised."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(exc, RayTaskError) and isinstance(cause, ZgError) else exc


def _retrieve(future: asyncio.Future) -> None:
    # The waiter only signals capacity; the caller that owns the ref sees its error.
    if not future.cancelled():
        future.exception()


class EncoderPool:
    """Encoder actors behind one bounded queue; see the module docstring."""

    def __init__(self, codec: CodecConfig | None = None) -> None:
        codec = codec or CodecConfig()
        codec.validate("codec")
        self.requested = backends.configured_name(codec.backend)
        self.max_in_flight = codec.max_in_flight
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.uses_gpus = gpus > 0 and self.requested in GPU_BACKENDS
        if self.uses_gpus:
            options = [{"num_gpus": 1, "num_cpus": codec.encoder_num_cpus}] * gpus
        else:
            options = [{"num_cpus": codec.encoder_num_cpus}] * codec.cpu_encoders
        self.actors = [EncoderActor.options(**o).remote(self.requested, self.uses_gpus)
                       for o in options]
        try:
            self.encoders: list[dict[str, Any]] = ray.get(
                [actor.describe.remote() for actor in self.actors], timeout=READY_TIMEOUT_S)
        except GetTimeoutError as exc:
            self.shutdown()
            raise Unavailable(f"{len(options)} encoder actor(s) needing {options[0]} each were "
                              f"not placed within {READY_TIMEOUT_S:.0f} s",
                              resources=options[0], actors=len(options)) from exc
        except RayTaskError as exc:
            self.shutdown()
            raise _own_error(exc) from None
        self.warnings: list[str] = []
        fallen_back = [e for e in self.encoders if e["fallback_reason"]]
        if fallen_back:
            # One warning per pool, however many GPU actors share the cause.
            message = (f"{len(fallen_back)} of {len(self.encoders)} encoder actor(s) meant for "
                       f"CuPy on a GPU run the CPU backend '{fallen_back[0]['backend']}' "
                       f"instead: {fallen_back[0]['fallback_reason']}")
            self.warnings.append(message)
            log.warning(message)
        self._in_flight: dict[Any, int] = {}  # {ObjectRef: index of the actor running it}

    # ---- placement and back-pressure ---------------------------------------------------
    def _forget_finished(self) -> None:
        if self._in_flight:
            refs = list(self._in_flight)
            finished, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in finished:
                self._in_flight.pop(ref, None)

    def _wait_for_room(self) -> None:
        self._forget_finished()
        while len(self._in_flight) >= self.max_in_flight:
            finished, _ = ray.wait(list(self._in_flight), num_returns=1)
            for ref in finished:
                self._in_flight.pop(ref, None)

    async def _wait_for_room_async(self) -> None:
        self._forget_finished()
        while len(self._in_flight) >= self.max_in_flight:
            waiters = [asyncio.wrap_future(ref.future()) for ref in self._in_flight]
            for waiter in waiters:
                waiter.add_done_callback(_retrieve)
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            self._forget_finished()

    def _least_busy(self) -> int:
        busy = [0] * len(self.actors)
        for index in self._in_flight.values():
            busy[index] += 1
        return min(range(len(self.actors)), key=busy.__getitem__)

    def _send(self, method: str, *args: Any) -> Any:
        index = self._least_busy()
        ref = getattr(self.actors[index], method).remote(*args)
        self._in_flight[ref] = index
        return ref

    @property
    def in_flight(self) -> int:
        self._forget_finished()
        return len(self._in_flight)

    # ---- requests ----------------------------------------------------------------------
    def _encode_args(self, payload: BytesLike, k: int, m: int, unit: int) -> tuple:
        check_parameters(k, m)  # a bad request fails here, before a round trip
        code.check_unit(unit)
        return code.as_byte_array(payload, "payload"), k, m, unit

    def _decode_args(self, shards_by_index: Mapping[int, BytesLike], k: int, m: int,
                     length: int) -> tuple:
        shards, size = code.check_shards(shards_by_index, k, m)  # fail before a round trip
        code.check_payload_length(length, k, size)
        return shards, k, m, length

    def submit_encode(self, payload: BytesLike, k: int, m: int,
                      unit: int = SECTOR_BYTES) -> Any:
        """An ObjectRef to the (k + m) x L shards; waits first while the pool is full."""
        args = self._encode_args(payload, k, m, unit)
        self._wait_for_room()
        return self._send("encode", *args)

    def submit_encode_data(self, data: np.ndarray, m: int) -> Any:
        """An ObjectRef to all k + m shards of a caller's own k x L data matrix."""
        check_parameters(getattr(data, "shape", (0,))[0], m)
        self._wait_for_room()
        return self._send("encode_data", data, m)

    def submit_decode(self, shards_by_index: Mapping[int, BytesLike], k: int, m: int,
                      length: int) -> Any:
        """An ObjectRef to the payload as a uint8 array; waits first while the pool is full."""
        args = self._decode_args(shards_by_index, k, m, length)
        self._wait_for_room()
        return self._send("decode", *args)

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        """ray.get that raises the codec's own typed error, not Ray's wrapper."""
        try:
            return ray.get(ref, timeout=timeout)
        except RayTaskError as exc:
            raise _own_error(exc) from None
        finally:
            self._in_flight.pop(ref, None)  # don't pin a fetched result in the object store

    def encode(self, payload: BytesLike, k: int, m: int, unit: int = SECTOR_BYTES) -> np.ndarray:
        """The (k + m) x L shards of payload, computed on an encoder actor."""
        return self.get(self.submit_encode(payload, k, m, unit))

    def encode_data(self, data: np.ndarray, m: int) -> np.ndarray:
        return self.get(self.submit_encode_data(data, m))

    def decode(self, shards_by_index: Mapping[int, BytesLike], k: int, m: int,
               length: int) -> bytes:
        """The payload from any k shards, computed on an encoder actor."""
        return self.get(self.submit_decode(shards_by_index, k, m, length)).tobytes()

    async def _call_async(self, method: str, *args: Any) -> Any:
        """One call on the least busy encoder once the pool has room; waiting never blocks
        the caller's event loop; the codec's typed errors come back as themselves."""
        await self._wait_for_room_async()
        ref = self._send(method, *args)
        try:
            return await ref
        except RayTaskError as exc:
            raise _own_error(exc) from None
        finally:
            self._in_flight.pop(ref, None)

    async def encode_async(self, payload: BytesLike, k: int, m: int,
                           unit: int = SECTOR_BYTES) -> np.ndarray:
        """encode for asyncio callers (async actors)."""
        return await self._call_async("encode", *self._encode_args(payload, k, m, unit))

    async def encode_many_async(self, payloads: list[BytesLike], k: int, m: int,
                                unit: int = SECTOR_BYTES) -> list[np.ndarray]:
        """encode_async for several payloads in one call to one encoder (small blobs,
        whose round trip would cost more than their encoding); none: no call."""
        return await self._encode_many_async("encode_many", payloads, k, m, unit)

    async def _encode_many_async(self, method: str, payloads: list[BytesLike], k: int,
                                 m: int, unit: int) -> list:
        if not payloads:
            return []
        arrays = [self._encode_args(payload, k, m, unit)[0] for payload in payloads]
        return await self._call_async(method, arrays, k, m, unit)

    async def encode_many_with_roots_async(self, payloads: list[BytesLike], k: int, m: int,
                                           unit: int = SECTOR_BYTES
                                           ) -> list[tuple[np.ndarray, list[bytes], bytes]]:
        """encode_many_async with each shard's sector-tree root and the tree root over
        those, hashed on the encoder; none: no call."""
        return await self._encode_many_async("encode_many_with_roots", payloads, k, m, unit)

    async def decode_async(self, shards_by_index: Mapping[int, BytesLike], k: int, m: int,
                           length: int) -> bytes:
        args = self._decode_args(shards_by_index, k, m, length)
        return (await self._call_async("decode", *args)).tobytes()

    # ---- lifecycle ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"gpu": self.uses_gpus, "requested": self.requested,
                "encoders": self.encoders,
                "max_in_flight": self.max_in_flight, "in_flight": self.in_flight,
                "warnings": list(self.warnings)}

    def shutdown(self) -> None:
        """Kill the pool's actors; work still in flight fails."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        self._in_flight = {}

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
