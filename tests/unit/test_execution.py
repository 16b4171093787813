from pathlib import Path

import pytest

from zg_actors.chain.block import Block, InvalidBlock
from zg_actors.chain.execution import FeeUnpayable
from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.node import (
    lock_key,
    proposal_key,
    round_key,
    signed_key_height,
    vote_key,
)
from zg_actors.chain.tx import (
    MalformedTransaction,
    NonceError,
    TxSignatureInvalid,
    TxTooLarge,
    WrongNetwork,
    decode_tx,
    make_tx,
)
from zg_actors.chain.txpool import DuplicateTx
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.devkeys import load_account, validator_identity

from .helpers import make_node, sign_commit, small_config

SEED = "zg-devnet"


def genesis_set(n: int = 4, powers: list[int] | None = None) -> ValidatorSet:
    powers = powers or [100] * n
    return ValidatorSet.from_list([
        ValidatorInfo(validator_identity(SEED, i).address, validator_identity(SEED, i).bls_pubkey,
                      powers[i]) for i in range(n)])


def test_transfer_fee_nonce_and_failed_receipts() -> None:
    config = small_config(**{"networks.block_reward": 10})
    machine = build_state_machine(config, 0)
    state: dict[bytes, bytes] = {}
    for key, value in machine.genesis(state.get).writes():
        state[key] = value
    alice, bob = load_account(SEED, 0), load_account(SEED, 1)
    proposer = validator_identity(SEED, 0).address
    txs = [make_tx(alice, 0, 0, "token", "transfer", [bob.address, 5], fee=2),
           make_tx(alice, 0, 1, "token", "transfer", [bob.address, 10**40], fee=2),
           make_tx(alice, 0, 2, "token", "nope", [], fee=2)]
    included, rejected, result = machine.build_block(
        state.get, BlockInfo(0, 1, 1, proposer), txs, b"\x00" * 32)
    assert [tx.nonce for tx in included] == [0, 1, 2] and rejected == []
    receipts = result.receipts[1:]
    assert [r.ok for r in receipts] == [True, False, False]
    assert "short by" in receipts[1].error and "no method 'nope'" in receipts[2].error
    get = result.overlay.get
    assert machine.query(get, "token", "balance", (bob.address,)) == \
        config.networks.load_account_balance + 5
    assert machine.query(get, "token", "balance", (proposer,)) == 10 + 6  # reward + 3 fees
    assert machine.account_nonce(get, alice.address) == 3


def test_block_building_respects_limits_and_skips_bad_txs() -> None:
    config = small_config(**{"networks.max_block_txs": 3})
    machine = build_state_machine(config, 0)
    state: dict[bytes, bytes] = dict(machine.genesis({}.get).writes())
    alice = load_account(SEED, 0)
    poor = Account.from_seed(b"no funds")
    txs = [make_tx(alice, 0, n, "token", "transfer", [alice.address, 1]) for n in range(5)]
    unpayable = make_tx(poor, 0, 0, "token", "transfer", [alice.address, 1], fee=1)
    gap = make_tx(load_account(SEED, 1), 0, 5, "token", "transfer", [alice.address, 1])
    included, rejected, _ = machine.build_block(state.get, BlockInfo(0, 1, 1, bytes(20)),
                                                [unpayable, gap, *txs], b"\x00" * 32)
    assert [tx.nonce for tx in included] == [0, 1, 2]
    assert [type(e) for _, e in rejected] == [FeeUnpayable]  # the nonce gap just waits


