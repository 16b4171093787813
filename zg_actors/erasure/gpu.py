"""The cupy backend: one CUDA kernel (CuPy RawKernel) for the GF(2^8) matrix multiply, on one GPU.

Each thread takes 16 bytes (one 128-bit load) of every source row in turn,
looks up their logarithms once, and for each output row adds the
coefficient's logarithm and looks the product up in an exp table; products
are XORed into registers and each output row is written once. The log and exp
tables (1.3 KiB) live in shared memory. Zero is given the logarithm
LOG_OF_ZERO, far enough past the field's largest sum of two logarithms (508)
that any sum involving it lands in the exp table's run of zeros: no branch
for zero coefficients or zero data bytes. Output rows go in groups of
ROWS_PER_PASS held in registers; sources are read once per group, so 10 + 4
reads each source once.

CuPy is imported only here, and only when it is installed: a CPU node never
pays for it. Host inputs are copied to the device once per call and the results
copied back; callers that already hold device arrays pass them and get device
results (no copies), which is where the GPU's own speed shows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from zg_actors.cuda import reachable_cupy
from zg_actors.erasure import field
from zg_actors.erasure.errors import UnknownBackend

LOG_OF_ZERO = 512  # > 2 * 254, so log(0) + anything indexes the exp table's zeros
EXP_TABLE_ENTRIES = 2 * LOG_OF_ZERO + 1  # the largest index is log(0) + log(0)
VECTOR_BYTES = 16  # one uint4 load per thread and source row
ROWS_PER_PASS = 4  # output rows accumulated in registers at once (must match the kernel)
THREADS_PER_BLOCK = 256
BLOCKS_PER_SM = 8  # grid-stride loop: enough blocks to fill each SM, few table loads
POINTER_ARRAYS_KEPT = 256  # row-address arrays kept on the device (a few hundred bytes each)

KERNEL_SOURCE = f"""
#define LOG_OF_ZERO {LOG_OF_ZERO}
#define EXP_TABLE_ENTRIES {EXP_TABLE_ENTRIES}
#define ROWS_PER_PASS {ROWS_PER_PASS}
""" + r"""
__device__ __forceinline__ void load_tables(unsigned char* exp_s, unsigned short* log_s,
                                            const unsigned char* exp_g,
                                            const unsigned short* log_g) {
    for (int i = threadIdx.x; i < EXP_TABLE_ENTRIES; i += blockDim.x) exp_s[i] = exp_g[i];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) log_s[i] = log_g[i];
    __syncthreads();
}

__device__ __forceinline__ unsigned int products4(const unsigned char* exp_s, unsigned int lc,
                                                  const unsigned short* lg) {
    return (unsigned int)exp_s[lc + lg[0]] | ((unsigned int)exp_s[lc + lg[1]] << 8)
         | ((unsigned int)exp_s[lc + lg[2]] << 16) | ((unsigned int)exp_s[lc + lg[3]] << 24);
}

__device__ __forceinline__ void logs4(const unsigned short* log_s, unsigned int word,
                                      unsigned short* lg) {
    lg[0] = log_s[word & 0xff];
    lg[1] = log_s[(word >> 8) & 0xff];
    lg[2] = log_s[(word >> 16) & 0xff];
    lg[3] = log_s[word >> 24];
}

