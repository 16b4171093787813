from pathlib import Path

import pytest

from zg_actors.chain.block import PREVOTE, vote_sign_bytes
from zg_actors.chain.tx import NonceError, TxSignatureInvalid, WrongNetwork, make_tx
from zg_actors.config import ZG
from zg_actors.crypto import bls
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.devkeys import c0_account, load_account, validator_identity
from zg_actors.errors import InvalidProof
from zg_actors.staking.ledger import (
    C0_NETWORK_ID,
    AlreadyProcessed,
    BadArgument,
    DoubleSignEvidence,
    InvalidBurnProof,
    InvalidEvidence,
    StakingInsufficientBalance,
    UnknownNetwork,
    audit,
    check_invariants,
)

from .helpers import LedgerHarness, make_node, sign_commit, small_config

SEED = "zg-devnet"


@pytest.fixture
def c0() -> LedgerHarness:
    return LedgerHarness(small_config())


def c0_tx(account: Account, c0: LedgerHarness, method: str, *args: object):
    return make_tx(account, C0_NETWORK_ID, c0.ledger.nonce_of(account.address), "staking",
                   method, list(args))


def assert_books_balance(c0: LedgerHarness) -> None:
    report = c0.ledger.supply_report()
    assert check_invariants(report) == []
    recount = audit(sorted(c0.state.items()))
    assert recount == {"balances": report["total_balances"], "stakes": report["total_staked"],
                       "pending": report["total_pending"]}


def test_genesis_books_balance(c0: LedgerHarness) -> None:
    report = c0.ledger.supply_report()
    assert report["supply"] == 4 * 1_000_000 * ZG + 4 * 100_000 * ZG
    assert_books_balance(c0)


def test_erc20_transfer_approve_transfer_from(c0: LedgerHarness) -> None:
    alice, bob, carol = (c0_account(SEED, i) for i in range(3))
    c0.run(lambda ledger: ledger.apply_tx(c0_tx(alice, c0, "transfer", bob.address, 5 * ZG)))
    assert c0.ledger.balance_of(bob.address) == 1_000_005 * ZG
    c0.run(lambda ledger: ledger.apply_tx(c0_tx(alice, c0, "approve", carol.address, 3 * ZG)))
    assert c0.ledger.allowance(alice.address, carol.address) == 3 * ZG
    c0.run(lambda ledger: ledger.apply_tx(
        c0_tx(carol, c0, "transfer_from", alice.address, bob.address, 2 * ZG)))
    assert c0.ledger.allowance(alice.address, carol.address) == 1 * ZG
    assert c0.ledger.balance_of(alice.address) == (1_000_000 - 7) * ZG
    with pytest.raises(StakingInsufficientBalance, match="allowance"):
        c0.run(lambda ledger: ledger.apply_tx(
            c0_tx(carol, c0, "transfer_from", alice.address, bob.address, 2 * ZG)))
    assert_books_balance(c0)


def test_bad_input_changes_nothing(c0: LedgerHarness) -> None:
    alice, bob = c0_account(SEED, 0), c0_account(SEED, 1)
    before = dict(c0.state)
    too_much = c0_tx(alice, c0, "transfer", bob.address, 10**30)
    with pytest.raises(StakingInsufficientBalance, match="short by"):
        c0.run(lambda ledger: ledger.apply_tx(too_much))
    wrong_net = make_tx(alice, 3, 0, "staking", "transfer", [bob.address, 1])
    with pytest.raises(WrongNetwork, match="network 3"):
        c0.run(lambda ledger: ledger.apply_tx(wrong_net))
    good = c0_tx(alice, c0, "transfer", bob.address, 1)
    forged = type(good)(good.network_id, good.nonce, bob.address, good.module, good.method,
                        good.args, good.fee, good.signature)
    from zg_actors.chain.tx import _finish

    with pytest.raises(TxSignatureInvalid, match="claims sender"):
        c0.run(lambda ledger: ledger.apply_tx(_finish(forged)))
    with pytest.raises(BadArgument, match="no method"):
        c0.run(lambda ledger: ledger.apply_tx(c0_tx(alice, c0, "mint", 1)))
    assert c0.state == before
    c0.run(lambda ledger: ledger.apply_tx(good))
    with pytest.raises(NonceError, match="replay"):
        c0.run(lambda ledger: ledger.apply_tx(good))


