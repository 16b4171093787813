"""DA at C0 (signer registry, epochs, tickets) and the `da` module on a network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zg_actors.chain.modules.base import BlockInfo, ModuleState
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.tx import make_tx
from zg_actors.config import ZG, Config
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import c0_account, validator_identity
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_levels, proof_from_levels
from zg_actors.da import sampling
from zg_actors.da.blob import BlobHeader, commit_slices, encode_blob
from zg_actors.da.certificate import Batch, DACertificate, member_bitmap
from zg_actors.da.errors import UntrustedRegistry
from zg_actors.da.keys import c0_attestor, da_signer_identity, disperser_account
from zg_actors.da.module import UntrustedEpochRegistry
from zg_actors.da.params import SECTOR_BYTES, BlobStatus
from zg_actors.da.quorum import (
    EpochRegistry,
    EpochSigner,
    assign_quorums,
    attestation_message,
    encode_attested,
    epoch_message,
    verify_attested,
)
from zg_actors.errors import InvalidProof
from zg_actors.staking.ledger import C0_NETWORK_ID, BadArgument, audit, check_invariants
from zg_actors.store.overlay import Overlay

from .helpers import LedgerHarness, make_node, sign_commit, small_config
from .test_da_quorum import make_registry

SEED = "zg-devnet"
K, N = 4, 12


def da_config() -> Config:
    return small_config(**{"da.k": K, "da.n": N, "da.max_votes": 3, "da.blob_fee": 5,
                           "da.disperser_deposit": 1_000, "da.sampling_base_reward": 7})


def c0_tx(c0: LedgerHarness, account, method: str, *args):
    tx = make_tx(account, C0_NETWORK_ID, c0.ledger.nonce_of(account.address), "staking",
                 method, list(args))
    return c0.run(lambda ledger: ledger.apply_tx(tx))


def register_signers(c0: LedgerHarness, count: int) -> None:
    for i in range(count):
        ident = da_signer_identity(SEED, i)
        c0_tx(c0, c0_account(SEED, i), "transfer", ident.address, 10_000 * ZG)
        c0_tx(c0, ident.account, "register_da_signer", ident.bls_pubkey,
              bls.pop_prove(ident.bls_secret), 10_000 * ZG)


def test_c0_da_signers_epochs_and_tickets(tmp_path: Path) -> None:
    config = da_config()
    c0 = LedgerHarness(config)
    register_signers(c0, 4)
    ident = da_signer_identity(SEED, 0)
    with pytest.raises(InvalidProof):  # a proof of possession of another key
        c0_tx(c0, c0_account(SEED, 3), "register_da_signer", ident.bls_pubkey,
              bls.pop_prove(da_signer_identity(SEED, 1).bls_secret), 5_000 * ZG)
    members = [validator_identity(SEED, i).address for i in range(4)]
    vset = c0.run(lambda ledger: ledger.register_network(0, members))
    node = make_node(tmp_path, config, 0, vset, c0.ledger.tick)
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, c0.ledger.tick)
    cert = sign_commit(node, config, block.hash, 1, [0, 1, 2])
    bad_cert = sign_commit(node, config, block.hash, 1, [0])
    with pytest.raises(InvalidProof):
        c0.run(lambda ledger: ledger.da_open_epoch(block.header.encode(), bad_cert.encode(),
                                                   4_000 * ZG, 2))
    epoch = c0.run(lambda ledger: ledger.da_open_epoch(block.header.encode(), cert.encode(),
                                                       4_000 * ZG, 2))
    assert epoch == 0
    with pytest.raises(BadArgument):  # the seed block must move forward
        c0.run(lambda ledger: ledger.da_open_epoch(block.header.encode(), cert.encode(),
                                                   4_000 * ZG, 2))
    registry = c0.ledger.da_epoch_registry(0)
    assert registry.seed == block.hash and [s.votes for s in registry.signers] == [2] * 4
    assert all(s.signature == b"" for s in registry.signers)
    message = epoch_message(0, registry.seed)
    with pytest.raises(InvalidProof):
        c0.run(lambda ledger: ledger.da_submit_ticket(0, ident.address, bls.sign(
            da_signer_identity(SEED, 1).bls_secret, message)))
    for i in range(4):
        if i == 3:  # a signer has no ticket yet: no one can seal before the window ends
            with pytest.raises(BadArgument):
                c0.run(lambda ledger: ledger.da_seal_epoch(0, 10))
        signer = da_signer_identity(SEED, i)
        c0.run(lambda ledger, s=signer: ledger.da_submit_ticket(
            0, s.address, bls.sign(s.bls_secret, message)))
    assert len(assign_quorums(c0.ledger.da_epoch_registry(0), 8)) == 1
    assert c0.ledger.da_sealed_hash(0) is None
    sealed = c0.run(lambda ledger: ledger.da_seal_epoch(0, 10))
    assert sealed == c0.ledger.da_epoch_registry(0).hash == c0.ledger.da_sealed_hash(0)
    with pytest.raises(BadArgument):  # sealed: the registry C0 committed to cannot change
        c0.run(lambda ledger: ledger.da_submit_ticket(0, ident.address, bls.sign(
            ident.bls_secret, message)))
    report = c0.ledger.supply_report()
    assert check_invariants(report) == []
    assert audit(c0.state.items())["stakes"] == report["total_staked"]
    node.close()


class Chain:
    """One network's state machine over a dict, one block per call."""

    def __init__(self, config: Config, network_id: int = 0) -> None:
        self.machine = build_state_machine(config, network_id)
        self.network_id = network_id
        self.state: dict[bytes, bytes] = dict(self.machine.genesis({}.get).writes())
        self.height = 0
        self.nonces: dict[bytes, int] = {}

    def block(self, *calls: tuple, height: int | None = None) -> list:
        self.height = height or self.height + 1
        txs = []
        for account, method, *args in calls:
            nonce = self.nonces.get(account.address, 0)
            self.nonces[account.address] = nonce + 1
            txs.append(make_tx(account, self.network_id, nonce, "da", method, list(args)))
        included, rejected, result = self.machine.build_block(
            self.state.get, BlockInfo(self.network_id, self.height, self.height * 1000,
                                      bytes(20)), txs, bytes(32))
        assert rejected == [] and len(included) == len(txs)
        for key, value in result.overlay.writes():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        return result.receipts[1:]

    def query(self, method: str, *args: object) -> object:
        return self.machine.query(self.state.get, "da", method, args)