// outputs[i][v] = XOR_j matrix[i][j] * sources[j][v] over 16-byte vectors v < vectors.
extern "C" __global__ void gf_matmul_vectors(
        const unsigned long long* __restrict__ sources,
        const unsigned long long* __restrict__ outputs,
        const unsigned short* __restrict__ log_coefficients, int k, int rows,
        long long vectors, const unsigned char* __restrict__ exp_g,
        const unsigned short* __restrict__ log_g) {
    __shared__ unsigned char exp_s[EXP_TABLE_ENTRIES + 15];
    __shared__ unsigned short log_s[256];
    load_tables(exp_s, log_s, exp_g, log_g);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v < vectors; v += stride) {
        for (int first = 0; first < rows; first += ROWS_PER_PASS) {
            uint4 acc[ROWS_PER_PASS];
            #pragma unroll
            for (int r = 0; r < ROWS_PER_PASS; ++r) acc[r] = make_uint4(0, 0, 0, 0);
            for (int j = 0; j < k; ++j) {
                const uint4 d = __ldg(reinterpret_cast<const uint4*>(sources[j]) + v);
                unsigned short lg[16];
                logs4(log_s, d.x, lg);
                logs4(log_s, d.y, lg + 4);
                logs4(log_s, d.z, lg + 8);
                logs4(log_s, d.w, lg + 12);
                #pragma unroll
                for (int r = 0; r < ROWS_PER_PASS; ++r) {
                    if (first + r < rows) {
                        const unsigned int lc = __ldg(log_coefficients + (first + r) * k + j);
                        acc[r].x ^= products4(exp_s, lc, lg);
                        acc[r].y ^= products4(exp_s, lc, lg + 4);
                        acc[r].z ^= products4(exp_s, lc, lg + 8);
                        acc[r].w ^= products4(exp_s, lc, lg + 12);
                    }
                }
            }
            #pragma unroll
            for (int r = 0; r < ROWS_PER_PASS; ++r) {
                if (first + r < rows) reinterpret_cast<uint4*>(outputs[first + r])[v] = acc[r];
            }
        }
    }
}

// The same product one byte per thread, for bytes first <= b < length: the tail after the
// last whole vector, or whole rows that are not 16-byte aligned.
extern "C" __global__ void gf_matmul_bytes(
        const unsigned long long* __restrict__ sources,
        const unsigned long long* __restrict__ outputs,
        const unsigned short* __restrict__ log_coefficients, int k, int rows,
        long long first, long long length, const unsigned char* __restrict__ exp_g,
        const unsigned short* __restrict__ log_g) {
    __shared__ unsigned char exp_s[EXP_TABLE_ENTRIES + 15];
    __shared__ unsigned short log_s[256];
    load_tables(exp_s, log_s, exp_g, log_g);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long b = first + (long long)blockIdx.x * blockDim.x + threadIdx.x; b < length;
         b += stride) {
        for (int r = 0; r < rows; ++r) {
            unsigned char acc = 0;
            for (int j = 0; j < k; ++j) {
                const unsigned char d = reinterpret_cast<const unsigned char*>(sources[j])[b];
                acc ^= exp_s[log_coefficients[r * k + j] + log_s[d]];
            }
            reinterpret_cast<unsigned char*>(outputs[r])[b] = acc;
        }
    }
}
"""


@functools.cache
def kernel_tables() -> tuple[np.ndarray, np.ndarray]:
    """The kernel's log table (uint16, log(0) = LOG_OF_ZERO) and exp table (uint8, zeros from
    index 510 on): exp[log[a] + log[b]] == a * b in GF(2^8) for every a and b."""
    log, exp = field.log_exp_tables()
    log_table = log.astype(np.uint16)
    log_table[0] = LOG_OF_ZERO
    exp_table = np.zeros(EXP_TABLE_ENTRIES, dtype=np.uint8)
    exp_table[:2 * (field.FIELD_SIZE - 1)] = exp[:2 * (field.FIELD_SIZE - 1)]
    log_table.flags.writeable = False
    exp_table.flags.writeable = False
    return log_table, exp_table


def log_coefficients(matrix: np.ndarray) -> np.ndarray:
    """The matrix's entries as the kernel reads them: their logarithms, LOG_OF_ZERO for 0."""
    return np.ascontiguousarray(kernel_tables()[0][np.asarray(matrix, dtype=np.uint8)])


