"""secp256k1 accounts with Ethereum addresses (coincurve, libsecp256k1)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import coincurve

from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput, InvalidSignature

ADDRESS_BYTES = 20
RECOVERABLE_SIGNATURE_BYTES = 65
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Signatures with s above half the order are rejected so that a signed tx has one
# encoding, hence one hash (EIP-2).
_HALF_ORDER = SECP256K1_ORDER // 2


def address_of(public_key: coincurve.PublicKey) -> bytes:
    """Last 20 bytes of keccak-256 of the uncompressed public key (without 0x04)."""
    return keccak256(public_key.format(compressed=False)[1:])[-ADDRESS_BYTES:]


@dataclass(frozen=True)
class Account:
    """A private key and its address; signs 32-byte message hashes."""

    secret: bytes

    def __post_init__(self) -> None:
        value = int.from_bytes(self.secret, "big")
        if len(self.secret) != 32 or not 0 < value < SECP256K1_ORDER:
            raise InvalidInput("secp256k1 secret must be 32 bytes in (0, n)")

    @property
    def private_key(self) -> coincurve.PrivateKey:
        return coincurve.PrivateKey(self.secret)

    @cached_property  # a public key derivation (~30 us); callers ask for it per mempool tx
    def address(self) -> bytes:
        return address_of(self.private_key.public_key)

    def sign_hash(self, message_hash: bytes) -> bytes:
        """65-byte (r || s || recovery id) signature of a 32-byte hash."""
        return self.private_key.sign_recoverable(message_hash, hasher=None)

    @classmethod
    def from_seed(cls, seed: bytes) -> Account:
        """Deterministic key for devnets and tests: keccak(seed) reduced into (0, n)."""
        value = int.from_bytes(keccak256(seed), "big") % (SECP256K1_ORDER - 1) + 1
        return cls(value.to_bytes(32, "big"))


def recover_address(message_hash: bytes, signature: bytes) -> bytes:
    """Address that signed `message_hash`; InvalidSignature on malformed or malleable input."""
    if len(signature) != RECOVERABLE_SIGNATURE_BYTES:
        raise InvalidSignature(f"signature must be {RECOVERABLE_SIGNATURE_BYTES} bytes, "
                               f"got {len(signature)}", signature=signature)
    if int.from_bytes(signature[32:64], "big") > _HALF_ORDER:
        raise InvalidSignature("signature s value is in the upper half (malleable)",
                               signature=signature)
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, message_hash,
                                                                    hasher=None)
    except Exception as exc:  # libsecp256k1 reports bad input as a generic error
        raise InvalidSignature(f"signature does not recover a key: {exc}",
                               signature=signature) from exc
    return address_of(public_key)


def to_checksum(address: bytes) -> str:
    """EIP-55 mixed-case hex form, the way wallets print addresses."""
    hex_address = address.hex()
    digest = keccak256(hex_address.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c
                          for i, c in enumerate(hex_address))


def parse_address(text: str) -> bytes:
    raw = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        address = bytes.fromhex(raw)
    except ValueError as exc:
        raise InvalidInput(f"address {text!r} is not hex", address=text) from exc
    if len(address) != ADDRESS_BYTES:
        raise InvalidInput(f"address {text!r} must be {ADDRESS_BYTES} bytes", address=text)
    return address
