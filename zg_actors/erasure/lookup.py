"""The numpy backend: GF(2^8) products by table lookup, vectorised.

Two kernels, both exact, picked by the number of output rows r:

- `gf_matmul_lookup` (few rows): each product c * d is a
  gather from c's table. numpy's gather costs about the same per element
  whether the element is one byte or two, so it looks up two data bytes at
  once in a 65536-entry uint16 table per coefficient (a "pair table"): half
  the gathers. Data bytes become gather indexes once per chunk and serve all r
  rows; columns go in chunks that bound the scratch memory.
- `gf_matmul_nibbles` (r >= NIBBLE_MIN_ROWS: large m, or many lost rows): per
  chunk, every data row is multiplied by all 16 low-nibble and 16 high-nibble
  constants with shifts and XORs on uint64 words (8 bytes per operation); then
  each output row is one XOR-reduction over 2 of those 32 rows per data row,
  since c * d = (c & 15) * d ^ (c & 240) * d. Building the 32 rows costs about
  60 passes per data row, which pays off once r passes share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zg_actors.erasure import field

PAIR_TABLE_ENTRIES = 1 << 16  # one entry per two-byte value
# Lookup kernel's working set per column chunk. Measured: numpy's per-call overhead
# (~1 us, 2 calls per product row) costs more than cache misses, so chunks are large.
CHUNK_WORKING_BYTES = 2 * 1024 * 1024
MIN_CHUNK_BYTES = 4 * 1024
MAX_CHUNK_BYTES = 256 * 1024
INDEX_BYTES_PER_DATA_BYTE = np.dtype(np.intp).itemsize // 2  # one intp index per two data bytes
NIBBLE_MIN_ROWS = 10  # from this many output rows on, the nibble kernel is faster (measured)
NIBBLE_ROWS_PER_SOURCE = 32  # 16 low-nibble and 16 high-nibble multiples of each data row
NIBBLE_TABLE_BYTES = 16 * 1024 * 1024  # nibble multiples of one chunk: within the L3 cache
NIBBLE_MAX_CHUNK_BYTES = 32 * 1024
WORD_BYTES = 8  # the nibble kernel works on uint64 words

_ONE_PER_BYTE = np.uint64(0x0101010101010101)
_NOT_BIT_ZERO = np.uint64(0xFEFEFEFEFEFEFEFE)
_REDUCTION = np.uint64(field.PRIMITIVE_POLYNOMIAL & 0xFF)  # x^8 folds back to x^4+x^3+x^2+1
_SHIFT_1 = np.uint64(1)
_SHIFT_7 = np.uint64(7)


class ProductTables:
    """GF(2^8) product tables in host memory."""

    def __init__(self) -> None:
        self.single = field.mul_table()
        self._pairs: dict[int, np.ndarray] = {}  # {coefficient: uint16 table of 65536 products}

    def pairs(self, coefficient: int) -> np.ndarray:
        """Products of `coefficient` with both bytes of every uint16, in memory byte order."""
        table = self._pairs.get(coefficient)
        if table is None:
            every_pair = np.arange(PAIR_TABLE_ENTRIES, dtype=np.uint16).view(np.uint8)
            table = self._pairs[coefficient] = (
                field.mul_table()[coefficient][every_pair].view(np.uint16))
        return table


def lookup_chunk_bytes(output_rows: int) -> int:
    """Columns per chunk so that r output rows, indexes and scratch fit CHUNK_WORKING_BYTES."""
    per_column = output_rows + INDEX_BYTES_PER_DATA_BYTE + 1
    chunk = CHUNK_WORKING_BYTES // per_column
    return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, chunk - chunk % 64))


def gf_matmul_lookup(matrix: np.ndarray, sources: Sequence[np.ndarray],
                     outputs: Sequence[np.ndarray], tables: ProductTables,
                     chunk_bytes: int) -> None:
    """outputs[i] = XOR over j of matrix[i, j] * sources[j], bytewise in GF(2^8), by gathers.

    sources and outputs are 1-D uint8 arrays of one length; matrix is r x k uint8.
    """
    coefficients = matrix.tolist()
    if not outputs:
        return
    length = len(outputs[0])
    # Odd lengths (only from callers' own layouts) cannot be viewed as uint16.
    paired = length % 2 == 0
    width, element = (2, np.uint16) if paired else (1, np.uint8)
    chunk = max(width, min(length, chunk_bytes) // width * width)
    indexes = np.empty(chunk // width, dtype=np.intp)
    scratch = np.empty(chunk // width, dtype=element)
    for start in range(0, length, chunk):
        stop = min(length, start + chunk)
        index = indexes[:(stop - start) // width]
        product = scratch[:(stop - start) // width]
        targets = [output[start:stop].view(element) for output in outputs]
        written = [False] * len(outputs)
        for j, source in enumerate(sources):
            data = source[start:stop].view(element)
            indexed = False
            for i, target in enumerate(targets):
                coefficient = coefficients[i][j]
                if coefficient == 0:
                    continue
                if coefficient == 1:
                    term = data
                else:
                    if not indexed:
                        np.copyto(index, data, casting="unsafe")
                        indexed = True
                    table = tables.pairs(coefficient) if paired else tables.single[coefficient]
                    term = product if written[i] else target
                    # numpy buffers `out` when take checks bounds (mode="raise"); indexes
                    # are always in range here.
                    np.take(table, index, out=term, mode="clip")
                    if not written[i]:
                        written[i] = True
                        continue
                if written[i]:
                    np.bitwise_xor(target, term, out=target)
                else:
                    target[...] = term
                    written[i] = True
        for i, target in enumerate(targets):
            if not written[i]:
                target[...] = 0


def _times_x(words: np.ndarray, out: np.ndarray, carry: np.ndarray) -> None:
    """out = x * words, eight GF(2^8) bytes per uint64: shift left, fold bit 8 back in."""
    np.right_shift(words, _SHIFT_7, out=carry)
    np.bitwise_and(carry, _ONE_PER_BYTE, out=carry)
    np.multiply(carry, _REDUCTION, out=carry)  # 0 or 1 per byte: no carries between bytes
    np.left_shift(words, _SHIFT_1, out=out)
    np.bitwise_and(out, _NOT_BIT_ZERO, out=out)
    np.bitwise_xor(out, carry, out=out)


def nibble_chunk_bytes(sources: int) -> int:
    chunk = NIBBLE_TABLE_BYTES // (NIBBLE_ROWS_PER_SOURCE * sources)
    return max(MIN_CHUNK_BYTES, min(NIBBLE_MAX_CHUNK_BYTES, chunk - chunk % 64))


def gf_matmul_nibbles(matrix: np.ndarray, sources: Sequence[np.ndarray],
                      outputs: Sequence[np.ndarray], chunk_bytes: int) -> None:
    """outputs[i] = XOR over j of matrix[i, j] * sources[j], bytewise in GF(2^8), by XORs."""
    rows, k = matrix.shape
    length = len(outputs[0]) if rows else 0
    if not length:
        return
    chunk = min(chunk_bytes, -(-length // WORD_BYTES) * WORD_BYTES)
    words = chunk // WORD_BYTES
    # multiples[j, n] = n * source j for n < 16, (n - 16) * 16 * source j for n >= 16
    multiples = np.zeros((k, NIBBLE_ROWS_PER_SOURCE, words), dtype=np.uint64)
    multiples_bytes = multiples.view(np.uint8)
    flat = multiples.reshape(k * NIBBLE_ROWS_PER_SOURCE, words)
    carry = np.empty((k, words), dtype=np.uint64)
    accumulator = np.empty(words, dtype=np.uint64)
    column = np.arange(k) * NIBBLE_ROWS_PER_SOURCE
    selections = []  # per output row: the rows of `flat` whose XOR it is
    for coefficients in matrix.astype(np.intp):
        low, high = coefficients & 15, coefficients >> 4
        selections.append(np.concatenate([(column + low)[low != 0],
                                          (column + 16 + high)[high != 0]]))
    for start in range(0, length, chunk):
        stop = min(length, start + chunk)
        used = -(-(stop - start) // WORD_BYTES)
        for j, source in enumerate(sources):
            multiples_bytes[j, 1, :stop - start] = source[start:stop]
            multiples_bytes[j, 1, stop - start:] = 0  # a short last chunk: zeros multiply to 0
        part = multiples[:, :, :used]
        for target, base in ((2, 1), (4, 2), (8, 4), (17, 8), (18, 17), (20, 18), (24, 20)):
            _times_x(part[:, base], part[:, target], carry[:, :used])
        for half in (0, 16):  # every nibble value as an XOR of its powers of two
            np.bitwise_xor(part[:, half + 2], part[:, half + 1], out=part[:, half + 3])
            np.bitwise_xor(part[:, half + 4:half + 5], part[:, half + 1:half + 4],
                           out=part[:, half + 5:half + 8])
            np.bitwise_xor(part[:, half + 8:half + 9], part[:, half + 1:half + 8],
                           out=part[:, half + 9:half + 16])
        result = accumulator[:used]
        for output, selection in zip(outputs, selections, strict=True):
            if not len(selection):
                output[start:stop] = 0
                continue
            gathered = flat[selection] if used == words else flat[selection, :used]
            np.bitwise_xor.reduce(gathered, axis=0, out=result)
            output[start:stop] = result.view(np.uint8)[:stop - start]


class NumpyBackend:
    name = "numpy"

    def __init__(self) -> None:
        self.tables = ProductTables()

    def matmul(self, matrix: np.ndarray, sources: Sequence[np.ndarray],
               outputs: Sequence[np.ndarray]) -> None:
        if len(outputs) >= NIBBLE_MIN_ROWS:
            gf_matmul_nibbles(matrix, sources, outputs, nibble_chunk_bytes(len(sources)))
        else:
            gf_matmul_lookup(matrix, sources, outputs, self.tables,
                             lookup_chunk_bytes(len(outputs)))

    def invert(self, matrix: np.ndarray) -> np.ndarray:
        return field.invert_matrix(matrix)


def load() -> NumpyBackend:
    return NumpyBackend()
