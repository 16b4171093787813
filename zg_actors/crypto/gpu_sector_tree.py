"""0G sector-tree roots on one GPU: keccak-f[1600] per sector, then the tree's levels, in CUDA.

One thread hashes one sector (keccak-256, Ethereum's padding) into a 32-byte
leaf; then one launch per tree level hashes each pair of adjacent nodes, and
the odd last node of a level is carried up unchanged, as in
`crypto.merkle.merkle_levels`. Many rows of equal length (an encoder's k + m
shards) share every launch. Only the 32-byte roots come back to the host.

The CUDA C++ is split in two: KECCAK_SOURCE holds plain functions that also
compile as host C++ (the unit tests build them with g++ and check them against
the CPU's keccak on machines with no GPU), KERNEL_SOURCE the kernels.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

from zg_actors.crypto.keccak import HASH_BYTES
from zg_actors.crypto.merkle import EMPTY_ROOT
from zg_actors.crypto.sector_tree import as_rows
from zg_actors.cuda import reachable_cupy
from zg_actors.errors import InvalidInput, Unavailable

LANE_BYTES = 8  # keccak-f[1600] works on 64-bit lanes, little-endian
HASH_LANES = HASH_BYTES // LANE_BYTES
THREADS_PER_BLOCK = 256

KECCAK_SOURCE = r"""
typedef unsigned long long zg_u64;
#define ZG_RATE_LANES 17  /* keccak-256: 1088-bit rate */

ZG_FN zg_u64 zg_rotl(zg_u64 x, int n) { return (x << n) | (x >> (64 - n)); }

ZG_FN void zg_keccak_f(zg_u64* s) {
    const zg_u64 round_constants[24] = {
        0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
        0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
        0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
        0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
        0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
        0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
        0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
        0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
    const int rho[24] = {1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14,
                         27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44};
    const int pi[24] = {10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4,
                        15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1};
    ZG_UNROLL
    for (int round = 0; round < 24; ++round) {
        zg_u64 c[5];
        ZG_UNROLL
        for (int x = 0; x < 5; ++x) c[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
        ZG_UNROLL
        for (int x = 0; x < 5; ++x) {
            const zg_u64 d = c[(x + 4) % 5] ^ zg_rotl(c[(x + 1) % 5], 1);
            ZG_UNROLL
            for (int y = 0; y < 25; y += 5) s[y + x] ^= d;
        }
        zg_u64 carried = s[1];
        ZG_UNROLL
        for (int i = 0; i < 24; ++i) {
            const zg_u64 next = s[pi[i]];
            s[pi[i]] = zg_rotl(carried, rho[i]);
            carried = next;
        }
        ZG_UNROLL
        for (int y = 0; y < 25; y += 5) {
            zg_u64 row[5];
            ZG_UNROLL
            for (int x = 0; x < 5; ++x) row[x] = s[y + x];
            ZG_UNROLL
            for (int x = 0; x < 5; ++x) s[y + x] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5]);
        }
        s[0] ^= round_constants[round];
    }
}

/* keccak-256 of LANES little-endian 64-bit lanes (8 * LANES bytes) into 4 lanes of digest. */
template <int LANES>
ZG_FN void zg_keccak_lanes(const zg_u64* message, zg_u64* digest) {
    zg_u64 s[25];
    ZG_UNROLL
    for (int i = 0; i < 25; ++i) s[i] = 0;
    ZG_UNROLL
    for (int block = 0; block < LANES / ZG_RATE_LANES; ++block) {
        ZG_UNROLL
        for (int j = 0; j < ZG_RATE_LANES; ++j) s[j] ^= message[block * ZG_RATE_LANES + j];
        zg_keccak_f(s);
    }
    const int rest = LANES % ZG_RATE_LANES;
    ZG_UNROLL
    for (int j = 0; j < rest; ++j) s[j] ^= message[(LANES / ZG_RATE_LANES) * ZG_RATE_LANES + j];
    s[rest] ^= 0x01ULL;                  /* keccak padding: 0x01 ... 0x80 */
    s[ZG_RATE_LANES - 1] ^= 0x8000000000000000ULL;
    zg_keccak_f(s);
    ZG_UNROLL
    for (int i = 0; i < 4; ++i) digest[i] = s[i];
}

/* One parent of a tree level: keccak(left || right), or the odd last node carried up. */
ZG_FN void zg_tree_parent(const zg_u64* level, long long width, long long parent, zg_u64* out) {
    if (2 * parent + 1 < width) {
        zg_keccak_lanes<8>(level + 8 * parent, out);
    } else {
        for (int i = 0; i < 4; ++i) out[i] = level[8 * parent + i];
    }
}
"""

DEVICE_PRELUDE = """
#define ZG_FN __device__ __forceinline__
#define ZG_UNROLL _Pragma("unroll")
"""

KERNEL_SOURCE = r"""
/* Leaves: keccak of each SECTOR_LANES-lane sector of `rows` rows, row_stride bytes apart. */
extern "C" __global__ void sector_leaves(const unsigned char* __restrict__ data,
                                         long long row_stride, int rows, long long sectors,
                                         zg_u64* __restrict__ leaves) {
    const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= rows * sectors) return;
    const long long row = index / sectors, sector = index % sectors;
    const zg_u64* message = reinterpret_cast<const zg_u64*>(
        data + row * row_stride + sector * (SECTOR_LANES * 8));
    zg_keccak_lanes<SECTOR_LANES>(message, leaves + 4 * index);
}

