"""The txpool's limits and fair block building, on the pure pool and on a validator node."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from zg_actors.chain.node import ChainNode
from zg_actors.chain.tx import MalformedTxBatch, NonceError, Transaction, make_tx
from zg_actors.chain.txpool import (
    AccountLimitExceeded,
    DuplicateTx,
    MempoolFull,
    NonceTooHigh,
    ReplacementUnderpriced,
    TxPool,
)
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.config import Config, TxPoolConfig
from zg_actors.crypto.accounts import Account
from zg_actors.crypto.devkeys import load_account, validator_identity

from .helpers import make_node, sign_commit, small_config

SEED = "zg-devnet"
LIMITS = TxPoolConfig(account_slots=4, account_queue=3, global_slots=12, global_queue=5,
                      max_nonce_gap=4, lifetime_s=60.0, price_bump_percent=10)
SENDERS = [Account.from_seed(f"txpool sender {i}".encode()) for i in range(8)]


def tx(sender: int, nonce: int, fee: int = 0) -> Transaction:
    return make_tx(SENDERS[sender], 0, nonce, "token", "transfer", [bytes(20), 1], fee)


def fill(pool: TxPool, sender: int, nonces: range, now: float = 0.0) -> None:
    for nonce in nonces:
        assert pool.add(tx(sender, nonce), 0, now) == []


def refusal(pool: TxPool, error: type, new: Transaction, account_nonce: int = 0) -> dict:
    """Check that `new` is refused with `error` and that the refusal changes nothing."""
    before = list(pool)
    with pytest.raises(error) as info:
        pool.add(new, account_nonce, 0.0)
    assert list(pool) == before
    return info.value.details


def test_pending_and_queued_follow_the_nonce_gap() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(0, 2))
    fill(pool, 0, range(3, 5))
    assert pool.held_by(SENDERS[0].address) == (2, 2)
    # Filling the gap makes all five pending, but account_slots is 4: the last one goes.
    assert pool.add(tx(0, 2), 0, 0.0) == [tx(0, 4)]
    assert pool.held_by(SENDERS[0].address) == (4, 0)
    assert len(pool) == 4 and pool.pending_count == 4 and pool.queued_count == 0


def test_account_slots_limit_pending_txs_per_sender() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(4))
    details = refusal(pool, AccountLimitExceeded, tx(0, 4))
    assert details["limit"] == "account_slots" and details["value"] == 4


def test_account_queue_limits_queued_txs_per_sender() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(1, 4))
    details = refusal(pool, AccountLimitExceeded, tx(0, 4))
    assert details["limit"] == "account_queue" and details["value"] == 3


def test_max_nonce_gap_counts_from_the_next_pending_nonce() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(2))
    details = refusal(pool, NonceTooHigh, tx(0, 7))  # next pending nonce 2: gap 5 > 4
    assert details == {"limit": "max_nonce_gap", "value": 5, "nonce": 7, "expected": 2}
    assert pool.add(tx(0, 6), 0, 0.0) == []  # gap 4 is allowed


def test_nonce_too_low_and_duplicates_are_refused() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(3, 4))
    refusal(pool, DuplicateTx, tx(0, 3), account_nonce=3)
    with pytest.raises(NonceError, match="nonce too low"):
        pool.add(tx(1, 2), 3, 0.0)


def test_global_slots_evicts_from_the_sender_holding_the_most() -> None:
    pool = TxPool(replace(LIMITS, account_slots=8, global_queue=12))
    fill(pool, 0, range(8))  # the flooder: 8 pending
    fill(pool, 1, range(1, 4))  # 3 queued
    fill(pool, 2, range(0, 1))
    assert len(pool) == 12
    # A pending newcomer takes the furthest queued tx of the sender with most queued first.
    assert pool.add(tx(3, 0), 0, 0.0) == [tx(1, 3)]
    # With that gone, queued txs still go before pending ones.
    assert pool.add(tx(4, 0), 0, 0.0) == [tx(1, 2)]
    assert pool.add(tx(5, 0), 0, 0.0) == [tx(1, 1)]
    # No queued tx left: the last pending tx of the biggest holder goes.
    assert pool.add(tx(6, 0), 0, 0.0) == [tx(0, 7)]
    assert pool.held_by(SENDERS[0].address) == (7, 0) and len(pool) == 12
    # The flooder itself cannot push anyone out: nobody holds more than it would.
    details = refusal(pool, MempoolFull, tx(0, 7))
    assert details["limit"] == "global_slots" and details["value"] == 12


def test_a_queued_newcomer_never_evicts_a_pending_tx() -> None:
    pool = TxPool(replace(LIMITS, account_slots=12, global_queue=12))
    fill(pool, 0, range(12))
    details = refusal(pool, MempoolFull, tx(1, 1))
    assert details["limit"] == "global_slots"


def test_global_queue_evicts_from_the_biggest_queue_or_refuses() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(1, 4))  # 3 queued
    fill(pool, 1, range(1, 3))  # 2 queued: global_queue (5) is full
    assert pool.add(tx(2, 1), 0, 0.0) == [tx(0, 3)]
    assert pool.queued_count == 5
    # Now senders 0 and 1 hold 2 queued each: a third from sender 1 is refused.
    details = refusal(pool, MempoolFull, tx(1, 3))
    assert details["limit"] == "global_queue" and details["value"] == 5


def test_queued_txs_expire_after_lifetime_and_pending_ones_do_not() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(0, 1), now=100.0)
    fill(pool, 0, range(2, 3), now=100.0)
    fill(pool, 1, range(1, 2), now=130.0)
    assert pool.expire(159.9) == []
    assert pool.expire(160.0) == [tx(0, 2)]
    assert pool.expire(1e9) == [tx(1, 1)]
    assert list(pool) == [tx(0, 0).hash]


def test_a_same_nonce_replacement_needs_the_price_bump() -> None:
    pool = TxPool(LIMITS)
    assert pool.add(tx(0, 0, fee=100), 0, 0.0) == []
    details = refusal(pool, ReplacementUnderpriced, tx(0, 0, fee=109))
    assert details == {"limit": "price_bump_percent", "value": 109, "needed": 110}
    assert pool.add(tx(0, 0, fee=110), 0, 0.0) == [tx(0, 0, fee=100)]
    assert pool[tx(0, 0, fee=110).hash].fee == 110 and len(pool) == 1


def test_a_commit_drops_stale_txs_and_promotes_queued_ones() -> None:
    pool = TxPool(LIMITS)
    fill(pool, 0, range(0, 2))
    fill(pool, 0, range(3, 5))
    assert pool.held_by(SENDERS[0].address) == (2, 2)
    # Another validator's block took nonces 0..2 (its nonce-2 tx never reached us).
    assert pool.set_account_nonce(SENDERS[0].address, 3) == [tx(0, 0), tx(0, 1)]
    assert pool.held_by(SENDERS[0].address) == (2, 0)
    assert pool.pending_count == 2 and pool.queued_count == 0


def test_blocks_take_senders_round_robin_in_nonce_order() -> None:
    pool = TxPool(replace(LIMITS, global_slots=20))
    fill(pool, 0, range(4), now=1.0)  # the flooder arrived first
    fill(pool, 1, range(2), now=2.0)
    fill(pool, 2, range(1), now=3.0)
    fill(pool, 3, range(1, 3), now=0.0)  # queued only: never offered
    order = [(SENDERS.index(_sender(t)), t.nonce) for t in pool.executable()]
    assert order == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2), (0, 3)]


def _sender(t: Transaction) -> Account:
    return next(a for a in SENDERS if a.address == t.sender)


# ---- on a validator node (LMDB, the state machine) -----------------------------------
def genesis_set() -> ValidatorSet:
    return ValidatorSet.from_list([ValidatorInfo(validator_identity(SEED, i).address,
                                                 validator_identity(SEED, i).bls_pubkey, 100)
                                   for i in range(4)])


def node_config(**changes: object) -> Config:
    return small_config(**{"networks.load_accounts": 12, "networks.max_block_txs": 40,
                           **changes})


def commit_first_block(node: ChainNode, config: Config, vset: ValidatorSet,
                       ) -> list[Transaction]:
    """Build, check and commit height 1 from the node's pool; returns the block's txs."""
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = node.build_block(0, proposer, None, 1)
    node.validate_block(block, proposer)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2, 3]))
    return list(block.txs)


def test_one_account_flooding_future_nonces_cannot_stop_honest_txs(tmp_path: Path) -> None:
    """The issue's attack on the core: one account's 4,100 zero-fee future-nonce txs, then
    honest txs, which the next block must carry. Before the txpool all 4,100 were admitted
    and a block looked only at the first 2 x max_block_txs entries in arrival order."""
    config = node_config(**{"networks.txpool.account_queue": 16})
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    attacker, honest = load_account(SEED, 10), load_account(SEED, 11)
    flood = [make_tx(attacker, 0, n, "token", "transfer", [bytes(20), 1]).encoded
             for n in range(1, 4_101)]
    results = node.add_txs(flood)
    queue = config.networks.txpool.account_queue
    assert sum(r is None for r in results) == queue
    assert results[queue].startswith("AccountLimitExceeded") and "account_queue" in results[queue]
    assert results[-1].startswith("NonceTooHigh") and "max_nonce_gap" in results[-1]
    mine = [make_tx(honest, 0, n, "token", "transfer", [bytes(20), 1]) for n in range(3)]
    assert node.add_txs([t.encoded for t in mine]) == [None] * 3
    assert commit_first_block(node, config, vset) == mine
    node.close()


def test_honest_senders_share_blocks_with_flooders(tmp_path: Path) -> None:
    """Ten accounts with 200 valid txs each arrived first; a block of 40 still carries the
    late sender's tx (round-robin), where arrival order gave it none."""
    config = node_config(**{"networks.txpool.account_slots": 200})
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    for i in range(10):
        batch = [make_tx(load_account(SEED, i), 0, n, "token", "transfer", [bytes(20), 1])
                 for n in range(200)]
        assert node.add_txs([t.encoded for t in batch]) == [None] * 200
    late = make_tx(load_account(SEED, 11), 0, 0, "token", "transfer", [bytes(20), 1])
    assert node.add_txs([late.encoded]) == [None]
    block = commit_first_block(node, config, vset)
    assert len(block) == 40 and late in block
    assert len(node.mempool) == 2_000 + 1 - 40
    node.close()


