"""The canonical erasure code: every installed backend gives the reference's bytes, any k
shards decode, ISA-L's own Cauchy code agrees, and bad requests get typed errors."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings
from hypothesis import strategies as st

from zg_actors import erasure
from zg_actors.erasure import backends, field, lookup
from zg_actors.erasure.errors import (
    InvalidCodeParameters,
    InvalidShardData,
    TooFewShards,
    UnequalShardLengths,
    UnknownBackend,
    UnknownShardIndex,
)
from zg_actors.errors import InvalidInput

INSTALLED = erasure.available_backends()
FAST = [name for name in INSTALLED if name != "reference"]
HAS_PYECLIB = importlib.util.find_spec("pyeclib") is not None


def reference_parity(data: np.ndarray, m: int) -> np.ndarray:
    """Parity straight from the spec's definition, with reedsolo's own field functions."""
    k = len(data)
    parity = np.zeros((m, data.shape[1]), dtype=np.uint8)
    for i in range(m):
        for j in range(k):
            coefficient = reedsolo.gf_inverse((k + i) ^ j)
            for t, byte in enumerate(data[j].tolist()):
                parity[i, t] ^= reedsolo.gf_mul(coefficient, byte)
    return parity


# ---- the field and the matrix ---------------------------------------------------------


def test_product_table_is_reedsolo_multiplication() -> None:
    table = field.mul_table()
    expected = [[reedsolo.gf_mul(a, b) for b in range(256)] for a in range(256)]
    assert table.tolist() == expected
    assert field.inverse_table()[1:].tolist() == [reedsolo.gf_inverse(a) for a in range(1, 256)]


def test_parity_matrix_follows_the_spec() -> None:
    k, m = 10, 4
    matrix = erasure.encoding_matrix(k, m)
    assert matrix.shape == (14, 10)
    assert np.array_equal(matrix[:k], np.eye(k, dtype=np.uint8))
    for i in range(m):
        for j in range(k):
            assert matrix[k + i, j] == reedsolo.gf_inverse((k + i) ^ j)
    # 0x11d with generator 2: 2^-1 = 0x8e, so row 0 of a 1+1 code would be inverse(1) = 1
    assert reedsolo.gf_inverse(2) == 0x8E
    assert erasure.parity_matrix(1, 1).tolist() == [[1]]


@pytest.mark.parametrize("name", INSTALLED)
def test_every_backend_inverts_decoding_submatrices(name: str) -> None:
    backend = erasure.get_backend(name)
    k, m = 8, 5
    rows = [0, 2, 3, 5, 8, 9, 11, 12]  # data rows 1, 4, 6, 7 lost
    submatrix = erasure.encoding_matrix(k, m)[rows]
    inverse = backend.invert(submatrix)
    assert np.array_equal(inverse, field.invert_matrix_reference(submatrix))
    mul = field.mul_table()
    product = np.bitwise_xor.reduce(mul[inverse[:, :, None], submatrix[None, :, :]], axis=1)
    assert np.array_equal(product, np.eye(k, dtype=np.uint8))


def test_singular_matrix_is_refused() -> None:
    singular = np.array([[1, 2], [1, 2]], dtype=np.uint8)
    with pytest.raises(InvalidCodeParameters, match="singular"):
        field.invert_matrix(singular)
    with pytest.raises(InvalidCodeParameters, match="singular"):
        field.invert_matrix_reference(singular)


# ---- encoding: all backends, the same bytes ------------------------------------------


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=1500), k=st.integers(1, 12), m=st.integers(0, 6),
       unit=st.sampled_from([1, 8, 64, 256]))
def test_every_backend_encodes_the_reference_bytes(payload: bytes, k: int, m: int,
                                                   unit: int) -> None:
    expected = erasure.encode(payload, k, m, unit, backend="reference")
    for name in FAST:
        assert np.array_equal(erasure.encode(payload, k, m, unit, backend=name), expected), name


@settings(max_examples=15, deadline=None)
@given(data=st.binary(min_size=1, max_size=600), k=st.integers(1, 6),
       m=st.integers(lookup.NIBBLE_MIN_ROWS, 24))
def test_many_parity_rows_match_the_definition(data: bytes, k: int, m: int) -> None:
    """Large m runs the numpy backend's nibble kernel, also on lengths that are not whole words."""
    columns = -(-len(data) // k)
    matrix = np.frombuffer(data.ljust(k * columns, b"\x07"), dtype=np.uint8).reshape(k, columns)
    expected = reference_parity(matrix, m)
    for name in INSTALLED:
        assert np.array_equal(erasure.encode_parity(matrix, m, backend=name), expected), name


def test_shard_layout_is_the_padded_payload_in_order() -> None:
    payload = bytes(range(256)) * 10 + b"tail"  # 2564 bytes
    shards = erasure.encode(payload, 4, 2)
    assert shards.shape == (6, 768)  # padded to 3072 = a multiple of 4 * 256
    laid_out = shards[:4].tobytes()
    assert laid_out[:len(payload)] == payload
    assert laid_out[len(payload):] == bytes(3072 - len(payload))
    assert erasure.shard_length(len(payload), 4) == 768
    assert erasure.encode(payload, 4, 2, unit=1).shape == (6, 641)
    long = erasure.encode(os.urandom(1 << 20), 4, 2)
    assert long.shape == (6, 1 << 18)
    assert all(row.flags.c_contiguous for row in long)


def test_empty_payload_gives_empty_shards_and_decodes() -> None:
    shards = erasure.encode(b"", 3, 2)
    assert shards.shape == (5, 0)
    assert erasure.decode({1: shards[1], 3: shards[3], 4: shards[4]}, 3, 2, 0) == b""


def test_encode_accepts_bytes_like_and_arrays() -> None:
    payload = os.urandom(1000)
    expected = erasure.encode(payload, 5, 3)
    assert np.array_equal(erasure.encode(bytearray(payload), 5, 3), expected)
    assert np.array_equal(erasure.encode(memoryview(payload), 5, 3), expected)
    assert np.array_equal(erasure.encode(np.frombuffer(payload, np.uint8), 5, 3), expected)


def test_encode_data_keeps_the_callers_layout() -> None:
    data = np.arange(3 * 1001, dtype=np.uint64).astype(np.uint8).reshape(3, 1001)
    shards = erasure.encode_data(data, 2)
    assert np.array_equal(shards[:3], data)
    assert np.array_equal(shards[3:], reference_parity(data, 2))
    assert np.array_equal(erasure.recover_data({0: shards[0], 3: shards[3], 4: shards[4]}, 3, 2),
                          data)


def test_reference_backend_survives_reedsolo_reinitialised_elsewhere() -> None:
    payload = os.urandom(300)
    expected = erasure.encode(payload, 3, 2, backend="numpy")
    reedsolo.init_tables(0x187)  # another library's RSCodec could do this
    try:
        assert np.array_equal(erasure.encode(payload, 3, 2, backend="reference"), expected)
    finally:
        reedsolo.init_tables(field.PRIMITIVE_POLYNOMIAL)


# ---- decoding from any k shards -------------------------------------------------------


def lose(shards: np.ndarray, lost: set[int]) -> dict[int, np.ndarray]:
    return {i: shards[i] for i in range(len(shards)) if i not in lost}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_k_shards_decode_on_every_backend(data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 10), label="k")
    m = data.draw(st.integers(1, 6), label="m")
    payload = data.draw(st.binary(max_size=1200), label="payload")
    lost = data.draw(st.sets(st.integers(0, k + m - 1), max_size=m), label="lost")
    shards = erasure.encode(payload, k, m, unit=16)
    for name in INSTALLED:
        assert erasure.decode(lose(shards, lost), k, m, len(payload), backend=name) == payload


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize(("case", "lost"), [
    ("data only", {0, 3, 7, 9}),
    ("parity only", {10, 11, 12, 13}),
    ("mixed", {1, 5, 11, 13}),
    ("fewer than m", {4}),
    ("none", set()),
])
def test_decode_10_plus_4(name: str, case: str, lost: set[int]) -> None:
    payload = os.urandom(3000 if name == "reference" else 200_000)
    shards = erasure.encode(payload, 10, 4, backend="numpy")
    assert erasure.decode(lose(shards, lost), 10, 4, len(payload), backend=name) == payload