/* One tree level for every row: `width` nodes per row in, (width + 1) / 2 out. */
extern "C" __global__ void tree_level(const zg_u64* __restrict__ level, int rows, long long width,
                                      zg_u64* __restrict__ parents) {
    const long long count = (width + 1) / 2;
    const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= rows * count) return;
    const long long row = index / count, parent = index % count;
    zg_tree_parent(level + 4 * row * width, width, parent, parents + 4 * index);
}
"""


def kernel_source(sector_bytes: int) -> str:
    """The CUDA source for `sector_bytes`-byte sectors (a compile-time constant: the state
    then stays in registers)."""
    return (f"#define SECTOR_LANES {sector_bytes // LANE_BYTES}\n" + DEVICE_PRELUDE
            + KECCAK_SOURCE + KERNEL_SOURCE)


def check_rows(shape: tuple[int, ...], sector_bytes: int) -> tuple[int, int]:
    """(rows, sectors per row) of a rows x length array; raises unless the GPU path can hash
    it: whole sectors of a multiple of 8 bytes, at least one per row."""
    if not isinstance(sector_bytes, int) or sector_bytes < LANE_BYTES or (
            sector_bytes % LANE_BYTES):
        raise InvalidInput(f"GPU sector hashing needs sectors of a multiple of {LANE_BYTES} "
                           f"bytes, got {sector_bytes!r}", sector_bytes=sector_bytes)
    if len(shape) != 2 or shape[1] == 0 or shape[1] % sector_bytes:
        raise InvalidInput(f"rows must be a 2-D array of whole {sector_bytes}-byte sectors, "
                           f"got shape {shape}", shape=shape, sector_bytes=sector_bytes)
    return shape[0], shape[1] // sector_bytes


class CupySectorTree:
    """Sector-tree roots of many rows at once on the current GPU."""

    name = "cupy"

    def __init__(self, cupy: ModuleType) -> None:
        self.cupy = cupy
        self._compiled: dict[int, tuple[Any, Any]] = {}  # {sector bytes: (leaves, level)}

    def _kernels(self, sector_bytes: int) -> tuple[Any, Any]:
        if sector_bytes not in self._compiled:
            module = self.cupy.RawModule(code=kernel_source(sector_bytes),
                                         options=("--std=c++17",))
            self._compiled[sector_bytes] = (module.get_function("sector_leaves"),
                                            module.get_function("tree_level"))
        return self._compiled[sector_bytes]

    def _launch(self, kernel: Any, items: int, args: tuple) -> None:
        kernel((-(-items // THREADS_PER_BLOCK),), (THREADS_PER_BLOCK,), args)

    def device_roots(self, rows: Any, sector_bytes: int) -> Any:
        """The roots of a rows x length uint8 CuPy array as a rows x 32 CuPy array (no copy
        back to the host)."""
        cp = self.cupy
        count, sectors = check_rows(rows.shape, sector_bytes)
        row_stride = rows.strides[0]
        if rows.strides[1] != 1 or row_stride % LANE_BYTES or rows.data.ptr % LANE_BYTES:
            rows = cp.ascontiguousarray(rows)  # 64-bit lane loads need 8-byte alignment
            row_stride = rows.strides[0]
        leaves_kernel, level_kernel = self._kernels(sector_bytes)
        level = cp.empty((count, sectors, HASH_LANES), dtype=cp.uint64)
        self._launch(leaves_kernel, count * sectors,
                     (rows, np.int64(row_stride), np.int32(count), np.int64(sectors), level))
        width = sectors
        while width > 1:
            parents = cp.empty((count, (width + 1) // 2, HASH_LANES), dtype=cp.uint64)
            self._launch(level_kernel, count * ((width + 1) // 2),
                         (level, np.int32(count), np.int64(width), parents))
            level, width = parents, (width + 1) // 2
        return level.reshape(count, HASH_LANES).view(cp.uint8)

    def roots(self, rows: Any, sector_bytes: int) -> list[bytes]:
        """The root of each row's sector tree; rows may be on the host or the device."""
        device_rows = self.cupy.asarray(as_rows(rows))
        if device_rows.shape[1] == 0:
            return [EMPTY_ROOT] * device_rows.shape[0]  # as the CPU's tree of no leaves
        host = self.device_roots(device_rows, sector_bytes).get()
        return [row.tobytes() for row in host]


@functools.cache
def load() -> CupySectorTree:
    """The GPU sector tree, or Unavailable saying why this process cannot use one."""
    return CupySectorTree(reachable_cupy("sector-tree backend 'cupy'", Unavailable))
