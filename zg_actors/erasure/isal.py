"""The isal backend: Intel ISA-L's ec_init_tables + ec_encode_data through ctypes.

ISA-L picks its SIMD kernel (SSE, AVX2, AVX-512, GFNI) at run time. The library
is found, in order: the path in ZG_ISAL_LIBRARY; a system libisal (Debian and
Ubuntu: `apt install libisal2`); the copy bundled in the pyeclib wheel
(pyeclib.libs/libisal-*.so.*). ec_encode_data multiplies by any matrix, so it
serves decoding too, and gf_invert_matrix inverts the decoding submatrix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.metadata
import os
from collections.abc import Sequence

import numpy as np

from zg_actors.erasure import field
from zg_actors.erasure.errors import InvalidCodeParameters, UnknownBackend

LIBRARY_ENV = "ZG_ISAL_LIBRARY"
TABLE_BYTES_PER_COEFFICIENT = 32  # ec_init_tables expands each coefficient to 32 bytes
# ec_encode_data's length is a C int. Otherwise one call covers all columns: measured,
# cutting columns into cache-sized chunks only slowed it down, at every k and m.
MAX_CALL_BYTES = 1 << 30
MAX_TABLE_CACHE = 64  # expanded tables kept per process, keyed by matrix


def find_library() -> str | None:
    """Path (or loader name) of a libisal with the erasure-code API, or None."""
    if os.environ.get(LIBRARY_ENV):
        return os.environ[LIBRARY_ENV]
    system = ctypes.util.find_library("isal")
    if system:
        return system
    try:
        files = importlib.metadata.files("pyeclib") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.startswith("libisal") and ".so" in file.name:
            return str(file.locate())
    return None


class IsalBackend:
    name = "isal"

    def __init__(self, library: ctypes.CDLL, path: str) -> None:
        self.library = library
        self.path = path
        self._tables: dict[tuple[int, int, bytes], np.ndarray] = {}

    def _expanded(self, matrix: np.ndarray) -> np.ndarray:
        rows, k = matrix.shape
        key = (rows, k, matrix.tobytes())
        tables = self._tables.get(key)
        if tables is None:
            tables = np.empty(TABLE_BYTES_PER_COEFFICIENT * rows * k, dtype=np.uint8)
            coefficients = np.ascontiguousarray(matrix, dtype=np.uint8)
            self.library.ec_init_tables(k, rows, coefficients.ctypes.data, tables.ctypes.data)
            if len(self._tables) >= MAX_TABLE_CACHE:
                self._tables.pop(next(iter(self._tables)))
            self._tables[key] = tables
        return tables

    def matmul(self, matrix: np.ndarray, sources: Sequence[np.ndarray],
               outputs: Sequence[np.ndarray]) -> None:
        rows, k = matrix.shape
        if not rows or not len(outputs[0]):
            return
        length = len(outputs[0])
        tables = self._expanded(matrix)
        # ec_encode_data takes arrays of row pointers, so shards need not be stacked.
        source_pointers = np.array([s.ctypes.data for s in sources], dtype=np.uintp)
        output_pointers = np.array([o.ctypes.data for o in outputs], dtype=np.uintp)
        for start in range(0, length, MAX_CALL_BYTES):
            count = min(MAX_CALL_BYTES, length - start)
            moved_sources = source_pointers + np.uintp(start)
            moved_outputs = output_pointers + np.uintp(start)
            self.library.ec_encode_data(count, k, rows, tables.ctypes.data,
                                        moved_sources.ctypes.data, moved_outputs.ctypes.data)

    def invert(self, matrix: np.ndarray) -> np.ndarray:
        n = len(matrix)
        work = np.array(matrix, dtype=np.uint8, order="C", copy=True)  # ISA-L overwrites it
        inverse = np.empty((n, n), dtype=np.uint8)
        if self.library.gf_invert_matrix(work.ctypes.data, inverse.ctypes.data, n) != 0:
            raise InvalidCodeParameters("matrix is singular in GF(2^8)", size=n)
        return inverse


@functools.cache
def load() -> IsalBackend:
    """The isal backend, or UnknownBackend saying why ISA-L cannot be used here."""
    path = find_library()
    if path is None:
        raise UnknownBackend("erasure backend 'isal' needs Intel ISA-L: apt install libisal2, "
                             "or pip install pyeclib (bundles libisal), or set "
                             f"{LIBRARY_ENV}", backend="isal")
    try:
        library = ctypes.CDLL(path)
        library.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_void_p]
        library.ec_init_tables.restype = None
        library.ec_encode_data.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                           ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        library.ec_encode_data.restype = None
        library.gf_invert_matrix.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        library.gf_invert_matrix.restype = ctypes.c_int
    except (OSError, AttributeError) as exc:
        raise UnknownBackend(f"erasure backend 'isal': cannot use {path}: {exc}",
                             backend="isal", library=path) from exc
    backend = IsalBackend(library, path)
    _self_check(backend)
    return backend


def _self_check(backend: IsalBackend) -> None:
    """Refuse a libisal whose parity differs from the canonical code (a wrong build or ABI)."""
    data = np.arange(2 * 64, dtype=np.uint8).reshape(2, 64)
    want = field.parity_matrix(2, 2)
    parity = np.empty((2, 64), dtype=np.uint8)
    backend.matmul(want, list(data), list(parity))
    mul = field.mul_table()
    expected = mul[want[:, 0:1], data[0][None, :]] ^ mul[want[:, 1:2], data[1][None, :]]
    if not np.array_equal(parity, expected):
        raise UnknownBackend(f"erasure backend 'isal': {backend.path} gives wrong parity",
                             backend="isal", library=backend.path)
