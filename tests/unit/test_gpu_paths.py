"""The GPU paths' logic on a machine without a GPU.

The keccak and tree functions of the sector-tree kernel are plain C++ and are
compiled here with g++ and checked against the CPU's keccak and tree; the
GF(2^8) kernel's log/exp tables are checked against every product. The kernels
themselves run in scripts/gpu_check.py on a GPU.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

from zg_actors.crypto import gpu_sector_tree, sector_tree
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import (
    EMPTY_ROOT,
    merkle_levels,
    merkle_root,
    sector_hashes,
    sector_tree_root,
    sector_tree_roots,
)
from zg_actors.erasure import code, field, gpu
from zg_actors.errors import InvalidInput, Unavailable

HOST_PRELUDE = "#define ZG_FN static inline\n#define ZG_UNROLL\n"
LANE_COUNTS = (1, 4, 8, 15, 16, 17, 18, 32, 34, 35)  # around the 17-lane rate, and 256 bytes
HOST_EXPORTS = "".join(
    f'extern "C" void keccak_lanes_{n}(const zg_u64* m, zg_u64* d) '
    f"{{ zg_keccak_lanes<{n}>(m, d); }}\n" for n in LANE_COUNTS) + (
    'extern "C" void tree_parent(const zg_u64* level, long long width, long long parent, '
    "zg_u64* out) { zg_tree_parent(level, width, parent, out); }\n")


@pytest.fixture(scope="module")
def host_keccak(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    folder = tmp_path_factory.mktemp("kernel")
    source = folder / "keccak.cpp"
    source.write_text(HOST_PRELUDE + gpu_sector_tree.KECCAK_SOURCE + HOST_EXPORTS)
    library = folder / "keccak.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-std=c++17", str(source), "-o",
                    str(library)], check=True, capture_output=True)
    return ctypes.CDLL(str(library))


def host_hash(library: ctypes.CDLL, message: bytes) -> bytes:
    lanes = len(message) // 8
    digest = (ctypes.c_uint64 * 4)()
    getattr(library, f"keccak_lanes_{lanes}")(ctypes.c_char_p(message), digest)
    return bytes(digest)


@pytest.mark.parametrize("lanes", LANE_COUNTS)
def test_the_kernels_keccak_is_ethereums_keccak_256(host_keccak: ctypes.CDLL,
                                                   lanes: int) -> None:
    for seed in range(3):
        message = np.random.default_rng(seed).bytes(8 * lanes)
        assert host_hash(host_keccak, message) == keccak256(message)
    assert host_hash(host_keccak, bytes(8 * lanes)) == keccak256(bytes(8 * lanes))


@pytest.mark.parametrize("leaves", [1, 2, 3, 5, 6, 7, 16, 33])
def test_the_kernels_tree_levels_match_the_cpu_tree(host_keccak: ctypes.CDLL,
                                                    leaves: int) -> None:
    rng = np.random.default_rng(leaves)
    level = [rng.bytes(32) for _ in range(leaves)]
    expected = merkle_levels(level)
    for cpu_level in expected[1:]:
        width = len(level)
        packed = (ctypes.c_uint64 * (4 * width)).from_buffer_copy(b"".join(level))
        parents = []
        for parent in range((width + 1) // 2):
            out = (ctypes.c_uint64 * 4)()
            host_keccak.tree_parent(packed, ctypes.c_longlong(width),
                                    ctypes.c_longlong(parent), out)
            parents.append(bytes(out))
        assert parents == cpu_level
        level = parents


def test_the_gf_kernels_tables_give_every_product() -> None:
    log, exp = gpu.kernel_tables()
    every = np.arange(field.FIELD_SIZE)
    products = exp[log[every][:, None].astype(np.intp) + log[every][None, :]]
    assert np.array_equal(products, field.mul_table())
    assert len(exp) == gpu.EXP_TABLE_ENTRIES and log[0] == gpu.LOG_OF_ZERO


def test_log_coefficients_are_what_the_kernel_adds() -> None:
    matrix = field.parity_matrix(10, 4)
    logs = gpu.log_coefficients(matrix)
    _, exp = gpu.kernel_tables()
    assert logs.dtype == np.uint16 and logs.shape == (4, 10)
    assert np.array_equal(exp[logs.astype(np.intp)], matrix)  # exp(log c + log 1) == c
    assert gpu.log_coefficients(np.zeros((1, 2), dtype=np.uint8)).tolist() == [[512, 512]]


def test_sector_tree_roots_are_each_rows_root() -> None:
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 256, size=(5, 7 * 256), dtype=np.uint8)
    roots = sector_tree_roots(rows, 256, backend="cpu")
    assert roots == [merkle_root(sector_hashes(row.tobytes(), 256)) for row in rows]
    assert sector_tree_root(rows[2].tobytes(), 256) == roots[2]
    assert sector_tree_root(b"", 256) == EMPTY_ROOT


def test_sector_tree_backend_choice_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(sector_tree.resolve("fastest"), sector_tree.CpuSectorTree):
        pytest.skip("this machine has a GPU")
    with pytest.raises(Unavailable, match="sector-tree backend 'cupy'"):
        sector_tree.get_backend("cupy")
    with pytest.raises(InvalidInput, match="unknown sector-tree backend 'tpu'"):
        sector_tree.get_backend("tpu")
    monkeypatch.setenv(sector_tree.ENV_BACKEND, "cpu")
    assert sector_tree.resolve().name == "cpu"


def test_a_backend_that_cannot_load_fails_alike_every_time() -> None:
    """sector_tree_root resolves its backend on every call: "fastest" is decided once, and
    the stored reason a backend cannot load is raised without a growing traceback."""
    assert sector_tree.resolve("fastest") is sector_tree.resolve("fastest")
    if sector_tree.resolve("fastest").name == "cupy":
        pytest.skip("this machine has a GPU")
    depths = []
    for _ in range(3):
        with pytest.raises(Unavailable) as caught:
            sector_tree.get_backend("cupy")
        depths.append(len(traceback.extract_tb(caught.value.__traceback__)))
    assert depths[0] == depths[1] == depths[2], depths


def test_gpu_rows_are_checked_before_any_launch() -> None:
    assert gpu_sector_tree.check_rows((3, 1024), 256) == (3, 4)
    with pytest.raises(InvalidInput, match="multiple of 8 bytes"):
        gpu_sector_tree.check_rows((3, 1000), 100)
    with pytest.raises(InvalidInput, match="whole 256-byte sectors"):
        gpu_sector_tree.check_rows((3, 1000), 256)
    assert "#define SECTOR_LANES 32" in gpu_sector_tree.kernel_source(256)


def test_encode_with_roots_roots_every_shard() -> None:
    payload = os.urandom(50_000)
    shards, roots, root = code.encode_with_roots(payload, 4, 2, 256, backend="numpy")
    assert np.array_equal(shards, code.encode(payload, 4, 2, 256, backend="numpy"))
    assert roots == [sector_tree_root(row.tobytes(), 256, backend="cpu") for row in shards]
    assert root == merkle_root(roots)


def test_gpu_check_runs_its_cpu_anchor_without_a_gpu(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "zg_actors.gpu_check", "--cpu-only",
                             "--tree-mib", "1", "--json", str(report_path)],
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    assert "sector-tree roots of 1 MiB: cpu one core" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["trees"]["bytes"] == 1 << 20 and report["trees"]["cpu_gb_s"] > 0