def test_stake_unstake_unbonding_withdraw(c0: LedgerHarness) -> None:
    validator = validator_identity(SEED, 0).account
    c0.run(lambda ledger: ledger.apply_tx(c0_tx(validator, c0, "unstake", 10 * ZG)))
    pending = c0.ledger.pending_withdrawals(validator.address)
    assert [amount for amount, _ in pending] == [10 * ZG]
    with pytest.raises(BadArgument, match="nothing to withdraw"):
        c0.run(lambda ledger: ledger.apply_tx(c0_tx(validator, c0, "withdraw")))
    assert_books_balance(c0)
    for _ in range(3):
        c0.run(lambda ledger: ledger.advance_tick())
    c0.run(lambda ledger: ledger.apply_tx(c0_tx(validator, c0, "withdraw")))
    assert c0.ledger.balance_of(validator.address) == 10 * ZG
    assert c0.ledger.validator(validator.address).stake == 99_990 * ZG
    assert_books_balance(c0)


def test_register_validator_needs_proof_of_possession(c0: LedgerHarness) -> None:
    alice = c0_account(SEED, 0)
    sk = bls.keygen(b"alice-bls-key-seed-32-bytes-long!")
    pk = bls.sk_to_pk(sk)
    other_pop = bls.pop_prove(bls.keygen(b"mallory-bls-key-seed-32-bytes-lo"))
    with pytest.raises(InvalidProof, match="proof of possession"):
        c0.run(lambda ledger: ledger.apply_tx(
            c0_tx(alice, c0, "register_validator", pk, other_pop, 5_000 * ZG)))
    c0.run(lambda ledger: ledger.apply_tx(
        c0_tx(alice, c0, "register_validator", pk, bls.pop_prove(sk), 5_000 * ZG)))
    assert c0.ledger.validator(alice.address).stake == 5_000 * ZG
    assert_books_balance(c0)


def _vote_signature(identity_index: int, network: int, block_hash: bytes) -> bytes:
    identity = validator_identity(SEED, identity_index)
    return bls.sign(identity.bls_secret, vote_sign_bytes(network, 7, 0, PREVOTE, block_hash))


def _evidence(identity_index: int = 1, sig_b: bytes | None = None) -> DoubleSignEvidence:
    a, b = b"\x0a" * 32, b"\x0b" * 32
    return DoubleSignEvidence(0, 7, 0, PREVOTE, validator_identity(SEED, identity_index).address,
                              a, _vote_signature(identity_index, 0, a), b,
                              sig_b or _vote_signature(identity_index, 0, b))


def test_double_sign_slashes_jails_and_drops_power(c0: LedgerHarness) -> None:
    members = [validator_identity(SEED, i).address for i in range(4)]
    before = c0.run(lambda ledger: ledger.register_network(0, members))
    c0.run(lambda ledger: ledger.advance_tick())
    result = c0.run(lambda ledger: ledger.submit_evidence(_evidence(1)))
    assert result["slashed"] == 2_000 * ZG  # 2% of 100,000
    record = c0.ledger.validator(members[1])
    assert record.jailed and record.stake == 98_000 * ZG
    c0.run(lambda ledger: ledger.advance_tick())
    after = c0.ledger.validator_set_at(0, c0.ledger.tick - 1)
    assert len(before) == 4 and len(after) == 3
    assert members[1] not in [v.address for v in after.validators]
    assert_books_balance(c0)
    with pytest.raises(AlreadyProcessed):
        c0.run(lambda ledger: ledger.submit_evidence(_evidence(1)))


