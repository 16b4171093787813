import threading

import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from zg_actors.crypto import bls, encoding
from zg_actors.crypto.accounts import Account, parse_address, recover_address, to_checksum
from zg_actors.crypto.keccak import KECCAK_BACKEND, keccak256
from zg_actors.crypto.merkle import (
    EMPTY_ROOT,
    MerkleProof,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from zg_actors.errors import InvalidInput, InvalidProof, InvalidSignature

# ---- keccak ---------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "digest"), [
    (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    (b"The quick brown fox jumps over the lazy dog",
     "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"),
])
def test_keccak_known_vectors(data: bytes, digest: str) -> None:
    assert keccak256(data).hex() == digest


def test_keccak_backends_agree() -> None:
    from Crypto.Hash import keccak

    data = bytes(range(256)) * 3
    assert keccak256(data) == keccak.new(digest_bits=256, data=data).digest()
    assert KECCAK_BACKEND in ("pysha3", "pycryptodome")


# ---- canonical encoding --------------------------------------------------------------

values = st.recursive(
    st.one_of(st.binary(max_size=80), st.integers(min_value=0, max_value=2**256)),
    lambda children: st.lists(children, max_size=6), max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(values)
def test_encoding_matches_pyrlp_and_round_trips(value: object) -> None:
    encoded = encoding.encode(value)
    assert encoded == rlp.encode(value)
    decoded = encoding.decode(encoded)
    assert encoding.encode(decoded) == encoded


def test_encoding_is_canonical_and_typed() -> None:
    assert encoding.encode(0) == b"\x80"
    assert encoding.encode("zg") == encoding.encode(b"zg")
    assert encoding.encode([True, False]) == encoding.encode([1, 0])
    with pytest.raises(encoding.EncodingError, match="negative"):
        encoding.encode(-1)
    with pytest.raises(encoding.EncodingError, match="no canonical encoding"):
        encoding.encode(1.5)


@pytest.mark.parametrize("bad", [b"\x81\x05", b"\xb8\x01a", b"\x82a", b"\xc2\x01", b"\x01\x02"])
def test_decoding_rejects_non_canonical_input(bad: bytes) -> None:
    with pytest.raises(encoding.EncodingError):
        encoding.decode(bad)


def test_as_int_rejects_leading_zero() -> None:
    with pytest.raises(encoding.EncodingError, match="leading zero"):
        encoding.as_int(b"\x00\x01")


# ---- Merkle ----------------------------------------------------------------------------

def _leaves(n: int) -> list[bytes]:
    return [keccak256(i.to_bytes(4, "big")) for i in range(n)]


def _reference_root(leaves: list[bytes]) -> bytes:
    level = leaves
    while len(level) > 1:
        nxt = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def test_merkle_shapes() -> None:
    a, b, c = _leaves(3)
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == keccak256(a + b)
    assert merkle_root([a, b, c]) == keccak256(keccak256(a + b) + c)  # odd node carried up
    assert merkle_root([]) == EMPTY_ROOT


@pytest.mark.parametrize("n", range(1, 41))
def test_every_proof_verifies_and_tampering_fails(n: int) -> None:
    leaves = _leaves(n)
    root = merkle_root(leaves)
    assert root == _reference_root(leaves)
    for i in range(n):
        proof = merkle_proof(leaves, i)
        verify_proof(proof, root, leaves[i], i, n)
        if n == 1:
            assert proof.lemma == (root,) and proof.path == ()
            continue
        with pytest.raises(InvalidProof):
            verify_proof(proof, root, keccak256(b"other"), i, n)
        with pytest.raises(InvalidProof):
            verify_proof(proof, root, leaves[i], (i + 1) % n, n)
        flipped = MerkleProof(proof.lemma, tuple(not p for p in proof.path))
        with pytest.raises(InvalidProof):
            verify_proof(flipped, root, leaves[i], i, n)
        if len(proof.lemma) > 2:
            tampered = list(proof.lemma)
            tampered[1] = keccak256(tampered[1])
            with pytest.raises(InvalidProof):
                verify_proof(MerkleProof(tuple(tampered), proof.path), root, leaves[i], i, n)


def test_proof_index_out_of_range() -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        merkle_proof(_leaves(3), 3)


# ---- BLS ------------------------------------------------------------------------------

BLS_SEEDS = [b"validator-0" * 4, b"validator-1" * 4, b"validator-2" * 4]


@pytest.fixture(params=bls.available_backends())
def bls_backend(request: pytest.FixtureRequest):
    previous = bls.backend_name()
    bls.use(request.param)
    yield request.param
    bls.use(previous)


def _vectors() -> dict:
    """The same operations through one backend, returned as bytes for comparison."""
    sks = [bls.keygen(s) for s in BLS_SEEDS]
    pks = [bls.sk_to_pk(sk) for sk in sks]
    message = b"zg vote vector"
    sigs = [bls.sign(sk, message) for sk in sks]
    return {"pks": pks, "sigs": sigs, "aggregate": bls.aggregate(sigs)}


def test_bls_sign_verify_aggregate(bls_backend: str) -> None:
    v = _vectors()
    message = b"zg vote vector"
    assert bls.verify(v["pks"][0], message, v["sigs"][0])
    assert not bls.verify(v["pks"][1], message, v["sigs"][0])
    assert not bls.verify(v["pks"][0], b"other", v["sigs"][0])
    assert bls.fast_aggregate_verify(v["pks"], message, v["aggregate"])
    assert not bls.fast_aggregate_verify(v["pks"][:2], message, v["aggregate"])
    assert not bls.verify(v["pks"][0], message, b"\x00" * 96)  # malformed: False, no raise
    assert not bls.verify(b"short", message, v["sigs"][0])


def test_bls_rejects_the_identity_key_on_every_backend(bls_backend: str) -> None:
    # KeyValidate: with pk = infinity, the identity "signature" would verify any message.
    identity_sig = b"\xc0" + bytes(95)
    assert not bls.verify(bls.INFINITY_PUBKEY, b"anything", identity_sig)
    assert not bls.fast_aggregate_verify([bls.INFINITY_PUBKEY], b"anything", identity_sig)
    v = _vectors()
    assert not bls.fast_aggregate_verify([*v["pks"], bls.INFINITY_PUBKEY], b"zg vote vector",
                                         v["aggregate"])


def test_fastest_is_the_first_installed_of_the_fastest_first_order() -> None:
    assert bls.fastest_name() == next(b for b in bls.FASTEST_FIRST
                                      if b in bls.available_backends())
    with pytest.raises(InvalidInput, match="choose one of"):
        bls.use("bogus")


def test_bls_backends_agree_on_vectors() -> None:
    previous = bls.backend_name()
    results = {}
    for name in bls.available_backends():
        bls.use(name)
        results[name] = _vectors()
    bls.use(previous)
    reference = results["py_ecc"]
    for name, result in results.items():
        assert result == reference, f"backend {name} disagrees with py_ecc"


def test_py_ecc_backend_answers_as_py_ecc_itself() -> None:
    """The py_ecc backend verifies with cached, validated key points; py_ecc's own
    FastAggregateVerify and Verify must give the same answers."""
    from py_ecc.bls import G2ProofOfPossession as reference

    v = _vectors()
    message = b"zg vote vector"
    cases = [(v["pks"], message, v["aggregate"]),        # valid
             (v["pks"], b"other", v["aggregate"]),        # another message
             (v["pks"][:2], message, v["aggregate"]),     # signers missing
             (v["pks"], message, b"\x00" * 96)]           # not a point
    with bls.using("py_ecc"):
        for pks, msg, sig in cases:
            assert bls.fast_aggregate_verify(pks, msg, sig) == \
                reference.FastAggregateVerify(pks, msg, sig)
        assert bls.verify(v["pks"][0], message, v["sigs"][0]) == \
            reference.Verify(v["pks"][0], message, v["sigs"][0]) is True


def test_bls_using_switches_the_calling_thread_only() -> None:
    """A DA certificate checked on py_ecc in a worker thread must not move the event
    loop's consensus checks to py_ecc, nor leave py_ecc behind when it ends."""
    other = next((b for b in bls.available_backends() if b != "py_ecc"), None)
    if other is None:
        pytest.skip("needs a second BLS backend")
    previous = bls.backend_name()
    bls.use(other)
    inside, entered, release = [], threading.Event(), threading.Event()

    def worker() -> None:
        with bls.using("py_ecc"):
            inside.append(bls.backend_name())
            entered.set()
            release.wait(10)
        inside.append(bls.backend_name())

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert entered.wait(10)
        assert bls.backend_name() == other  # this thread is untouched meanwhile
        with bls.using("py_ecc"):
            assert bls.backend_name() == "py_ecc"
        assert bls.backend_name() == other
    finally:
        release.set()
        thread.join(10)
        bls.use(previous)
    assert inside == ["py_ecc", other]


def test_proof_of_possession() -> None:
    sk = bls.keygen(BLS_SEEDS[0])
    other = bls.keygen(BLS_SEEDS[1])
    pk = bls.sk_to_pk(sk)
    assert bls.pop_verify(pk, bls.pop_prove(sk))
    assert not bls.pop_verify(pk, bls.pop_prove(other))
    assert not bls.pop_verify(pk, bls.sign(sk, pk))  # a plain signature is not a PoP


def test_unknown_bls_backend_is_named() -> None:
    with pytest.raises(InvalidInput, match="blst"):
        bls.use("blst")


# ---- accounts -------------------------------------------------------------------------

def test_known_ethereum_address() -> None:
    # private key 1 -> the well-known address of the generator point
    account = Account((1).to_bytes(32, "big"))
    assert account.address.hex() == "7e5f4552091a69125d5dfcb7b8c2659029395bdf"
    assert to_checksum(account.address) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


def test_sign_and_recover() -> None:
    account = Account.from_seed(b"alice")
    digest = keccak256(b"message")
    signature = account.sign_hash(digest)
    assert recover_address(digest, signature) == account.address
    assert recover_address(keccak256(b"other"), signature) != account.address
    with pytest.raises(InvalidSignature, match="65 bytes"):
        recover_address(digest, signature[:64])


def test_high_s_signature_rejected() -> None:
    from zg_actors.crypto.accounts import SECP256K1_ORDER

    account = Account.from_seed(b"bob")
    digest = keccak256(b"m")
    sig = account.sign_hash(digest)
    s = int.from_bytes(sig[32:64], "big")
    malleable = sig[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(InvalidSignature, match="malleable"):
        recover_address(digest, malleable)


def test_parse_address_errors_name_the_value() -> None:
    with pytest.raises(InvalidInput, match="0x12"):
        parse_address("0x12")


@pytest.mark.parametrize("seed", [b"\x00" * 32, bytes(range(32)), b"zg-devnet/validator-bls/3" * 2])
def test_keygen_matches_py_ecc(seed: bytes) -> None:
    from py_ecc.bls import G2ProofOfPossession

    assert bls.keygen(seed) == G2ProofOfPossession.KeyGen(seed)


def test_list_item_ends_cut_a_list_apart_without_decoding_it() -> None:
    from zg_actors.crypto.encoding import EncodingError, encode, list_item_ends, list_prefix

    items = [b"a", b"x" * 60, [b"b", b"c"], b""]
    data = encode(items)
    first, ends = list_item_ends(data)
    assert data[:first] == list_prefix(len(data) - first)
    cuts = [data[start:end] for start, end in zip([first, *ends[:-1]], ends, strict=True)]
    assert cuts == [encode(item) for item in items]
    assert list_item_ends(b"\x02" + data, 1)[1] == [e + 1 for e in ends]
    for bad in (b"", b"\x80", data[:-1], b"\xc2\x83ab"):
        with pytest.raises(EncodingError):
            list_item_ends(bad)