def attested(registry: EpochRegistry, key=None) -> list:
    """register_epoch args: the registry with C0's attestation (or `key`'s signature)."""
    key = key or c0_attestor(SEED)
    return encode_attested(registry, key.sign_hash(attestation_message(registry.epoch,
                                                                       registry.hash)))


def certificate(registry: EpochRegistry, headers: list[BlobHeader], signers: list[int],
                network_id: int = 0) -> bytes:
    [quorum] = assign_quorums(registry, N)
    batch = Batch(network_id, registry.epoch, 0, tuple(headers))
    signature = bls.aggregate([bls.sign(da_signer_identity(SEED, i).bls_secret,
                                        batch.sign_bytes) for i in signers])
    return DACertificate(batch, member_bitmap(quorum, signers), signature).encode()


def test_module_certifies_confirms_finalizes_and_rejects_weak_certificates() -> None:
    chain, registry = Chain(da_config()), make_registry(votes=3)
    disperser = disperser_account(SEED, 0)
    [ok_epoch, ok_deposit] = chain.block((disperser, "register_epoch", *attested(registry)),
                                         (disperser, "deposit", 1_000))
    assert ok_epoch.ok and ok_deposit.ok
    blob = encode_blob(b"hello 0G DA" * 100, K, N)
    header = BlobHeader(blob.data_root, 1100, 0, 0, 0)
    [weak] = chain.block((disperser, "certify", certificate(registry, [header], [0, 1])))
    assert not weak.ok and "need 8" in weak.error
    [wrong_net] = chain.block((disperser, "certify", certificate(registry, [header], [0, 1, 2],
                                                                 network_id=1)))
    assert not wrong_net.ok
    [good] = chain.block((disperser, "certify", certificate(registry, [header], [0, 1, 2])))
    assert good.ok, good.error
    assert chain.query("blob", header.key)["status"] == BlobStatus.CONFIRMED
    [again] = chain.block((disperser, "certify", certificate(registry, [header], [1, 2, 3])))
    assert not again.ok and "already certified" in again.error
    assert chain.query("blob", header.key)["status"] == BlobStatus.FINALIZED
    assert chain.query("blob", keccak256(b"nothing"))["status"] == BlobStatus.UNKNOWN
    assert chain.query("stats")["certified_blobs"] == 1


