"""Quorums from VRF tickets, assignment checks anyone can run, and DA certificates."""

from __future__ import annotations

import pytest

from zg_actors.crypto import bls
from zg_actors.crypto.keccak import keccak256
from zg_actors.da.blob import BlobHeader
from zg_actors.da.certificate import (
    Batch,
    DACertificate,
    member_bitmap,
    signed_slots,
    verified_signatures,
    verify_da_certificate,
)
from zg_actors.da.errors import InvalidDACertificate, InvalidTicket
from zg_actors.da.keys import da_signer_identity
from zg_actors.da.quorum import (
    EpochRegistry,
    EpochSigner,
    assign_quorums,
    epoch_message,
    get_tickets,
    get_votes,
    verify_assignment,
)

SEED = "zg-devnet"
N = 96


def make_registry(signers: int = 4, votes: int = 25, epoch: int = 0,
                  seed: bytes = keccak256(b"block")) -> EpochRegistry:
    entries = []
    for i in range(signers):
        ident = da_signer_identity(SEED, i)
        signature = bls.sign(ident.bls_secret, epoch_message(epoch, seed))
        entries.append(EpochSigner(ident.address, ident.bls_pubkey, votes, signature))
    return EpochRegistry(epoch, seed, tuple(entries))


def test_votes_are_stake_over_tokens_per_vote_capped() -> None:
    assert get_votes(100_000, 4_000, 32) == 25
    assert get_votes(1_000_000, 4_000, 32) == 32
    assert get_votes(3_999, 4_000, 32) == 0


def test_tickets_cut_into_quorums_of_n_slots() -> None:
    registry = make_registry()
    [quorum] = assign_quorums(registry, N)  # 100 tickets: one quorum, 4 left over
    assert len(quorum.holders) == N and quorum.members == (0, 1, 2, 3)
    assert sum(len(quorum.slots_of(i)) for i in range(4)) == N
    assert all(len(quorum.slots_of(i)) <= 25 for i in range(4))
    assert assign_quorums(make_registry(), N) == [quorum]  # deterministic
    assert len(assign_quorums(make_registry(votes=50), N)) == 2
    assert assign_quorums(make_registry(votes=50), N, max_quorums=1)[0].quorum_id == 0
    assert assign_quorums(make_registry(seed=keccak256(b"other")), N) != [quorum]


def test_anyone_can_verify_a_signers_slots() -> None:
    registry = make_registry()
    [quorum] = assign_quorums(registry, N)
    address = registry.signers[2].address
    verify_assignment(registry, address, 0, quorum.slots_of(2), N)
    with pytest.raises(InvalidTicket):
        verify_assignment(registry, address, 0, quorum.slots_of(1), N)
    with pytest.raises(InvalidTicket):
        verify_assignment(registry, address, 1, quorum.slots_of(2), N)


def test_a_forged_ticket_signature_is_caught() -> None:
    registry = make_registry()
    forged = EpochSigner(registry.signers[0].address, registry.signers[0].bls_pubkey, 25,
                         registry.signers[1].signature)
    bad = EpochRegistry(0, registry.seed, (forged, *registry.signers[1:]))
    with pytest.raises(InvalidTicket) as info:
        assign_quorums(bad, N)
    assert info.value.details["address"] == forged.address
    assert get_tickets(forged.signature, 2) != get_tickets(registry.signers[0].signature, 2)
    assert EpochRegistry.decode(registry.encode()) == registry


def certify(registry: EpochRegistry, signer_indexes: list[int], network_id: int = 0,
            blobs: int = 3) -> DACertificate:
    [quorum] = assign_quorums(registry, N)
    headers = tuple(BlobHeader(keccak256(bytes([i])), 100 + i, registry.epoch, 0, network_id)
                    for i in range(blobs))
    batch = Batch(network_id, registry.epoch, 0, headers)
    signatures = [bls.sign(da_signer_identity(SEED, i).bls_secret, batch.sign_bytes)
                  for i in signer_indexes]
    return DACertificate(batch, member_bitmap(quorum, signer_indexes), bls.aggregate(signatures))


def test_certificate_needs_two_thirds_of_slots_and_a_valid_aggregate() -> None:
    registry = make_registry()
    [quorum] = assign_quorums(registry, N)
    cert = certify(registry, [0, 1, 2])
    assert verify_da_certificate(cert, registry, quorum, 0) == signed_slots(quorum, [0, 1, 2])
    assert DACertificate.decode(cert.encode()) == cert
    with pytest.raises(InvalidDACertificate) as info:
        verify_da_certificate(certify(registry, [0, 1]), registry, quorum, 0)
    assert info.value.details["needed"] == 64
    with pytest.raises(InvalidDACertificate):
        verify_da_certificate(cert, registry, quorum, 1)  # replay on another network
    forged = DACertificate(cert.batch, member_bitmap(quorum, [0, 1, 2, 3]), cert.signature)
    with pytest.raises(InvalidDACertificate):
        verify_da_certificate(forged, registry, quorum, 0)
    other = certify(registry, [0, 1, 2], blobs=2)
    tampered = DACertificate(other.batch, cert.signers, cert.signature)
    with pytest.raises(InvalidDACertificate):
        verify_da_certificate(tampered, registry, quorum, 0)


def test_signatures_are_checked_in_one_aggregate_and_a_bad_one_is_found() -> None:
    registry = make_registry()
    message = keccak256(b"a batch")
    good = {i: bls.sign(da_signer_identity(SEED, i).bls_secret, message) for i in range(4)}
    assert verified_signatures(good, registry, message) == good
    forged = {**good, 2: bls.sign(da_signer_identity(SEED, 2).bls_secret, b"other")}
    assert verified_signatures(forged, registry, message) == {
        i: s for i, s in good.items() if i != 2}
    assert verified_signatures({**good, 1: b"\x00" * 96}, registry, message).keys() == {0, 2, 3}
    assert verified_signatures({}, registry, message) == {}