@pytest.mark.parametrize("name", INSTALLED)
def test_decode_with_exactly_m_losses_when_m_exceeds_k(name: str) -> None:
    k, m = 4, 12  # all data and most parity lost: the parity rows carry everything
    payload = os.urandom(2000)
    shards = erasure.encode(payload, k, m)
    lost = {0, 1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15}
    assert len(lost) == m
    assert erasure.decode(lose(shards, lost), k, m, len(payload), backend=name) == payload


def test_decode_accepts_bytes_shards_and_extra_shards() -> None:
    payload = os.urandom(5000)
    shards = erasure.encode(payload, 6, 3)
    as_bytes = {i: shards[i].tobytes() for i in (0, 2, 3, 5, 6, 7, 8)}  # 7 of them; k = 6
    assert erasure.decode(as_bytes, 6, 3, len(payload)) == payload


# ---- ISA-L's own code agrees ----------------------------------------------------------


@pytest.mark.skipif(not HAS_PYECLIB, reason="pyeclib is not installed")
@pytest.mark.parametrize(("k", "m"), [(10, 4), (4, 2), (6, 6)])
def test_isal_parity_equals_pyeclib_isa_l_rs_cauchy(k: int, m: int) -> None:
    """The matrix is ISA-L's gf_gen_cauchy1_matrix: pyeclib's parity fragments hold our bytes."""
    from pyeclib.ec_iface import ECDriver

    driver = ECDriver(k=k, m=m, ec_type="isa_l_rs_cauchy")
    fragments = driver.encode(os.urandom(50_000))
    size = driver.get_metadata(fragments[0], formatted=True)["size"]
    payloads = [np.frombuffer(f[len(f) - size:], dtype=np.uint8) for f in fragments]
    data = np.stack(payloads[:k])
    assert "isal" in INSTALLED
    parity = erasure.encode_parity(data, m, backend="isal")
    assert np.array_equal(parity, np.stack(payloads[k:]))
    for name in FAST:
        assert np.array_equal(erasure.encode_parity(data, m, backend=name), parity), name


