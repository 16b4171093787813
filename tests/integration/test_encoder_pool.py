"""The encoder pool on the shared local Ray cluster, which declares one logical GPU:
GPU placement, the CPU fallback without CuPy, round trips, back-pressure, async use."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
import ray

from zg_actors import erasure
from zg_actors.config import CodecConfig
from zg_actors.crypto.merkle import merkle_root
from zg_actors.da.blob import slice_root
from zg_actors.erasure import backends
from zg_actors.erasure.actors import EncoderPool
from zg_actors.erasure.errors import TooFewShards, UnknownShardIndex

pytestmark = pytest.mark.integration
CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None


def gpus_free_within(timeout_s: float) -> float:
    """The cluster's free GPUs once they reach 0 or the timeout passes (resources update lazily)."""
    deadline = time.time() + timeout_s
    while (free := ray.available_resources().get("GPU", 0)) and time.time() < deadline:
        time.sleep(0.2)
    return free


def lose(shards: np.ndarray, lost: set[int]) -> dict[int, np.ndarray]:
    return {i: shards[i] for i in range(len(shards)) if i not in lost}


@pytest.fixture
def gpu_pool(ray_session: None, caplog: pytest.LogCaptureFixture,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[EncoderPool]:
    monkeypatch.delenv(backends.ENV_BACKEND, raising=False)
    with caplog.at_level(logging.WARNING, logger="zg_actors.erasure.actors"):
        pool = EncoderPool(CodecConfig(max_in_flight=2))
    yield pool
    pool.shutdown()  # the Ray session is shared with other tests


@pytest.mark.skipif(CUPY_INSTALLED, reason="CuPy is installed: no fallback to observe")
def test_gpu_actor_without_cupy_encodes_on_cpu_with_one_warning(
        gpu_pool: EncoderPool, caplog: pytest.LogCaptureFixture) -> None:
    described = gpu_pool.describe()
    assert described["gpu"] is True
    assert len(described["encoders"]) == 1  # one actor per GPU; the session declares one
    encoder = described["encoders"][0]
    assert encoder["gpu"] is True
    assert encoder["gpu_ids"] == ["0"]  # Ray gave the actor the GPU
    assert encoder["backend"] == backends.fastest(gpu=False).name
    assert "CuPy is not installed" in encoder["fallback_reason"]
    assert len(gpu_pool.warnings) == 1
    assert "CPU backend" in gpu_pool.warnings[0] and "CuPy" in gpu_pool.warnings[0]
    logged = [r for r in caplog.get_records("setup") if "CuPy" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING
    assert gpus_free_within(10) == 0  # the pool's actor holds the session's one GPU


def test_pool_round_trips_payloads(gpu_pool: EncoderPool) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 123)
    shards = gpu_pool.encode(payload, 10, 4)
    assert shards.dtype == np.uint8 and shards.shape == (14, 314_624)
    assert np.array_equal(shards, erasure.encode(payload, 10, 4, backend="numpy"))
    for lost in ({0, 4, 7, 9}, {10, 11, 12, 13}, {2, 5, 11, 13}):
        assert gpu_pool.decode(lose(shards, lost), 10, 4, len(payload)) == payload
    data = np.frombuffer(os.urandom(3 * 4096), dtype=np.uint8).reshape(3, 4096)
    assert np.array_equal(gpu_pool.encode_data(data, 2), erasure.encode_data(data, 2))


def test_pool_bounds_work_in_flight_and_drops_nothing(gpu_pool: EncoderPool) -> None:
    payloads = [os.urandom(200_000 + i) for i in range(6)]
    refs = []
    for payload in payloads:
        refs.append(gpu_pool.submit_encode(payload, 4, 2))
        assert gpu_pool.in_flight <= gpu_pool.max_in_flight == 2
    for payload, shards in zip(payloads, ray.get(refs), strict=True):
        assert np.array_equal(shards, erasure.encode(payload, 4, 2))


def test_pool_async_api(gpu_pool: EncoderPool) -> None:
    payloads = [os.urandom(100_000 + i) for i in range(5)]

    async def round_trips() -> list[bytes]:
        encoded = await asyncio.gather(*(gpu_pool.encode_async(p, 5, 3) for p in payloads))
        return await asyncio.gather(*(gpu_pool.decode_async(lose(s, {0, 1, 6}), 5, 3, len(p))
                                      for p, s in zip(payloads, encoded, strict=True)))

    assert asyncio.run(round_trips()) == payloads
    # Several payloads in one call: the same shards as one call each.
    together = asyncio.run(gpu_pool.encode_many_async(payloads, 5, 3))
    assert len(together) == len(payloads)
    for payload, shards in zip(payloads, together, strict=True):
        assert np.array_equal(shards, erasure.encode(payload, 5, 3))
    # With each shard's sector-tree root (DA slice roots), hashed on the encoder.
    rooted = asyncio.run(gpu_pool.encode_many_with_roots_async(payloads[:2], 5, 3))
    for payload, (shards, roots, root) in zip(payloads[:2], rooted, strict=True):
        assert np.array_equal(shards, erasure.encode(payload, 5, 3))
        assert roots == [slice_root(row) for row in shards]
        assert root == merkle_root(roots)
    assert asyncio.run(gpu_pool.encode_many_with_roots_async([], 5, 3)) == []
    assert gpu_pool.in_flight == 0


def test_pool_raises_the_codecs_typed_errors(gpu_pool: EncoderPool) -> None:
    shards = gpu_pool.encode(b"payload", 4, 2)
    with pytest.raises(TooFewShards, match="got 2"):
        gpu_pool.decode(lose(shards, {0, 1, 2, 3}), 4, 2, 7)
    with pytest.raises(UnknownShardIndex, match="9"):
        gpu_pool.decode({**lose(shards, {5}), 9: shards[5]}, 4, 2, 7)
    # a bad request inside the actor comes back as the same typed error
    bad = {i: shards[i][:10] if i == 1 else shards[i] for i in range(4)}
    with pytest.raises(erasure.UnequalShardLengths):
        gpu_pool.get(gpu_pool.actors[0].decode.remote(bad, 4, 2, 7))


def test_cpu_pool_when_a_cpu_backend_is_configured(ray_session: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.ENV_BACKEND, raising=False)
    pool = EncoderPool(CodecConfig(backend="numpy", cpu_encoders=2, encoder_num_cpus=0.25))
    try:
        described = pool.describe()
        assert described["gpu"] is False and described["warnings"] == []
        assert [(e["backend"], e["gpu_ids"]) for e in described["encoders"]] == \
            [("numpy", []), ("numpy", [])]
        payload = os.urandom(500_000)
        refs = [pool.submit_encode(payload, 6, 3) for _ in range(4)]
        results = ray.get(refs)
        assert all(np.array_equal(r, results[0]) for r in results)
        assert pool.decode(lose(results[0], {0, 3, 8}), 6, 3, len(payload)) == payload
    finally:
        pool.shutdown()