def test_bad_encoding_proof_fails_the_blob_and_slashes_the_deposit() -> None:
    chain, registry = Chain(da_config()), make_registry(votes=3)
    disperser, prover = disperser_account(SEED, 0), da_signer_identity(SEED, 3).account
    chain.block((disperser, "register_epoch", *attested(registry)), (disperser, "deposit", 1_000))
    data = bytes(range(256)) * 20
    honest = encode_blob(data, K, N)
    slices = honest.slices.copy()
    slices[9, :5] ^= 0xFF  # a parity slice that is not the code's
    cheat = commit_slices(slices, K, len(data))
    good_header = BlobHeader(honest.data_root, len(data), 0, 0, 0)
    bad_header = BlobHeader(cheat.data_root, len(data), 0, 0, 0)
    chain.block((disperser, "certify", certificate(registry, [good_header, bad_header],
                                                   [0, 1, 2])))

    def proof(blob, indexes):
        return [[i, blob.slices[i].tobytes(), blob.slice_proof(i).to_list()] for i in indexes]

    [valid, too_few, caught] = chain.block(
        (prover, "prove_bad_encoding", good_header.key, proof(honest, range(K))),
        (prover, "prove_bad_encoding", bad_header.key, proof(cheat, range(K - 1))),
        (prover, "prove_bad_encoding", bad_header.key, proof(cheat, range(K))))
    assert not valid.ok and "encoding is valid" in valid.error
    assert not too_few.ok
    assert caught.ok, caught.error
    assert chain.query("blob", bad_header.key)["status"] == BlobStatus.FAILED
    assert chain.query("blob", good_header.key)["status"] == BlobStatus.FINALIZED
    assert chain.query("deposit", disperser.address) == 500
    assert chain.machine.query(chain.state.get, "token", "balance", (prover.address,)) == 500