# ---- errors name the offending value -------------------------------------------------


@pytest.mark.parametrize(("k", "m", "shown"), [
    (200, 57, "257"), (0, 4, "0"), (-1, 4, "-1"), (4, -2, "-2"), (300, 0, "300")])
def test_bad_parameters_are_typed_errors(k: int, m: int, shown: str) -> None:
    with pytest.raises(InvalidCodeParameters, match=shown) as raised:
        erasure.encode(b"payload", k, m)
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.details["k"] == k and raised.value.details["m"] == m
    with pytest.raises(InvalidCodeParameters):
        erasure.decode({0: b"x"}, k, m, 1)


def test_largest_code_is_allowed() -> None:
    shards = erasure.encode(os.urandom(100), 255, 1, unit=1)
    assert shards.shape == (256, 1)


def test_too_few_shards() -> None:
    shards = erasure.encode(b"some payload", 4, 2)
    with pytest.raises(TooFewShards, match="got 3") as raised:
        erasure.decode(lose(shards, {0, 2, 5}), 4, 2, 12)
    assert raised.value.details == {"have": 3, "need": 4, "indexes": [1, 3, 4]}


def test_unequal_shard_lengths() -> None:
    shards = erasure.encode(b"some payload", 2, 2)
    mixed = {0: shards[0], 1: shards[1][:100], 2: shards[2]}
    with pytest.raises(UnequalShardLengths, match="100") as raised:
        erasure.decode(mixed, 2, 2, 12)
    assert raised.value.details["lengths"] == {0: 256, 1: 100, 2: 256}


@pytest.mark.parametrize("index", [-1, 6, 99, "0", 2.5])
def test_unknown_shard_index(index: object) -> None:
    shards = erasure.encode(b"some payload", 4, 2)
    given_shards = {**lose(shards, {3}), index: shards[3]}
    with pytest.raises(UnknownShardIndex, match=repr(index)) as raised:
        erasure.decode(given_shards, 4, 2, 12)
    assert raised.value.details["index"] == index


def test_bad_payload_length_and_data() -> None:
    shards = erasure.encode(b"some payload", 2, 1)
    with pytest.raises(InvalidCodeParameters, match="513"):
        erasure.decode(lose(shards, set()), 2, 1, 513)
    with pytest.raises(InvalidShardData, match="str"):
        erasure.encode("text is not bytes", 2, 1)
    with pytest.raises(InvalidShardData, match="uint16"):
        erasure.encode(np.zeros(4, dtype=np.uint16), 2, 1)
    with pytest.raises(InvalidShardData, match="k x L"):
        erasure.encode_data(np.zeros(8, dtype=np.uint8), 2)
    with pytest.raises(InvalidCodeParameters, match="unit"):
        erasure.encode(b"x", 2, 1, unit=0)


# ---- backend selection ---------------------------------------------------------------


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert INSTALLED[-2:] == ["numpy", "reference"]
    with pytest.raises(UnknownBackend, match="'nope'"):
        erasure.use("nope")
    monkeypatch.setenv(erasure.ENV_BACKEND, "numpy")
    assert backends.configured_name("isal") == "numpy"
    monkeypatch.delenv(erasure.ENV_BACKEND)
    assert backends.configured_name("isal") == "isal"
    try:
        assert erasure.use("reference").name == "reference"
        assert erasure.backend_name() == "reference"
    finally:
        erasure.use_fastest()
    assert erasure.backend_name() == INSTALLED[0]


@pytest.mark.skipif(backends.is_available("cupy"), reason="this machine has CuPy and a GPU")
def test_gpu_encoder_without_cupy_falls_back_to_the_fastest_cpu_backend() -> None:
    backend, reason = backends.choose_backend("fastest", gpu=True)
    assert backend.name == backends.fastest(gpu=False).name
    assert "CuPy" in reason
    backend, reason = backends.choose_backend("numpy", gpu=True)
    assert (backend.name, reason) == ("numpy", None)
    with pytest.raises(UnknownBackend, match="cupy"):
        erasure.use("cupy")


def test_core_does_not_import_ray() -> None:
    probe = "import sys, zg_actors.erasure as e; e.encode(b'x', 2, 1); print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
