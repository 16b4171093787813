"""PoRA (docs/spec/storage.md): sealing, recall, quality, difficulty, and answers checked by
the `mine` module through the real state machine, with reward accounting."""

from __future__ import annotations

import os

import pytest

from zg_actors.config import StorageConfig
from zg_actors.crypto.encoding import as_int, decode
from zg_actors.crypto.keccak import keccak256
from zg_actors.storage.constants import SEAL_BYTES
from zg_actors.storage.file import file_tree, pad
from zg_actors.storage.flow import storage_fee
from zg_actors.storage.placement import client_account
from zg_actors.storage.pora import (
    SCRATCHPAD_BYTES,
    FlowReplica,
    InvalidAnswer,
    check_answer,
    miner_id,
    retarget,
    scratchpad,
    seal,
    search,
    subtask_opens,
    unseal,
)
from zg_actors.storage.reward import answer_reward, released_decay, released_linear

from .test_storage_flow import Chain, submit_args


def test_seal_unseal_round_trip_depends_on_miner_context_and_position() -> None:
    data = os.urandom(SEAL_BYTES)
    miner, digest = os.urandom(32), os.urandom(32)
    sealed = seal(data, miner, digest, 16)
    assert sealed != data and unseal(sealed, miner, digest, 16) == data
    assert seal(data, miner, digest, 32) != sealed
    assert seal(data, os.urandom(32), digest, 16) != sealed


def test_scratchpad_is_16_kib_and_deterministic() -> None:
    pad_a, recall_a = scratchpad(bytes(64))
    pad_b, recall_b = scratchpad(bytes(64))
    assert len(pad_a) == SCRATCHPAD_BYTES == 16 * 1024
    assert (pad_a, recall_a) == (pad_b, recall_b)
    assert scratchpad(b"\x01" + bytes(63))[1] != recall_a


def test_retarget_moves_toward_wanted_answers_and_is_clamped() -> None:
    t = 2**200
    assert retarget(t, 5, 5) == t
    assert retarget(t, 5, 10) < t  # too many answers: harder
    assert retarget(t, 5, 1) > t
    assert retarget(t, 5, 0) == 2 * t
    assert retarget(t, 5, 10**9) >= t // 2