def test_a_call_to_an_unknown_method_is_refused_at_entry(tmp_path: Path) -> None:
    config = node_config()
    node = make_node(tmp_path, config, 0, genesis_set(), 1)
    alice = load_account(SEED, 0)
    [error] = node.add_txs([make_tx(alice, 0, 0, "token", "nope", []).encoded])
    assert error.startswith("UnknownTxMethod") and "'nope'" in error
    assert len(node.mempool) == 0 and node.store.keys("mempool") == []
    node.close()


@pytest.mark.parametrize("batch", ["not a list", b"\xc1\x80", "one bad element"])
def test_a_batch_that_is_not_a_list_of_bytes_is_refused_whole(tmp_path: Path,
                                                              batch: object) -> None:
    config = node_config()
    node = make_node(tmp_path, config, 0, genesis_set(), 1)
    good = make_tx(load_account(SEED, 0), 0, 0, "token", "transfer", [bytes(20), 1]).encoded
    if batch == "one bad element":
        batch, where = [good, 7, good], "tx 1 of 3 is int 7"
    else:
        where = f"got {type(batch).__name__}"
    for call in (node.prepare_txs, node.add_txs):
        with pytest.raises(MalformedTxBatch, match=where):
            call(batch)
    assert len(node.mempool) == 0 and node.store.keys("mempool") == []
    node.close()


