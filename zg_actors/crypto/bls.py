"""BLS12-381 signatures (min-pubkey, proof-of-possession ciphersuite) behind one switch.

py_ecc is the readable reference and is always available; milagro (Rust, via
milagro-bls-binding) is about 50x faster; blspy (Chia's C++ bls-signatures on
relic, its PopSchemeMPL is this same IETF ciphersuite) is about 4x faster again
(measured here: verify 6.4 ms with milagro, 1.8 ms with blspy, ~300 ms with
py_ecc). Every caller imports the names below; `use(name)` or the environment
variable ZG_BLS_BACKEND=py_ecc|milagro|blspy|fastest picks the backend for the
whole process (the consensus-specs pattern); "fastest" is the fastest installed.
All produce identical bytes: signatures are deterministic, and the tests check it.

Proofs of possession are made and checked with py_ecc on every backend:
milagro's binding does not expose the POP domain tag, and they are needed only
once per registration.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput

PUBKEY_BYTES = 48
SIGNATURE_BYTES = 96
SECRET_BYTES = 32
BACKENDS = ("py_ecc", "milagro", "blspy")
FASTEST_FIRST = ("blspy", "milagro", "py_ecc")
# The compressed point at infinity of G1: never a valid public key (KeyValidate).
INFINITY_PUBKEY = b"\xc0" + bytes(PUBKEY_BYTES - 1)
# Order r of the BLS12-381 groups: secret keys live in Z_r.
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"
KEYGEN_OKM_BYTES = 48  # ceil(1.5 * ceil(log2(r)) / 8), per the IETF BLS draft


@functools.cache
def _ref() -> Any:
    """py_ecc's ciphersuite, imported on first use: it takes ~0.7 s to import, and a
    validator on the fast backend only needs it for proofs of possession."""
    from py_ecc.bls import G2ProofOfPossession

    return G2ProofOfPossession

try:
    import milagro_bls_binding as _milagro
except ImportError:  # a platform without its wheel still runs on py_ecc
    _milagro = None


try:
    import blspy as _blspy
except ImportError:  # no wheel for this platform: milagro or py_ecc serve
    _blspy = None


def available_backends() -> list[str]:
    """Installed backends, reference first."""
    return ["py_ecc"] + (["milagro"] if _milagro is not None else []) + \
        (["blspy"] if _blspy is not None else [])


PARSED_KEYS_CACHED = 4096  # public keys kept parsed and validated (a few hundred bytes each)


@functools.lru_cache(maxsize=PARSED_KEYS_CACHED)
def _py_ecc_key(pk: bytes) -> Any:
    """pk as a G1 point once it passes KeyValidate (on the curve, in the subgroup, not the
    identity); kept, since the same few keys (validators, DA signers) come back in every
    check and py_ecc's subgroup check costs ~20 ms a key. ValueError if it fails."""
    from py_ecc.bls.g2_primitives import pubkey_to_G1

    if not _ref().KeyValidate(pk):
        raise ValueError("public key fails KeyValidate")
    return pubkey_to_G1(pk)


def _py_ecc_core_verify(key_point: Any, message: bytes, signature: bytes) -> bool:
    """IETF CoreVerify (POP ciphersuite) for an already validated key point: py_ecc's own
    steps (signature subgroup check, one final exponentiation over two Miller loops)."""
    from eth_utils import ValidationError
    from py_ecc.bls.g2_primitives import signature_to_G2, subgroup_check
    from py_ecc.bls.hash_to_curve import hash_to_G2
    from py_ecc.fields import optimized_bls12_381_FQ12 as FQ12
    from py_ecc.optimized_bls12_381 import G1, final_exponentiate, neg, pairing

    suite = _ref()
    try:
        signature_point = signature_to_G2(signature)
    except (ValidationError, ValueError, AssertionError):
        return False
    if not subgroup_check(signature_point):
        return False
    product = pairing(signature_point, G1, final_exponentiate=False) * pairing(
        hash_to_G2(message, suite.DST, suite.xmd_hash_function), neg(key_point),
        final_exponentiate=False)
    return final_exponentiate(product) == FQ12.one()


