"""Batches and DA certificates: one aggregate BLS signature certifies a whole batch.

A disperser groups blobs of one (network, epoch, quorum) into a batch; the
batch root is the Merkle root over the blob headers. Each DA node of the
quorum verifies and persists its slices of every blob, then signs
keccak(domain, network id, epoch, quorum id, batch root) once. The
certificate is the batch, a bitmap over the quorum's members (ascending
registry order) and the aggregate signature; it is valid when the members
it names hold >= ceil(2n / 3) of the quorum's n slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from zg_actors.chain.block import make_bitmap
from zg_actors.crypto import bls
from zg_actors.crypto.encoding import EncodingError, as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.blob import BlobHeader, batch_root
from zg_actors.da.errors import InvalidDACertificate
from zg_actors.da.params import BLS_DOMAIN_BATCH, signing_threshold
from zg_actors.da.quorum import EpochRegistry, Quorum


def batch_sign_bytes(network_id: int, epoch: int, quorum_id: int, root: bytes) -> bytes:
    """The network id and epoch are signed so a signature cannot be replayed elsewhere."""
    return keccak256(encode([BLS_DOMAIN_BATCH, network_id, epoch, quorum_id, root]))


@dataclass(frozen=True)
class Batch:
    network_id: int
    epoch: int
    quorum_id: int
    blobs: tuple[BlobHeader, ...]

    @cached_property
    def root(self) -> bytes:
        return batch_root(self.blobs)

    @property
    def sign_bytes(self) -> bytes:
        return batch_sign_bytes(self.network_id, self.epoch, self.quorum_id, self.root)

    def to_list(self) -> list:
        return [self.network_id, self.epoch, self.quorum_id, [b.to_list() for b in self.blobs]]


@dataclass(frozen=True)
class DACertificate:
    batch: Batch
    signers: bytes  # bitmap: bit i = member i of the quorum (Quorum.members)
    signature: bytes

    def encode(self) -> bytes:
        return encode([self.batch.to_list(), self.signers, self.signature])

    @classmethod
    def decode(cls, data: bytes) -> DACertificate:
        try:
            raw_batch, signers, signature = as_list(decode(data), 3)
            network_id, epoch, quorum_id, blobs = as_list(raw_batch, 4)
            batch = Batch(as_int(network_id), as_int(epoch), as_int(quorum_id),
                          tuple(BlobHeader.from_list(b) for b in as_list(blobs)))
            return cls(batch, as_bytes(signers), as_bytes(signature, bls.SIGNATURE_BYTES))
        except EncodingError as exc:
            raise InvalidDACertificate(f"malformed DA certificate: {exc}") from exc

    def signer_positions(self) -> list[int]:
        return [i for i in range(len(self.signers) * 8) if self.signers[i // 8] >> (i % 8) & 1]


def member_bitmap(quorum: Quorum, signer_indexes: Sequence[int]) -> bytes:
    """Bitmap over quorum.members of the given registry signer indexes."""
    positions = [quorum.members.index(i) for i in signer_indexes]
    return make_bitmap(positions, len(quorum.members))


def signed_slots(quorum: Quorum, signer_indexes: Sequence[int]) -> int:
    chosen = set(signer_indexes)
    return sum(1 for holder in quorum.holders if holder in chosen)


def verify_da_certificate(cert: DACertificate, registry: EpochRegistry, quorum: Quorum,
                          network_id: int) -> int:
    """Raise InvalidDACertificate unless cert is a valid certificate of its batch on
    `network_id`; returns the number of signed slots."""
    batch = cert.batch
    if batch.network_id != network_id:
        raise InvalidDACertificate(f"batch is for network {batch.network_id}, this is "
                                   f"{network_id}", network_id=batch.network_id)
    if (batch.epoch, batch.quorum_id) != (registry.epoch, quorum.quorum_id):
        raise InvalidDACertificate("certificate names another epoch or quorum",
                                   epoch=batch.epoch, quorum_id=batch.quorum_id)
    if not batch.blobs:
        raise InvalidDACertificate("a batch needs at least one blob", blobs=0)
    for header in batch.blobs:
        if (header.network_id, header.epoch, header.quorum_id) != (
                network_id, batch.epoch, batch.quorum_id):
            raise InvalidDACertificate(f"blob 0x{header.key.hex()[:16]} names network "
                                       f"{header.network_id} epoch {header.epoch} quorum "
                                       f"{header.quorum_id}, not the batch's",
                                       blob=header.key)
    members = quorum.members
    if len(cert.signers) != (len(members) + 7) // 8:
        raise InvalidDACertificate(f"signer bitmap is {len(cert.signers)} bytes for "
                                   f"{len(members)} quorum members", bitmap=cert.signers)
    positions = cert.signer_positions()
    if any(p >= len(members) for p in positions):
        raise InvalidDACertificate("signer bitmap names a member outside the quorum",
                                   bitmap=cert.signers)
    indexes = [members[p] for p in positions]
    slots, n = signed_slots(quorum, indexes), len(quorum.holders)
    if slots < signing_threshold(n):
        raise InvalidDACertificate(f"signers hold {slots} of {n} slots, need "
                                   f"{signing_threshold(n)} (ceil(2n/3))", signed=slots,
                                   needed=signing_threshold(n))
    pubkeys = [registry.signers[i].bls_pubkey for i in indexes]
    if not bls.fast_aggregate_verify(pubkeys, batch.sign_bytes, cert.signature):
        raise InvalidDACertificate("aggregate signature does not verify for the batch root "
                                   f"0x{batch.root.hex()[:16]}", batch_root=batch.root)
    return slots


def verified_signatures(signatures: dict[int, bytes], registry: EpochRegistry,
                        message: bytes) -> dict[int, bytes]:
    """The signatures of `message` that verify, by signer index.

    One aggregate check first (every key passed its proof of possession at
    registration, so an aggregate of valid signatures is what FastAggregateVerify
    accepts); only when it fails is each signature checked alone and the bad ones
    dropped. A batch costs one pairing check instead of one per signer.
    """
    if not signatures:
        return {}
    signers = sorted(signatures)
    keys = [registry.signers[s].bls_pubkey for s in signers]
    try:
        aggregate = bls.aggregate([signatures[s] for s in signers])
    except Exception:  # a malformed signature: find it below
        aggregate = b""
    if aggregate and bls.fast_aggregate_verify(keys, message, aggregate):
        return dict(signatures)
    return {s: signatures[s] for s, key in zip(signers, keys, strict=True)
            if bls.verify(key, message, signatures[s])}