def test_a_proposer_out_of_time_ends_its_block_but_includes_one_tx(tmp_path: Path) -> None:
    """Block building stops once its time is spent (a block that takes longer to execute
    than the peers wait loses the round), yet never proposes an empty block for it: the
    txs left out stay pending for the next block."""
    config = small_config()
    machine = build_state_machine(config, 0)
    state: dict[bytes, bytes] = dict(machine.genesis({}.get).writes())
    alice = load_account(SEED, 0)
    txs = [make_tx(alice, 0, n, "token", "transfer", [alice.address, 1]) for n in range(5)]
    checks = []

    def out_of_time() -> bool:
        checks.append(len(checks))
        return len(checks) > 2  # time runs out after the third tx is in

    included, rejected, _ = machine.build_block(state.get, BlockInfo(0, 1, 1, bytes(20)),
                                                txs, b"\x00" * 32, out_of_time)
    assert [tx.nonce for tx in included] == [0, 1, 2] and rejected == []
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    assert node.add_txs([tx.encoded for tx in txs]) == [None] * 5
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1, budget_s=0.0)
    assert [tx.nonce for tx in block.txs] == [0]
    node.validate_block(block, proposer)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2]))
    assert node.mempool.pending_count == 4
    assert len(node.build_block(0, proposer, None, 1).txs) == 4  # no budget: all of them
    node.close()


@pytest.mark.parametrize("mutate", ["network", "signature", "nonce", "size", "malformed"])
def test_mempool_entry_checks(tmp_path: Path, mutate: str) -> None:
    config = small_config(**{"networks.max_tx_bytes": 512})
    node = make_node(tmp_path, config, 0, genesis_set(), 1)
    alice = load_account(SEED, 0)
    good = make_tx(alice, 0, 0, "token", "transfer", [alice.address, 1])
    assert node.add_txs([good.encoded]) == [None]
    bad, expected = {
        "network": (make_tx(alice, 1, 1, "token", "transfer", [alice.address, 1]).encoded,
                    WrongNetwork),
        "signature": (good.encoded[:-10] + bytes(10), TxSignatureInvalid),
        "nonce": (good.encoded, DuplicateTx),
        "size": (make_tx(alice, 0, 1, "token", "transfer", [b"x" * 600, 1]).encoded, TxTooLarge),
        "malformed": (b"\xc1\x80", MalformedTransaction),
    }[mutate]
    [error] = node.add_txs([bad])
    assert error is not None and error.startswith(expected.__name__)
    assert list(node.mempool) == [good.hash]
    node.close()


def test_replayed_nonce_after_commit_is_rejected(tmp_path: Path) -> None:
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    tx = make_tx(load_account(SEED, 0), 0, 0, "token", "transfer", [bytes(20), 1])
    node.add_txs([tx.encoded])
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1)
    node.validate_block(block, proposer)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2]))
    [error] = node.add_txs([tx.encoded])
    assert error is not None and "replay" in error and NonceError.__name__ in error
    node.close()


def test_invalid_blocks_are_rejected(tmp_path: Path) -> None:
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    node.add_txs([make_tx(load_account(SEED, 0), 0, 0, "token", "transfer",
                          [bytes(20), 1]).encoded])
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1)
    other = vset.validators[(vset.proposer(1, 0) + 1) % 4].address
    with pytest.raises(InvalidBlock, match="proposer"):
        node.validate_block(block, other)
    from dataclasses import replace

    bad_root = Block(replace(block.header, state_root=b"\x01" * 32), block.txs, None)
    with pytest.raises(InvalidBlock, match="state or receipt root"):
        node.validate_block(bad_root, proposer)
    dropped = Block(block.header, (), None)
    with pytest.raises(InvalidBlock, match="tx root"):
        node.validate_block(dropped, proposer)
    node.close()


def test_node_recovers_from_its_store(tmp_path: Path) -> None:
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    txs = [make_tx(load_account(SEED, i), 0, 0, "token", "transfer", [bytes(20), 1])
           for i in range(3)]
    node.add_txs([tx.encoded for tx in txs])
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2, 3]))
    pending = make_tx(load_account(SEED, 3), 0, 0, "token", "transfer", [bytes(20), 2])
    node.add_txs([pending.encoded])
    node.close()
    again = make_node(tmp_path, config, 0, vset, 1)
    assert again.committed.height == 1 and again.committed.block_hash == block.hash
    assert list(again.mempool) == [pending.hash]
    assert decode_tx(again.mempool[pending.hash].encoded) == pending
    assert again.balance(proposer) == config.networks.block_reward
    again.close()