class _PyEcc:
    """py_ecc's G2ProofOfPossession; verification reuses validated key points (py_ecc
    re-validates every key, and the aggregate key twice, on every call)."""

    name = "py_ecc"

    @staticmethod
    def sk_to_pk(sk: int) -> bytes:
        return _ref().SkToPk(sk)

    @staticmethod
    def sign(sk: int, message: bytes) -> bytes:
        return _ref().Sign(sk, message)

    @staticmethod
    def verify(pk: bytes, message: bytes, signature: bytes) -> bool:
        return _py_ecc_core_verify(_py_ecc_key(pk), message, signature)

    @staticmethod
    def aggregate(signatures: Sequence[bytes]) -> bytes:
        return _ref().Aggregate(list(signatures))

    @staticmethod
    def fast_aggregate_verify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        from py_ecc.bls.g2_primitives import is_inf
        from py_ecc.optimized_bls12_381 import Z1, add

        aggregate = Z1
        for pk in pks:
            aggregate = add(aggregate, _py_ecc_key(pk))
        if is_inf(aggregate):  # KeyValidate of the aggregate key (the rest holds for sums)
            return False
        return _py_ecc_core_verify(aggregate, message, signature)

    @staticmethod
    def aggregate_verify(pks: Sequence[bytes], messages: Sequence[bytes],
                         signature: bytes) -> bool:
        return _ref().AggregateVerify(list(pks), list(messages), signature)


class _Milagro:
    name = "milagro"

    @staticmethod
    def sk_to_pk(sk: int) -> bytes:
        return _milagro.SkToPk(sk.to_bytes(SECRET_BYTES, "big"))

    @staticmethod
    def sign(sk: int, message: bytes) -> bytes:
        return _milagro.Sign(sk.to_bytes(SECRET_BYTES, "big"), message)

    @staticmethod
    def verify(pk: bytes, message: bytes, signature: bytes) -> bool:
        return _milagro.Verify(pk, message, signature)

    @staticmethod
    def aggregate(signatures: Sequence[bytes]) -> bytes:
        return _milagro.Aggregate(list(signatures))

    @staticmethod
    def fast_aggregate_verify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        return _milagro.FastAggregateVerify(list(pks), message, signature)

    @staticmethod
    def aggregate_verify(pks: Sequence[bytes], messages: Sequence[bytes],
                         signature: bytes) -> bool:
        return _milagro.AggregateVerify(list(pks), list(messages), signature)


class _Blspy:
    """blspy's PopSchemeMPL: points are parsed (and subgroup-checked) from bytes per call."""

    name = "blspy"

    @staticmethod
    @functools.lru_cache(maxsize=PARSED_KEYS_CACHED)
    def _pk(pk: bytes) -> Any:
        """A parsed, subgroup-checked key; kept, since the same few keys (validators, DA
        signers) come back in every check and the points are immutable."""
        if pk == INFINITY_PUBKEY:  # KeyValidate: the identity is no one's key
            raise ValueError("public key is the point at infinity")
        return _blspy.G1Element.from_bytes(pk)

    @staticmethod
    def sk_to_pk(sk: int) -> bytes:
        return bytes(_blspy.PrivateKey.from_bytes(sk.to_bytes(SECRET_BYTES, "big")).get_g1())

    @staticmethod
    def sign(sk: int, message: bytes) -> bytes:
        key = _blspy.PrivateKey.from_bytes(sk.to_bytes(SECRET_BYTES, "big"))
        return bytes(_blspy.PopSchemeMPL.sign(key, message))

    @staticmethod
    def verify(pk: bytes, message: bytes, signature: bytes) -> bool:
        return _blspy.PopSchemeMPL.verify(_Blspy._pk(pk), message,
                                          _blspy.G2Element.from_bytes(signature))

    @staticmethod
    def aggregate(signatures: Sequence[bytes]) -> bytes:
        return bytes(_blspy.PopSchemeMPL.aggregate([_blspy.G2Element.from_bytes(s)
                                                    for s in signatures]))

    @staticmethod
    def fast_aggregate_verify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        return _blspy.PopSchemeMPL.fast_aggregate_verify(
            [_Blspy._pk(pk) for pk in pks], message, _blspy.G2Element.from_bytes(signature))

    @staticmethod
    def aggregate_verify(pks: Sequence[bytes], messages: Sequence[bytes],
                         signature: bytes) -> bool:
        return _blspy.PopSchemeMPL.aggregate_verify(
            [_Blspy._pk(pk) for pk in pks], list(messages),
            _blspy.G2Element.from_bytes(signature))


_backend: type[_PyEcc] | type[_Milagro] | type[_Blspy] = _PyEcc
_INSTALL_HINTS = {"milagro": "pip install milagro-bls-binding", "blspy": "pip install blspy"}