def test_forged_evidence_is_rejected_and_changes_nothing(c0: LedgerHarness) -> None:
    before = dict(c0.state)
    forged = _evidence(2, sig_b=_vote_signature(3, 0, b"\x0b" * 32))  # b signed by someone else
    with pytest.raises(InvalidEvidence, match="is not signed by"):
        c0.run(lambda ledger: ledger.submit_evidence(forged))
    same = DoubleSignEvidence(0, 7, 0, PREVOTE, forged.validator, b"\x0a" * 32,
                              forged.signature_a, b"\x0a" * 32, forged.signature_a)
    with pytest.raises(InvalidEvidence, match="same block"):
        c0.run(lambda ledger: ledger.submit_evidence(same))
    assert c0.state == before


def _network_with_burn(c0: LedgerHarness, tmp_path: Path):
    """Network 0 commits a block holding one token burn; returns (node, proof)."""
    config = c0.config
    members = [validator_identity(SEED, i).address for i in range(4)]
    vset = c0.run(lambda ledger: ledger.register_network(0, members))
    node = make_node(tmp_path, config, 0, vset, c0.ledger.tick)
    burner = load_account(SEED, 0)
    recipient = c0_account(SEED, 3).address
    burn = make_tx(burner, 0, 0, "token", "burn", [7 * ZG, recipient])
    transfer = make_tx(load_account(SEED, 1), 0, 0, "token", "transfer", [recipient, 1])
    assert node.add_txs([burn.encoded, transfer.encoded]) == [None, None]
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, node.committed.staking_tick)
    assert len(block.txs) == 2
    node.validate_block(block, proposer)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2]))
    [proof] = node.burns_in(1)
    return node, proof, recipient


def test_bridge_mints_a_burn_exactly_once(c0: LedgerHarness, tmp_path: Path) -> None:
    node, proof, recipient = _network_with_burn(c0, tmp_path)
    before = c0.ledger.balance_of(recipient)
    result = c0.run(lambda ledger: ledger.bridge_mint(proof))
    assert result["amount"] == 7 * ZG
    assert c0.ledger.balance_of(recipient) == before + 7 * ZG
    assert c0.ledger.supply_report()["minted"] == 7 * ZG
    assert_books_balance(c0)
    with pytest.raises(AlreadyProcessed, match="already minted"):
        c0.run(lambda ledger: ledger.bridge_mint(proof))
    node.close()


def test_forged_burn_proofs_are_rejected(c0: LedgerHarness, tmp_path: Path) -> None:
    node, proof, _ = _network_with_burn(c0, tmp_path)
    before = dict(c0.state)
    from dataclasses import replace

    from zg_actors.chain.block import Block

    block = Block.decode(node.block_at(1)[0])
    other_tx = block.txs[1].encoded  # the transfer, with the burn's inclusion proof
    with pytest.raises(InvalidProof):
        c0.run(lambda ledger: ledger.bridge_mint(replace(proof, tx=other_tx)))
    weak = sign_commit(node, c0.config, block.hash, 1, [0, 1])  # 2 of 4: not > 2/3
    with pytest.raises(InvalidProof, match="not more than 2/3"):
        c0.run(lambda ledger: ledger.bridge_mint(replace(proof, certificate=weak.encode())))
    with pytest.raises(InvalidBurnProof, match="malformed"):
        c0.run(lambda ledger: ledger.bridge_mint(replace(proof, header=b"\x01\x02")))
    from zg_actors.chain.block import Header

    header = Header.decode(proof.header)
    moved = replace(header, network_id=5)
    with pytest.raises(UnknownNetwork, match="unknown network id 5"):
        c0.run(lambda ledger: ledger.bridge_mint(replace(proof, header=moved.encode())))
    assert c0.state == before
    node.close()


def test_network_registration_errors(c0: LedgerHarness) -> None:
    with pytest.raises(UnknownNetwork, match="unknown network id 9"):
        c0.ledger.network(9)
    with pytest.raises(BadArgument, match="out of range"):
        c0.run(lambda ledger: ledger.register_network(C0_NETWORK_ID, []))
