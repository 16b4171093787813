"""Blocks, headers, commit certificates and the bytes validators sign."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from zg_actors.chain.tx import Transaction, decode_tx
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.encoding import (
    EncodingError,
    as_bytes,
    as_int,
    as_list,
    decode,
    encode,
)
from zg_actors.crypto.keccak import HASH_BYTES, keccak256
from zg_actors.crypto.merkle import merkle_root
from zg_actors.errors import InvalidInput, InvalidProof, InvalidSignature

ZERO_HASH = bytes(HASH_BYTES)
PREVOTE = 1
PRECOMMIT = 2
_PROPOSAL_DOMAIN = b"zg-proposal"


class InvalidBlock(InvalidInput):
    code = "INVALID_BLOCK"


def vote_sign_bytes(network_id: int, height: int, round_: int, step: int,
                    block_hash: bytes) -> bytes:
    """What a vote's BLS signature covers: (network_id, height, round, step, block_hash)."""
    return encode([network_id, height, round_, step, block_hash])


def proposal_sign_bytes(network_id: int, height: int, round_: int, pol_round: int,
                        block_hash: bytes) -> bytes:
    # pol_round is -1 when there is no proof-of-lock; shift it so it encodes.
    return encode([_PROPOSAL_DOMAIN, network_id, height, round_, pol_round + 1, block_hash])


@dataclass(frozen=True)
class Header:
    network_id: int
    height: int
    round: int
    time_ms: int
    prev_hash: bytes
    proposer: bytes  # proposer's account address
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    validator_set_hash: bytes  # the set that signs this height
    last_commit_hash: bytes  # hash of the previous block's commit certificate
    staking_tick: int  # C0 tick of the validator set for the next epoch (epoch boundaries)

    def fields(self) -> list:
        return [self.network_id, self.height, self.round, self.time_ms, self.prev_hash,
                self.proposer, self.tx_root, self.receipt_root, self.state_root,
                self.validator_set_hash, self.last_commit_hash, self.staking_tick]

    def encode(self) -> bytes:
        return encode(self.fields())

    @cached_property
    def hash(self) -> bytes:
        return keccak256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Header:
        try:
            f = as_list(decode(data), 12)
            return cls(as_int(f[0]), as_int(f[1]), as_int(f[2]), as_int(f[3]),
                       as_bytes(f[4], 32), as_bytes(f[5], 20), as_bytes(f[6], 32),
                       as_bytes(f[7], 32), as_bytes(f[8], 32), as_bytes(f[9], 32),
                       as_bytes(f[10], 32), as_int(f[11]))
        except EncodingError as exc:
            raise InvalidBlock(f"malformed header: {exc}") from exc


@dataclass(frozen=True)
class CommitCertificate:
    """> 2/3 of the voting power precommitted block_hash in round: the aggregate
    BLS signature of those precommits and a bitmap of who signed."""

    network_id: int
    height: int
    round: int
    block_hash: bytes
    signers: bytes  # bitmap, bit i = validator i of the height's set (little-endian bits)
    signature: bytes

    def encode(self) -> bytes:
        return encode([self.network_id, self.height, self.round, self.block_hash,
                       self.signers, self.signature])

    @cached_property
    def hash(self) -> bytes:
        return keccak256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        try:
            f = as_list(decode(data), 6)
            return cls(as_int(f[0]), as_int(f[1]), as_int(f[2]), as_bytes(f[3], 32),
                       as_bytes(f[4]), as_bytes(f[5], bls.SIGNATURE_BYTES))
        except EncodingError as exc:
            raise InvalidProof(f"malformed commit certificate: {exc}") from exc

    def signer_indexes(self) -> list[int]:
        return [i for i in range(len(self.signers) * 8) if self.signers[i // 8] >> (i % 8) & 1]


def make_bitmap(indexes: Sequence[int], size: int) -> bytes:
    bitmap = bytearray((size + 7) // 8)
    for i in indexes:
        bitmap[i // 8] |= 1 << (i % 8)
    return bytes(bitmap)


def verify_certificate(cert: CommitCertificate, validator_set: ValidatorSet,
                       network_id: int, height: int, block_hash: bytes) -> None:
    """Raise unless cert proves > 2/3 of validator_set's power precommitted block_hash."""
    if (cert.network_id, cert.height, cert.block_hash) != (network_id, height, block_hash):
        raise InvalidProof("certificate is for another block",
                           expected=f"{network_id}/{height}/{block_hash.hex()}",
                           got=f"{cert.network_id}/{cert.height}/{cert.block_hash.hex()}")
    if len(cert.signers) != (len(validator_set) + 7) // 8:
        raise InvalidProof(f"signer bitmap is {len(cert.signers)} bytes for "
                           f"{len(validator_set)} validators", bitmap=cert.signers)
    indexes = cert.signer_indexes()
    if any(i >= len(validator_set) for i in indexes):
        raise InvalidProof("signer bitmap names a validator outside the set",
                           bitmap=cert.signers)
    power = sum(validator_set.validators[i].power for i in indexes)
    if not validator_set.has_quorum(power):
        raise InvalidProof(f"signers hold {power} of {validator_set.total_power} voting "
                           "power, not more than 2/3", power=power,
                           total=validator_set.total_power)
    message = vote_sign_bytes(network_id, height, cert.round, PRECOMMIT, block_hash)
    pubkeys = [validator_set.validators[i].bls_pubkey for i in indexes]
    if not bls.fast_aggregate_verify(pubkeys, message, cert.signature):
        raise InvalidSignature("aggregate signature of the certificate does not verify",
                               height=height, block_hash=block_hash)


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[Transaction, ...]
    last_commit: CommitCertificate | None  # None only at height 1
    encoded: bytes = field(default=b"", compare=False, repr=False)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def encode(self) -> bytes:
        if not self.encoded:
            last = self.last_commit.encode() if self.last_commit else b""
            object.__setattr__(self, "encoded", encode(
                [self.header.encode(), [tx.encoded for tx in self.txs], last]))
        return self.encoded

    @classmethod
    def decode(cls, data: bytes) -> Block:
        try:
            header_raw, txs_raw, last_raw = as_list(decode(data), 3)
            header = Header.decode(as_bytes(header_raw))
            txs = tuple(decode_tx(as_bytes(t)) for t in as_list(txs_raw))
            last = CommitCertificate.decode(as_bytes(last_raw)) if last_raw else None
        except EncodingError as exc:
            raise InvalidBlock(f"malformed block: {exc}") from exc
        block = cls(header, txs, last)
        object.__setattr__(block, "encoded", bytes(data))
        return block


def tx_root(txs: Sequence[Transaction]) -> bytes:
    return merkle_root([tx.hash for tx in txs])