def test_sampling_pays_slot_holders_for_valid_answers() -> None:
    chain, registry = Chain(da_config()), make_registry(votes=3)
    disperser = disperser_account(SEED, 0)
    chain.block((disperser, "register_epoch", *attested(registry)), (disperser, "deposit", 1_000))
    data = np.random.default_rng(5).integers(0, 256, 40_000, dtype=np.uint8).tobytes()
    blob = encode_blob(data, K, N)
    header = BlobHeader(blob.data_root, len(data), 0, 0, 0)
    chain.block((disperser, "certify", certificate(registry, [header], [0, 1, 2, 3])))
    chain.block(height=30)  # a sampling round starts
    seed = chain.state[b"da/seed"]
    target = chain.query("stats")["target"]
    [quorum] = assign_quorums(registry, N)
    sectors_per_slice = blob.slices.shape[1] // SECTOR_BYTES
    answer = None
    for line in range(N):
        row = blob.slices[line].tobytes()
        for subline in range(-(-sectors_per_slice // 4)):
            chunk = row[subline * 1024:(subline + 1) * 1024]
            quality = sampling.answer_quality(seed, 0, 0, header.data_root, line, subline, chunk)
            if sampling.is_valid_answer(quality, target):
                answer = (line, subline)
                break
        if answer:
            break
    assert answer is not None
    line, subline = answer
    row = blob.slices[line].tobytes()
    leaves = [keccak256(row[i:i + SECTOR_BYTES]) for i in range(0, len(row), SECTOR_BYTES)]
    levels = merkle_levels(leaves)
    first = subline * 4
    indexes = range(first, min(first + 4, len(leaves)))
    args = (header.key, line, subline, [row[i * 256:(i + 1) * 256] for i in indexes],
            [proof_from_levels(levels, i).to_list() for i in indexes],
            blob.slice_proof(line).to_list())
    holder = da_signer_identity(SEED, quorum.holders[line]).account
    other = da_signer_identity(SEED, (quorum.holders[line] + 1) % 4).account
    [stranger, paid, twice] = chain.block((other, "sample", *args), (holder, "sample", *args),
                                          (holder, "sample", *args))
    assert not stranger.ok and "held by" in stranger.error
    assert paid.ok, paid.error
    assert not twice.ok and "already answered" in twice.error
    balance = chain.machine.query(chain.state.get, "token", "balance", (holder.address,))
    assert balance == 5 // 40 + 7  # pool share (one blob fee of 5 over 40 answers) + base


def test_difficulty_moves_toward_the_target_answer_count() -> None:
    assert sampling.adjust_target(1_000, 20) == 1_000
    assert sampling.adjust_target(1_000, 40) == 500
    assert sampling.adjust_target(1_000, 0) == 2_000  # dry round: at most doubles
    assert sampling.adjust_target(1_000, 10) == 2_000


def test_holders_find_their_valid_answers() -> None:
    data = np.random.default_rng(9).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    blob = encode_blob(data, K, N)
    seed = keccak256(b"round")
    row = blob.slices[5].tobytes()
    everything = sampling.find_answers(seed, 2**257, 0, 0, blob.data_root, 5, row, 1_000)
    assert len(everything) == -(-len(row) // 1024)  # the maximum target takes every subline
    # The line quality is shared by a line's sublines: some lines have no valid answer.
    for line in range(N):
        row = blob.slices[line].tobytes()
        few = sampling.find_answers(seed, 2**255, 0, 0, blob.data_root, line, row, 2)
        if few:
            break
    assert 1 <= len(few) <= 2
    for subline, sectors, proofs in few:
        assert b"".join(sectors) == row[subline * 1024:(subline + 1) * 1024]
        assert sampling.is_valid_answer(sampling.answer_quality(
            seed, 0, 0, blob.data_root, line, subline, b"".join(sectors)), 2**255)
        assert len(proofs) == len(sectors)


def test_only_c0s_attested_registry_is_accepted() -> None:
    """A registry with another key, another stake (votes), or not signed by C0's
    attestation key is rejected with a typed error and leaves the state unchanged."""
    chain, registry = Chain(da_config()), make_registry(votes=3)
    disperser = disperser_account(SEED, 0)
    good = attested(registry)
    impostor = da_signer_identity(SEED, 9)
    s0 = registry.signers[0]
    wrong_key = EpochRegistry(0, registry.seed, (EpochSigner(
        s0.address, impostor.bls_pubkey, s0.votes,
        bls.sign(impostor.bls_secret, epoch_message(0, registry.seed))), *registry.signers[1:]))
    wrong_stake = EpochRegistry(0, registry.seed, (EpochSigner(
        s0.address, s0.bls_pubkey, 12, s0.signature), *registry.signers[1:]))
    forged = [
        [wrong_key.encode(), good[1]],  # C0's signature of another registry
        [wrong_stake.encode(), good[1]],
        attested(registry, key=disperser),  # well-formed, but not C0's key
        [registry.encode(), b"\x00" * 65],  # malformed signature
    ]
    before = dict(chain.state)
    for args in forged:
        [receipt] = chain.block((disperser, "register_epoch", *args))
        assert not receipt.ok, args
        assert "UNTRUSTED" in receipt.error or "attest" in receipt.error, receipt.error
    changed = {k for k in set(chain.state) | set(before) if chain.state.get(k) != before.get(k)}
    assert all(b"/epoch/" not in k and b"quorums/" not in k and b"latest_epoch" not in k
               for k in changed), changed
    assert chain.query("epoch", 0) is None and chain.query("quorums", 0) == []
    with pytest.raises(UntrustedRegistry):
        verify_attested(wrong_stake, good[1], c0_attestor(SEED).address)
    module = chain.machine.modules["da"]
    with pytest.raises(UntrustedEpochRegistry):
        module.tx_register_epoch(_Ctx(chain), *forged[0])
    [ok] = chain.block((disperser, "register_epoch", *good))
    assert ok.ok, ok.error
    assert chain.query("registry_hash", 0) == registry.hash


class _Ctx:
    """Just enough of a tx context to call a module method directly."""

    def __init__(self, chain: Chain) -> None:
        self.overlay = Overlay(chain.state.get)

    def state(self, name: str) -> ModuleState:
        return ModuleState(self.overlay, name)


def certify_setup(payload: bytes) -> tuple:
    """A chain with an epoch and a deposit, and a certify tx of one blob (not applied)."""
    chain, registry = Chain(da_config()), make_registry(votes=3)
    disperser = disperser_account(SEED, 0)
    chain.block((disperser, "register_epoch", *attested(registry)),
                (disperser, "deposit", 1_000))
    header = BlobHeader(encode_blob(payload, K, N).data_root, 400, 0, 0, 0)
    cert = certificate(registry, [header], [0, 1, 2])
    tx = make_tx(disperser, 0, chain.nonces[disperser.address], "da", "certify", [cert])
    return chain, registry, disperser, cert, tx


def test_a_certificate_checked_at_mempool_entry_is_not_checked_again(monkeypatch) -> None:
    from zg_actors.da import module as da_module

    chain, registry, disperser, cert, tx = certify_setup(b"prepared" * 50)
    chain.machine.prepare(chain.state.get, tx)  # what a validator does on mempool entry
    checks = []
    real = da_module.verify_da_certificate
    monkeypatch.setattr(da_module, "verify_da_certificate",
                        lambda *a: checks.append(a) or real(*a))
    [good] = chain.block((disperser, "certify", cert))
    assert good.ok and checks == []  # the block reused the entry check
    other = BlobHeader(keccak256(b"other"), 400, 0, 0, 0)
    [forged] = chain.block((disperser, "certify", certificate(registry, [other], [0, 1])))
    assert not forged.ok and len(checks) == 1  # an unseen certificate is checked in full
    bad = make_tx(disperser, 0, 99, "da", "certify", [b"\x01junk"])
    chain.machine.prepare(chain.state.get, bad)  # malformed: prepare decides nothing


def test_a_certificate_checked_in_two_threads_at_once_is_checked_once(monkeypatch) -> None:
    """A validator prepares a certificate in a worker thread; a proposal carrying it can
    reach block execution meanwhile. The second caller waits for the running check."""
    import threading
    import time

    from zg_actors.da import module as da_module

    chain, registry, disperser, cert, tx = certify_setup(b"raced" * 80)
    checks, started = [], threading.Event()
    real = da_module.verify_da_certificate

    def slow_check(*args):
        checks.append(args)
        started.set()
        time.sleep(0.3)  # a py_ecc check takes ~0.8 s
        return real(*args)

    monkeypatch.setattr(da_module, "verify_da_certificate", slow_check)
    worker = threading.Thread(target=chain.machine.prepare, args=(chain.state.get, tx))
    worker.start()
    assert started.wait(10)
    [receipt] = chain.block((disperser, "certify", cert))  # while the worker still checks
    worker.join(10)
    assert receipt.ok and len(checks) == 1