def test_release_schedules() -> None:
    assert released_linear(1000, 0, 100) == 0
    assert released_linear(1000, 50, 100) == 500
    assert released_linear(1000, 500, 100) == 1000
    year = 1000
    assert released_decay(10_000, year, 400, year) == 400  # 4% in the first year
    assert released_decay(10_000, 2 * year, 400, year) == 10_000 - 9216
    assert released_decay(10_000, year // 2, 400, year) == 200
    storage = StorageConfig(reward_lifetime_blocks=100)
    assert answer_reward(1000, 0, 50, storage) == 250
    assert answer_reward(1000, 250, 50, storage) == 125
    assert answer_reward(1000, 0, None, storage) == 0  # the segment is not full yet


def mining_chain(**changes: object) -> tuple[Chain, bytes]:
    """A chain with one two-load file in the flow and a context fixed after it (answer
    windows not spread: test_answers_before_the_miners_subtask_window_are_early does)."""
    chain = Chain(**{"storage.pricing_segment_sectors": 1024, "storage.blocks_per_epoch": 5,
                     "storage.reward_lifetime_blocks": 10, "storage.subtask_spread_blocks": 0,
                     **changes})
    client = client_account(chain.config.devnet.key_seed)
    data = os.urandom(2 * 256 * 1024)
    tree = file_tree(data)
    fee = storage_fee(list(tree.nodes), chain.config.storage.price_per_sector)
    assert chain.run(client, "submit", submit_args(tree, fee)).ok  # height 1
    while chain.height < 6:  # height 6 opens epoch 1 with the file in its context
        chain.block([])
    return chain, pad(data)


def epoch1_answer(chain: Chain, flow_data: bytes, mid: bytes):
    """Epoch 1's context and the first hit of miner id `mid` in 400 nonces on its replica."""
    context = chain.machine.query(chain.state.get, "flow", "context", (1,))
    replica = FlowReplica(flow_data[:context["flow_length"] * 256])
    target = chain.machine.query(chain.state.get, "mine", "target", ())
    answer, _ = search(replica, mid, context["digest"], 1, target,
                       chain.config.storage.max_mining_range_sectors, range(400), {})
    return context, answer


def run_mine(chain: Chain, account, method: str, args: list):
    from zg_actors.chain.tx import make_tx

    nonce = chain.nonces.get(account.address, 0)
    chain.nonces[account.address] = nonce + 1
    return chain.block([make_tx(account, 1, nonce, "mine", method, args)])[0]


def test_a_found_answer_is_accepted_once_and_paid() -> None:
    chain, flow_data = mining_chain()
    storage = chain.config.storage
    beneficiary = client_account("another-beneficiary")
    seed = b"\x07" * 32
    assert run_mine(chain, beneficiary, "register", [seed]).ok
    donor = client_account(chain.config.devnet.key_seed)
    assert run_mine(chain, donor, "donate", [10 * storage.base_reward]).ok
    context = chain.machine.query(chain.state.get, "flow", "context", (1,))
    replica = FlowReplica(flow_data[:context["flow_length"] * 256])
    assert replica.root == context["flow_root"]
    target = chain.machine.query(chain.state.get, "mine", "target", ())
    mid = miner_id(beneficiary.address, seed)
    answer, iterations = search(replica, mid, context["digest"], 1, target,
                                storage.max_mining_range_sectors, range(400), {})
    assert answer is not None, f"no hit in {iterations} iterations"
    receipt = run_mine(chain, beneficiary, "submit_answer", answer.to_args())
    assert receipt.ok, receipt.error
    pool = chain.machine.query(chain.state.get, "flow", "pool", (answer.recall_position // 1024,))
    segment = answer.recall_position // 1024
    elapsed = chain.height - 1  # the segment filled at height 1
    expected = answer_reward(pool, 0, elapsed, storage) + storage.base_reward
    assert chain.balance(beneficiary.address) == expected
    claimed = chain.machine.query(chain.state.get, "mine", "segment", (segment,))["claimed"]
    assert claimed == expected - storage.base_reward
    again = run_mine(chain, beneficiary, "submit_answer", answer.to_args())
    assert not again.ok and "duplicate" in again.error
    assert chain.balance(beneficiary.address) == expected


def test_bad_answers_are_rejected_and_pay_nothing() -> None:
    chain, flow_data = mining_chain()
    storage = chain.config.storage
    miner = client_account("miner-b")
    seed = b"\x09" * 32
    assert run_mine(chain, miner, "register", [seed]).ok
    _, answer = epoch1_answer(chain, flow_data, miner_id(miner.address, seed))
    assert answer is not None
    tampered = bytearray(answer.sealed)
    tampered[100] ^= 1
    cases = {
        "flow root": answer.to_args()[:7] + [bytes(tampered), list(answer.proof)],
        "recall position": answer.to_args()[:5] + [answer.recall_position + 16]
        + answer.to_args()[6:],
        "not registered": answer.to_args()[:3] + [os.urandom(32)] + answer.to_args()[4:],
        "no mining context": [9] + answer.to_args()[1:],
    }
    for reason, args in cases.items():
        receipt = run_mine(chain, miner, "submit_answer", args)
        assert not receipt.ok, reason
        assert reason in receipt.error, (reason, receipt.error)
    assert chain.balance(miner.address) == 0
    while chain.height <= 6 + storage.answer_window_blocks:
        chain.block([])
    late = run_mine(chain, miner, "submit_answer", answer.to_args())
    assert not late.ok and "late" in late.error


def test_answers_before_the_miners_subtask_window_are_early() -> None:
    chain, flow_data = mining_chain(**{"storage.subtask_spread_blocks": 4})
    context = chain.machine.query(chain.state.get, "flow", "context", (1,))
    # A miner whose window opens after the next block: its answer then is early.
    for n in range(200):
        miner, seed = client_account(f"subtask-miner-{n}"), bytes([n]) * 32
        mid = miner_id(miner.address, seed)
        opens = subtask_opens(context["height"], context["digest"], mid, 4)
        if opens >= chain.height + 3:
            break
    assert opens == context["height"] + (int.from_bytes(keccak256(
        context["digest"] + mid)[:8], "big") % 4)
    assert run_mine(chain, miner, "register", [seed]).ok
    _, answer = epoch1_answer(chain, flow_data, mid)
    assert answer is not None
    early = run_mine(chain, miner, "submit_answer", answer.to_args())
    assert not early.ok and f"window opens at height {opens}" in early.error
    while chain.height + 1 < opens:
        chain.block([])
    receipt = run_mine(chain, miner, "submit_answer", answer.to_args())
    assert receipt.ok, receipt.error


def test_check_answer_rejects_an_answer_for_a_harder_target() -> None:
    chain, flow_data = mining_chain()
    context = chain.machine.query(chain.state.get, "flow", "context", (1,))
    replica = FlowReplica(flow_data[:context["flow_length"] * 256])
    mid = os.urandom(32)
    answer, _ = search(replica, mid, context["digest"], 1, 2**256 // 64, 2**20, range(400), {})
    assert answer is not None
    check_answer(answer, replica.root, replica.length, 2**256 // 64, 2**20)
    with pytest.raises(InvalidAnswer, match="misses the target"):
        check_answer(answer, replica.root, replica.length, 1, 2**20)


def test_royalty_goes_to_the_first_holder_when_the_answerer_synced_from_it() -> None:
    from zg_actors.storage.placement import assigned_miners, miner_account

    chain, flow_data = mining_chain(**{"storage.base_reward": 0})
    seed_text, storage = chain.config.devnet.key_seed, chain.config.storage
    first = assigned_miners(0, 2, storage.miners, 3)[0]
    holder = miner_account(seed_text, first)
    assert chain.run(holder, "confirm", [0]).ok  # first to hold the entry: royalty owner
    assert chain.machine.query(chain.state.get, "flow", "royalty_owner", (1,)) == holder.address
    miner = client_account("syncing-miner")
    seed = b"\x05" * 32
    assert run_mine(chain, miner, "register", [seed]).ok
    assert run_mine(chain, miner, "register_source", [[0, 1]]).ok
    _, answer = epoch1_answer(chain, flow_data, miner_id(miner.address, seed))
    assert answer is not None
    segment = answer.recall_position // 1024
    pool = chain.machine.query(chain.state.get, "flow", "pool", (segment,))
    receipt = run_mine(chain, miner, "submit_answer", answer.to_args())
    assert receipt.ok, receipt.error
    reward = answer_reward(pool, 0, chain.height - 1, storage)
    royalty = reward * storage.royalty_bps // 10_000
    assert reward > 0 and royalty > 0
    assert chain.balance(miner.address) == reward - royalty
    assert chain.machine.query(chain.state.get, "mine", "royalties", (holder.address,)) == royalty
    assert chain.balance(holder.address) == royalty


def test_storage_payments_conserve_the_token_supply() -> None:
    """Balances + treasury + unclaimed pools + base pool always equal the token supply."""
    chain, flow_data = mining_chain()
    storage = chain.config.storage
    miner = client_account("conserving-miner")
    seed = b"\x03" * 32
    assert run_mine(chain, miner, "register", [seed]).ok
    assert run_mine(chain, client_account(chain.config.devnet.key_seed), "donate",
                    [5 * storage.base_reward]).ok
    _, answer = epoch1_answer(chain, flow_data, miner_id(miner.address, seed))
    assert answer is not None and run_mine(chain, miner, "submit_answer", answer.to_args()).ok

    def held() -> int:
        q = chain.machine.query
        balances = sum(as_int(decode(v)) for k, v in chain.state.items()
                       if k.startswith(b"token/bal/"))
        pools = sum(q(chain.state.get, "flow", "pool", (s,)) -
                    q(chain.state.get, "mine", "segment", (s,))["claimed"] for s in range(2))
        return (balances + q(chain.state.get, "flow", "treasury", ())["balance"] + pools
                + q(chain.state.get, "mine", "segment", (0,))["base_pool"])

    assert held() == chain.machine.query(chain.state.get, "token", "supply", ())["supply"]


def test_difficulty_retargets_at_each_epoch_start() -> None:
    chain = Chain(**{"storage.blocks_per_epoch": 3})
    start = chain.machine.query(chain.state.get, "mine", "target", ())
    while chain.height < 4:  # epoch 0 passes with no answers: the target doubles (clamp)
        chain.block([])
    assert chain.machine.query(chain.state.get, "mine", "target", ()) == 2 * start