def _resolve(name: str) -> type[_PyEcc] | type[_Milagro] | type[_Blspy]:
    classes = {"py_ecc": _PyEcc, "milagro": _Milagro, "blspy": _Blspy}
    if name == "fastest":
        name = fastest_name()
    if name not in classes:
        raise InvalidInput(f"unknown BLS backend {name!r}; choose one of "
                           f"{sorted([*classes, 'fastest'])}", backend=name)
    if name not in available_backends():
        raise InvalidInput(f"BLS backend {name!r} is not installed ({_INSTALL_HINTS[name]})",
                           backend=name)
    return classes[name]


def use(name: str) -> None:
    """Select a backend by name: py_ecc, milagro, blspy or fastest (the fastest installed)."""
    global _backend
    _backend = _resolve(name)


# `using` overrides the process's backend in the calling thread only: a validator checks
# a DA certificate (DA's backend) in a worker thread while its event loop verifies votes
# (the consensus backend); a process-wide switch would change both, and two threads
# restoring in interleaved order could leave the wrong one in place.
_thread = threading.local()


def _current() -> type[_PyEcc] | type[_Milagro] | type[_Blspy]:
    return getattr(_thread, "backend", None) or _backend


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Run the enclosed (synchronous) calls of this thread on backend `name`, then switch
    back. All backends produce identical bytes, so this changes only the speed."""
    previous = getattr(_thread, "backend", None)
    _thread.backend = _resolve(name)
    try:
        yield
    finally:
        _thread.backend = previous


def fastest_name() -> str:
    return next(b for b in FASTEST_FIRST if b in available_backends())


def backend_name() -> str:
    return _current().name


def _check_sizes(pk: bytes | None = None, signature: bytes | None = None) -> bool:
    if pk is not None and len(pk) != PUBKEY_BYTES:
        return False
    return signature is None or len(signature) == SIGNATURE_BYTES


def keygen(seed: bytes) -> int:
    """Secret key from >= 32 bytes of seed (IETF KeyGen, HKDF-based)."""
    if len(seed) < SECRET_BYTES:
        seed = keccak256(seed)
    return _hkdf_keygen(seed)


def _hkdf_keygen(ikm: bytes, key_info: bytes = b"") -> int:
    """KeyGen of draft-irtf-cfrg-bls-signature (HKDF-SHA256), as py_ecc's KeyGen."""
    salt, sk = KEYGEN_SALT, 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, ikm + b"\x00", hashlib.sha256).digest()
        info = key_info + KEYGEN_OKM_BYTES.to_bytes(2, "big")
        okm, block = b"", b""
        for counter in range(1, -(-KEYGEN_OKM_BYTES // 32) + 1):
            block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
            okm += block
        sk = int.from_bytes(okm[:KEYGEN_OKM_BYTES], "big") % CURVE_ORDER
    return sk


def sk_to_pk(sk: int) -> bytes:
    return _current().sk_to_pk(sk)


def sign(sk: int, message: bytes) -> bytes:
    return _current().sign(sk, message)


def verify(pk: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is pk's signature of message; malformed inputs are just False."""
    if not _check_sizes(pk, signature):
        return False
    try:
        return bool(_current().verify(pk, message, signature))
    except (ValueError, TypeError, AssertionError, RuntimeError):
        return False


def aggregate(signatures: Sequence[bytes]) -> bytes:
    if not signatures:
        raise InvalidInput("cannot aggregate zero signatures", count=0)
    return _current().aggregate(signatures)


def fast_aggregate_verify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
    """All `pks` signed the same message.  Only sound for PoP-checked keys (rogue keys)."""
    if not pks or not all(_check_sizes(pk) for pk in pks) or not _check_sizes(None, signature):
        return False
    try:
        return bool(_current().fast_aggregate_verify(pks, message, signature))
    except (ValueError, TypeError, AssertionError, RuntimeError):
        return False


def aggregate_verify(pks: Sequence[bytes], messages: Sequence[bytes], signature: bytes) -> bool:
    if not pks or len(pks) != len(messages) or not _check_sizes(None, signature):
        return False
    try:
        return bool(_current().aggregate_verify(pks, messages, signature))
    except (ValueError, TypeError, AssertionError, RuntimeError):
        return False


def pop_prove(sk: int) -> bytes:
    """Proof of possession: a signature over the public key under the POP domain tag."""
    return _ref().PopProve(sk)


def pop_verify(pk: bytes, proof: bytes) -> bool:
    """Registration check that stops rogue-key attacks on aggregated signatures."""
    if not _check_sizes(pk, proof):
        return False
    try:
        return bool(_ref().PopVerify(pk, proof))
    except (ValueError, TypeError, AssertionError, RuntimeError):
        return False


use(os.environ.get("ZG_BLS_BACKEND", "fastest"))