def test_a_restarted_node_reloads_its_pool_within_the_limits(tmp_path: Path) -> None:
    """Persisted txs go back through the entry checks and the limits of the config the
    node restarts with; queued txs past their lifetime and what no longer fits are
    deleted from the store."""
    config = node_config(**{"networks.txpool.account_queue": 10})
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    alice, bob = load_account(SEED, 0), load_account(SEED, 1)
    pending = [make_tx(alice, 0, n, "token", "transfer", [bytes(20), 1]) for n in range(3)]
    queued = [make_tx(bob, 0, n, "token", "transfer", [bytes(20), 1]) for n in range(1, 11)]
    assert node.add_txs([t.encoded for t in pending + queued]) == [None] * 13
    node.close()
    stricter = node_config(**{"networks.txpool.account_queue": 4})
    again = make_node(tmp_path, stricter, 0, vset, 1)
    assert again.mempool.held_by(alice.address) == (3, 0)
    assert again.mempool.held_by(bob.address) == (0, 4)
    assert sorted(again.store.keys("mempool")) == sorted(again.mempool)
    again.close()
    short = node_config(**{"networks.txpool.lifetime_s": 1e-9})
    expired = make_node(tmp_path, short, 0, vset, 1)
    assert sorted(expired.mempool) == sorted(t.hash for t in pending)
    assert sorted(expired.store.keys("mempool")) == sorted(t.hash for t in pending)
    expired.close()


def test_a_commit_deletes_stale_txs_from_the_store(tmp_path: Path) -> None:
    """Another proposer's block took a different tx of the same nonce: ours is stale now,
    and leaves the pool and the store with the commit; the queued tx behind it stays."""
    config = node_config()
    vset = genesis_set()
    node, peer = make_node(tmp_path, config, 0, vset, 1), make_node(tmp_path, config, 0, vset,
                                                                    1, "v1")
    alice = load_account(SEED, 0)
    ours = make_tx(alice, 0, 0, "token", "transfer", [bytes(20), 1])
    theirs = make_tx(alice, 0, 0, "token", "transfer", [bytes(20), 2])
    later = make_tx(alice, 0, 2, "token", "transfer", [bytes(20), 1])
    assert node.add_txs([ours.encoded, later.encoded]) == [None, None]
    [error] = node.add_txs([theirs.encoded])
    assert error.startswith("ReplacementUnderpriced") and "price_bump_percent" in error
    assert peer.add_txs([theirs.encoded]) == [None]
    proposer = vset.validators[vset.proposer(1, 0)].address
    block = peer.build_block(0, proposer, None, 1)
    node.validate_block(block, proposer)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2, 3]))
    assert list(node.mempool) == [later.hash] and node.store.keys("mempool") == [later.hash]
    assert node.mempool.held_by(alice.address) == (0, 1)
    node.close()
    peer.close()
