"""Keccak-256 (Ethereum's, not NIST SHA3-256) on the fastest installed backend.

safe-pysha3 (module `sha3`) is a thin C binding and is about 6x faster than
pycryptodome's on 64-byte inputs, which is what Merkle trees hash; pycryptodome
stays as the fallback because it ships wheels everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

HASH_BYTES = 32

KECCAK_BACKEND: str


def _load() -> Callable[[bytes], bytes]:
    global KECCAK_BACKEND
    try:
        import sha3  # safe-pysha3

        keccak_256 = sha3.keccak_256
        KECCAK_BACKEND = "pysha3"

        def keccak_pysha3(data: bytes) -> bytes:
            return keccak_256(data).digest()

        return keccak_pysha3
    except ImportError:
        from Crypto.Hash import keccak as _keccak

        KECCAK_BACKEND = "pycryptodome"

        def keccak_pycryptodome(data: bytes) -> bytes:
            return _keccak.new(digest_bits=256, data=data).digest()

        return keccak_pycryptodome


keccak256: Callable[[bytes], bytes] = _load()
"""keccak256(data) -> 32-byte digest."""