class CupyBackend:
    name = "cupy"

    def __init__(self, cupy: ModuleType) -> None:
        self.cupy = cupy
        module = cupy.RawModule(code=KERNEL_SOURCE, options=("--std=c++17",))
        self.vectors_kernel = module.get_function("gf_matmul_vectors")
        self.bytes_kernel = module.get_function("gf_matmul_bytes")
        log_table, exp_table = kernel_tables()
        self.log_table = cupy.asarray(log_table)
        self.exp_table = cupy.asarray(exp_table)
        device = cupy.cuda.Device()
        self.max_blocks = BLOCKS_PER_SM * device.attributes["MultiProcessorCount"]
        self._coefficients: dict[bytes, Any] = {}  # {matrix bytes and shape: device logs}
        self._pointer_arrays: dict[tuple[int, ...], Any] = {}  # {addresses: device copy}

    def _device_coefficients(self, matrix: np.ndarray) -> Any:
        matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
        key = matrix.tobytes() + bytes(str(matrix.shape), "ascii")
        table = self._coefficients.get(key)
        if table is None:
            table = self._coefficients[key] = self.cupy.asarray(log_coefficients(matrix))
        return table

    def _pointers(self, rows: Sequence[Any]) -> Any:
        """The rows' device addresses as a device array (kept: the same rows come again)."""
        key = tuple(row.data.ptr for row in rows)
        pointers = self._pointer_arrays.get(key)
        if pointers is None:
            if len(self._pointer_arrays) >= POINTER_ARRAYS_KEPT:
                self._pointer_arrays.clear()
            pointers = self._pointer_arrays[key] = self.cupy.asarray(
                np.array(key, dtype=np.uint64))
        return pointers

    def _grid(self, items: int) -> int:
        return max(1, min(self.max_blocks, -(-items // THREADS_PER_BLOCK)))

    def matmul_device(self, matrix: np.ndarray, sources: Sequence[Any],
                      outputs: Sequence[Any]) -> None:
        """matmul on contiguous 1-D uint8 CuPy arrays already on this GPU (no copies)."""
        rows, k = matrix.shape
        length = len(outputs[0])
        coefficients = self._device_coefficients(matrix)
        source_ptrs, output_ptrs = self._pointers(sources), self._pointers(outputs)
        aligned = all(row.data.ptr % VECTOR_BYTES == 0 for row in (*sources, *outputs))
        vectors = length // VECTOR_BYTES if aligned else 0
        if vectors:
            self.vectors_kernel((self._grid(vectors),), (THREADS_PER_BLOCK,),
                                (source_ptrs, output_ptrs, coefficients, np.int32(k),
                                 np.int32(rows), np.int64(vectors), self.exp_table,
                                 self.log_table))
        tail = length - vectors * VECTOR_BYTES
        if tail:
            self.bytes_kernel((self._grid(tail),), (THREADS_PER_BLOCK,),
                              (source_ptrs, output_ptrs, coefficients, np.int32(k),
                               np.int32(rows), np.int64(vectors * VECTOR_BYTES),
                               np.int64(length), self.exp_table, self.log_table))

    def matmul(self, matrix: np.ndarray, sources: Sequence[Any], outputs: Sequence[Any]) -> None:
        cp = self.cupy
        if not outputs or not len(outputs[0]):
            return
        on_device = all(isinstance(output, cp.ndarray) for output in outputs)
        device_sources = [cp.ascontiguousarray(cp.asarray(source)) for source in sources]
        if on_device and all(output.flags.c_contiguous for output in outputs):
            self.matmul_device(matrix, device_sources, outputs)
            return
        length = len(outputs[0])
        padded = -(-length // VECTOR_BYTES) * VECTOR_BYTES  # every row 16-byte aligned
        device_outputs = cp.empty((len(outputs), padded), dtype=cp.uint8)[:, :length]
        self.matmul_device(matrix, device_sources, list(device_outputs))
        rows = device_outputs if on_device else device_outputs.get()
        for output, row in zip(outputs, rows, strict=True):
            output[...] = row

    def invert(self, matrix: np.ndarray) -> np.ndarray:
        return field.invert_matrix(matrix)  # k x k on the host: tiny next to the data


@functools.cache
def load() -> CupyBackend:
    """The cupy backend, or UnknownBackend saying why this process cannot use a GPU."""
    return CupyBackend(reachable_cupy("erasure backend 'cupy'", UnknownBackend))
