"""GF(2^8) with the primitive polynomial 0x11d, from reedsolo's tables, and the code's matrices.

reedsolo is the readable truth: `gf_mul` and `gf_inverse` below are its own
functions. The numpy tables are derived from the same log/exp tables and are
what the fast backends look up; the unit tests check every entry against
reedsolo.
"""

from __future__ import annotations

import functools

import numpy as np
import reedsolo

from zg_actors.erasure.errors import InvalidCodeParameters

PRIMITIVE_POLYNOMIAL = 0x11D  # x^8 + x^4 + x^3 + x^2 + 1
GENERATOR = 2
FIELD_BITS = 8
FIELD_SIZE = 1 << FIELD_BITS  # elements of GF(2^8)
MAX_SHARDS = FIELD_SIZE  # k + m: parity row i needs k + i < 256 to stay a distinct field element

_LOG, _EXP, _ = reedsolo.init_tables(PRIMITIVE_POLYNOMIAL, GENERATOR, FIELD_BITS)
_EXP_SNAPSHOT = bytes(_EXP)


def ensure_reedsolo_field() -> None:
    """Point reedsolo's global tables back at 0x11d if other code re-initialised them.

    reedsolo keeps one field per process in module globals; an RSCodec built with
    another polynomial elsewhere would silently change what gf_mul computes.
    """
    if bytes(reedsolo.gf_exp) != _EXP_SNAPSHOT:
        reedsolo.init_tables(PRIMITIVE_POLYNOMIAL, GENERATOR, FIELD_BITS)


def gf_mul(a: int, b: int) -> int:
    return reedsolo.gf_mul(a, b)


def gf_inverse(a: int) -> int:
    return reedsolo.gf_inverse(a)


@functools.cache
def log_exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """reedsolo's tables: log[a] for a != 0 (log[0] is a placeholder) and exp[i] for
    0 <= i < 510, so that exp[log[a] + log[b]] == gf_mul(a, b) for nonzero a and b."""
    log = np.frombuffer(bytes(_LOG), dtype=np.uint8).astype(np.intp)
    exp = np.frombuffer(bytes(_EXP), dtype=np.uint8)
    log.flags.writeable = False
    return log, exp


@functools.cache
def mul_table() -> np.ndarray:
    """The full 256 x 256 product table: mul_table()[a, b] == gf_mul(a, b)."""
    log, exp = log_exp_tables()
    table = exp[log[:, None] + log[None, :]]
    table[0, :] = 0  # log(0) is undefined; reedsolo's table holds a placeholder there
    table[:, 0] = 0
    table.flags.writeable = False
    return table


@functools.cache
def inverse_table() -> np.ndarray:
    """inverse_table()[a] == gf_inverse(a) for a != 0; entry 0 is 0 (0 has no inverse)."""
    table = np.zeros(FIELD_SIZE, dtype=np.uint8)
    table[1:] = [gf_inverse(a) for a in range(1, FIELD_SIZE)]
    table.flags.writeable = False
    return table


def check_parameters(k: int, m: int) -> None:
    """Raise unless (k, m) defines a code: k >= 1 data shards, m >= 0 parity, k + m <= 256."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidCodeParameters(f"k (data shards) must be an integer >= 1, got {k!r}",
                                    k=k, m=m)
    if not isinstance(m, int) or isinstance(m, bool) or m < 0:
        raise InvalidCodeParameters(f"m (parity shards) must be an integer >= 0, got {m!r}",
                                    k=k, m=m)
    if k + m > MAX_SHARDS:
        raise InvalidCodeParameters(
            f"k + m must be <= {MAX_SHARDS} in GF(2^8), got k={k} + m={m} = {k + m}",
            k=k, m=m, shards=k + m)


@functools.lru_cache(maxsize=64)
def parity_matrix(k: int, m: int) -> np.ndarray:
    """The m x k Cauchy rows: row i, column j holds gf_inverse((k + i) XOR j).

    This is ISA-L's gf_gen_cauchy1_matrix below its identity, so ISA-L's
    ec_encode_data gives the same parity; every square submatrix of a Cauchy
    matrix is invertible, which makes any k shards enough to decode.
    """
    check_parameters(k, m)
    rows = np.array([[gf_inverse((k + i) ^ j) for j in range(k)] for i in range(m)],
                    dtype=np.uint8).reshape(m, k)
    rows.flags.writeable = False
    return rows


@functools.lru_cache(maxsize=64)
def encoding_matrix(k: int, m: int) -> np.ndarray:
    """The (k + m) x k systematic matrix: the identity for data rows, then the parity rows."""
    matrix = np.concatenate([np.eye(k, dtype=np.uint8), parity_matrix(k, m)])
    matrix.flags.writeable = False
    return matrix


def invert_matrix_reference(matrix: np.ndarray) -> np.ndarray:
    """Gauss-Jordan inversion in GF(2^8) with reedsolo's gf_mul, one element at a time."""
    ensure_reedsolo_field()
    n = len(matrix)
    a = [[int(x) for x in row] for row in matrix]
    inv = [[int(r == c) for c in range(n)] for r in range(n)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            raise InvalidCodeParameters("matrix is singular in GF(2^8)", column=col)
        a[col], a[pivot] = a[pivot], a[col]
        inv[col], inv[pivot] = inv[pivot], inv[col]
        scale = gf_inverse(a[col][col])
        a[col] = [gf_mul(scale, x) for x in a[col]]
        inv[col] = [gf_mul(scale, x) for x in inv[col]]
        for r in range(n):
            factor = a[r][col]
            if r == col or factor == 0:
                continue
            a[r] = [x ^ gf_mul(factor, y) for x, y in zip(a[r], a[col], strict=True)]
            inv[r] = [x ^ gf_mul(factor, y) for x, y in zip(inv[r], inv[col], strict=True)]
    return np.array(inv, dtype=np.uint8).reshape(n, n)


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    """Gauss-Jordan inversion in GF(2^8), one numpy row operation per pivot."""
    mul, inverse = mul_table(), inverse_table()
    n = len(matrix)
    a = np.array(matrix, dtype=np.uint8, copy=True)
    inv = np.eye(n, dtype=np.uint8)
    for col in range(n):
        nonzero = np.flatnonzero(a[col:, col])
        if not len(nonzero):
            raise InvalidCodeParameters("matrix is singular in GF(2^8)", column=col)
        pivot = col + int(nonzero[0])
        if pivot != col:
            a[[col, pivot]] = a[[pivot, col]]
            inv[[col, pivot]] = inv[[pivot, col]]
        scale = mul[inverse[a[col, col]]]
        a[col] = scale[a[col]]
        inv[col] = scale[inv[col]]
        factors = a[:, col].copy()
        factors[col] = 0  # the pivot row itself stays
        a ^= mul[factors[:, None], a[col][None, :]]
        inv ^= mul[factors[:, None], inv[col][None, :]]
    return inv