def test_commit_prunes_what_the_validator_signed_at_that_height(tmp_path: Path) -> None:
    """Votes, round and lock records of a committed height go with the commit; those of
    the next height (and keys of no known format) stay."""
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    kept = [vote_key(2, 0, 1), round_key(2), lock_key(2), proposal_key(2, 1), b"unknown"]
    pruned = [vote_key(1, 0, 1), vote_key(1, 0, 2), vote_key(1, 3, 2), round_key(1),
              lock_key(1), proposal_key(1, 0), proposal_key(1, 2), vote_key(0, 0, 1)]
    node.store.write([("signed", key, b"x") for key in kept + pruned])
    assert [signed_key_height(k) for k in kept] == [2, 2, 2, 2, None]
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2, 3]))
    assert sorted(node.store.keys("signed")) == sorted(kept)
    node.close()


def test_proposer_rotation_is_stake_weighted() -> None:
    vset = genesis_set(4, [30, 10, 10, 10])
    counts = {v.power: 0 for v in vset.validators}
    proposals = [0] * 4
    for height in range(600):
        proposals[vset.proposer(height, 0)] += 1
    shares = sorted(zip(vset.powers, proposals, strict=True))
    assert shares == [(10, 100), (10, 100), (10, 100), (30, 300)]
    assert len(counts) == 2
    assert vset.proposer(5, 1) == vset.proposer(6, 0)  # a new round moves on


def test_preparing_txs_off_the_event_loop_admits_nothing(tmp_path: Path) -> None:
    """prepare_txs (run in a worker thread) skips what does not decode and leaves the
    mempool and the store to add_txs."""
    config = small_config()
    node = make_node(tmp_path, config, 0, genesis_set(), 1)
    alice, bob = load_account(SEED, 0), load_account(SEED, 1)
    tx = make_tx(alice, 0, 0, "token", "transfer", [bob.address, 5], fee=2)
    node.prepare_txs([b"\x01junk", tx.encoded])
    assert len(node.mempool) == 0 and node.store.keys("mempool") == []
    assert node.add_txs([tx.encoded]) == [None] and list(node.mempool) == [tx.hash]
    node.close()


def test_a_bug_inside_a_handler_fails_its_tx_instead_of_halting_block_building() -> None:
    from zg_actors.chain.modules.base import Module

    class Buggy(Module):
        name = "buggy"

        def tx_count(self, ctx, value):  # noqa: ANN001, ANN202 - a module under test
            return len(value[0])  # the bug: an item of bytes is an int

    config = small_config()
    machine = build_state_machine(config, 0)
    machine.modules["buggy"] = Buggy()
    state: dict[bytes, bytes] = {}
    for key, value in machine.genesis(state.get).writes():
        state[key] = value
    alice, bob = load_account(SEED, 0), load_account(SEED, 1)
    txs = [make_tx(alice, 0, 0, "buggy", "count", [b"\x01"]),
           make_tx(alice, 0, 1, "token", "transfer", [bob.address, 5])]
    included, rejected, result = machine.build_block(
        state.get, BlockInfo(0, 1, 1, validator_identity(SEED, 0).address), txs, b"\x00" * 32)
    assert len(included) == 2 and rejected == []
    bug, transfer = result.receipts[1:]
    assert not bug.ok and bug.error.startswith("InternalError: buggy.count raised TypeError")
    assert transfer.ok


def test_tuning_the_collector_for_execution_returns_what_to_restore() -> None:
    import gc

    from zg_actors.chain.execution import EXECUTION_GC_THRESHOLDS, tune_gc_for_execution

    before = gc.get_threshold()
    try:
        assert tune_gc_for_execution() == before
        assert gc.get_threshold() == EXECUTION_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what was alive is out of full collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
