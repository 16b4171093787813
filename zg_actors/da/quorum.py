"""Quorums: DA signers' votes become VRF tickets, tickets sorted and cut into quorums.

Per epoch, each registered DA signer signs (epoch, epoch seed) with its BLS
key. A BLS signature is unique for a key and message, so ticket j =
keccak(signature || j) is a verifiable random output: the signer cannot pick
it, and anyone with the registry can check it. A signer has one ticket per
vote (stake / tokens_per_vote, capped). All tickets of the epoch, sorted, are
cut into quorums of n slots (at most MAX_QUORUMS; leftover tickets get no
slot); the signer of the ticket in slot s of quorum q holds slice s of every
blob dispersed to quorum q.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from zg_actors.crypto import bls
from zg_actors.crypto.accounts import ADDRESS_BYTES, recover_address
from zg_actors.crypto.encoding import EncodingError, as_bytes, as_int, as_list, decode, encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.errors import InvalidTicket, UnknownEpoch, UntrustedRegistry
from zg_actors.da.params import BLS_DOMAIN_EPOCH, MAX_QUORUMS
from zg_actors.errors import ZgError


def epoch_message(epoch: int, seed: bytes) -> bytes:
    """What a signer signs to take part in `epoch`: its tickets derive from the signature."""
    return keccak256(encode([BLS_DOMAIN_EPOCH, epoch, seed]))


def attestation_message(epoch: int, registry_hash: bytes) -> bytes:
    """What C0's attestation key signs when it seals an epoch's registry."""
    return keccak256(encode([b"zg-da/c0-epoch-registry", epoch, registry_hash]))


def get_votes(stake: int, tokens_per_vote: int, max_votes: int) -> int:
    """Votes of a signer: whole multiples of tokens_per_vote in its stake, capped so that
    one signer cannot hold a whole quorum."""
    return min(stake // tokens_per_vote, max_votes)


def get_tickets(signature: bytes, votes: int) -> list[bytes]:
    return [keccak256(signature + j.to_bytes(4, "big")) for j in range(votes)]


@dataclass(frozen=True)
class EpochSigner:
    address: bytes
    bls_pubkey: bytes
    votes: int
    signature: bytes  # BLS signature of epoch_message; b"" when it did not sign this epoch

    def to_list(self) -> list:
        return [self.address, self.bls_pubkey, self.votes, self.signature]


@dataclass(frozen=True)
class EpochRegistry:
    """The DA signers of one epoch as C0 recorded them: the input of quorum assignment."""

    epoch: int
    seed: bytes
    signers: tuple[EpochSigner, ...]

    def encode(self) -> bytes:
        return encode([self.epoch, self.seed, [s.to_list() for s in self.signers]])

    @cached_property
    def hash(self) -> bytes:
        return keccak256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> EpochRegistry:
        try:
            epoch, seed, raw = as_list(decode(data), 3)
            signers = []
            for item in as_list(raw):
                a, pk, votes, sig = as_list(item, 4)
                signers.append(EpochSigner(as_bytes(a, ADDRESS_BYTES),
                                           as_bytes(pk, bls.PUBKEY_BYTES), as_int(votes),
                                           as_bytes(sig)))
            return cls(as_int(epoch), as_bytes(seed, 32), tuple(signers))
        except EncodingError as exc:
            raise InvalidTicket(f"malformed epoch registry: {exc}") from exc

    def index_of(self, address: bytes) -> int:
        for i, signer in enumerate(self.signers):
            if signer.address == address:
                return i
        raise UnknownEpoch(f"0x{address.hex()} is not a DA signer of epoch {self.epoch}",
                           address=address, epoch=self.epoch)


def verify_signer_tickets(registry: EpochRegistry, index: int) -> list[bytes]:
    """Raise InvalidTicket unless signer `index` signed this epoch's seed; its tickets."""
    signer = registry.signers[index]
    if not bls.verify(signer.bls_pubkey, epoch_message(registry.epoch, registry.seed),
                      signer.signature):
        raise InvalidTicket(f"epoch signature of 0x{signer.address.hex()} does not verify "
                            f"for epoch {registry.epoch}", address=signer.address,
                            epoch=registry.epoch)
    return get_tickets(signer.signature, signer.votes)


@dataclass(frozen=True)
class Quorum:
    """slot s of the quorum is held by registry signer holders[s]."""

    quorum_id: int
    holders: tuple[int, ...]

    @cached_property
    def members(self) -> tuple[int, ...]:
        """Distinct signers in ascending registry order: bit i of a certificate's bitmap."""
        return tuple(sorted(set(self.holders)))

    def slots_of(self, signer: int) -> list[int]:
        return [s for s, h in enumerate(self.holders) if h == signer]


def assign_quorums(registry: EpochRegistry, n: int, max_quorums: int = MAX_QUORUMS,
                   verify: bool = True) -> list[Quorum]:
    """Sorted tickets of the signers that signed, cut into quorums of n slots.

    With verify=True every epoch signature is checked first (a forged one raises)."""
    tickets: list[tuple[bytes, int]] = []
    for index, signer in enumerate(registry.signers):
        if not signer.signature:
            continue
        own = (verify_signer_tickets(registry, index) if verify
               else get_tickets(signer.signature, signer.votes))
        tickets.extend((t, index) for t in own)
    tickets.sort()
    count = min(len(tickets) // n, max_quorums)
    return [Quorum(q, tuple(index for _, index in tickets[q * n:(q + 1) * n]))
            for q in range(count)]


def verify_assignment(registry: EpochRegistry, address: bytes, quorum_id: int,
                      slots: Sequence[int], n: int, max_quorums: int = MAX_QUORUMS) -> None:
    """Anyone can check that `address` holds exactly `slots` of quorum `quorum_id`: every
    ticket of the epoch is recomputed from its verified signature."""
    index = registry.index_of(address)
    quorums = assign_quorums(registry, n, max_quorums)
    if not 0 <= quorum_id < len(quorums):
        raise InvalidTicket(f"epoch {registry.epoch} has {len(quorums)} quorums, no quorum "
                            f"{quorum_id}", quorum_id=quorum_id, quorums=len(quorums))
    actual = quorums[quorum_id].slots_of(index)
    if sorted(slots) != actual:
        raise InvalidTicket(f"0x{address.hex()} holds slots {actual} of quorum {quorum_id}, "
                            f"not {sorted(slots)}", address=address, quorum_id=quorum_id)


def encode_attested(registry: EpochRegistry, signature: bytes) -> list:
    """The `register_epoch` tx arguments: the registry and C0's signature of its hash."""
    return [registry.encode(), signature]


def verify_attested(registry: EpochRegistry, signature: bytes, attestor: bytes) -> None:
    """Raise UntrustedRegistry unless C0's attestation key (address `attestor`) signed this
    exact registry (signers, BLS keys, votes, seed, ticket signatures)."""
    try:
        signer = recover_address(attestation_message(registry.epoch, registry.hash), signature)
    except ZgError as exc:  # malformed signature
        raise UntrustedRegistry(f"epoch {registry.epoch} registry attestation is malformed: "
                                f"{exc}", epoch=registry.epoch) from exc
    if signer != attestor:
        raise UntrustedRegistry(f"epoch {registry.epoch} registry 0x{registry.hash.hex()[:16]} "
                                f"is not attested by C0 (signed by 0x{signer.hex()}, C0 is "
                                f"0x{attestor.hex()})", epoch=registry.epoch,
                                registry=registry.hash, signer=signer)
