"""Heights: a validator's consensus on its chain, driven as the Validator actor drives it
(every effect carried out in turn), here with no actor, no Ray and no clock; and
BlockPacing, the rule for when the next height starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zg_actors.chain.block import PRECOMMIT, PREVOTE, Block, proposal_sign_bytes
from zg_actors.chain.consensus import NIL, BroadcastVote, Step
from zg_actors.chain.gossip import MessageKind
from zg_actors.chain.heights import BlockPacing, Heights
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.config import Config
from zg_actors.crypto import bls

from .helpers import (
    IDENTITIES,
    carry_out,
    commit_heights,
    identity_at,
    make_heights,
    make_node,
    small_config,
    validator_set,
)


# ---- BlockPacing -----------------------------------------------------------------------
def test_the_next_height_starts_a_block_interval_after_the_last_started_or_at_once() -> None:
    pacing = BlockPacing(block_interval_s=0.5, empty_block_interval_s=1.0,
                         height_started_at=10.0, committed_at=10.0)
    assert pacing.next_height_delay(10.2) == pytest.approx(0.3)
    assert pacing.height_started_at == pytest.approx(10.5)
    assert pacing.next_height_delay(11.5) == 0.0  # the height took longer: no wait
    assert pacing.height_started_at == 11.5


def test_with_no_executable_tx_the_next_height_waits_up_to_the_empty_interval() -> None:
    pacing = BlockPacing(block_interval_s=0.5, empty_block_interval_s=1.0,
                         height_started_at=10.0, committed_at=10.0)
    pacing.committed(20.0)
    assert pacing.idle_wait(20.25, pending_txs=0) == pytest.approx(0.75)
    assert pacing.idle_wait(20.25, pending_txs=2) == 0.0  # txs to propose: start now
    assert pacing.idle_wait(21.5, pending_txs=0) == 0.0  # idle long enough: an empty block


# ---- Heights ---------------------------------------------------------------------------
def one_of_four(tmp_path: Path, config: Config) -> tuple[ValidatorSet, ChainNode, Heights]:
    """Validator 0 of a set of four, at the start of height 1."""
    vset = validator_set(IDENTITIES)
    node = make_node(tmp_path, config, 0, vset, 1)
    heights = make_heights(node, config, identity_at(vset, 0))
    heights.start()
    return vset, node, heights


def proposers_signature(vset: ValidatorSet, block: Block) -> tuple[int, bytes]:
    """Height 1 round 0's proposer, and its signature on a proposal of `block` there."""
    index = vset.proposer(1, 0)
    message = proposal_sign_bytes(0, 1, 0, -1, block.hash)
    return index, bls.sign(identity_at(vset, index).bls_secret, message)


def test_a_lone_validator_commits_heights_and_burns_its_rewards_past_the_threshold(
        tmp_path: Path) -> None:
    config = small_config(**{"networks.reward_burn_threshold": 25 * 10**18})
    me = IDENTITIES[0]
    node = make_node(tmp_path, config, 0, validator_set([me]), 1)
    heights = make_heights(node, config, me)
    blocks = commit_heights(heights, 2)
    assert [b.height for b in blocks] == [1, 2] and node.committed.height == 2
    assert heights.machine is None and node.committed.block_hash == blocks[-1].hash
    assert heights.burn_rewards() is None  # 20 tokens earned: below the threshold
    commit_heights(heights, 1)
    burn = heights.burn_rewards()  # 30 tokens: burned, and admitted to the mempool
    assert burn is not None and len(node.mempool) == 1
    assert heights.burn_rewards() is None  # that burn is pending: not a second one
    status = heights.status()
    assert (status["height"], status["mempool"], status["in_set"]) == (3, 1, True)
    assert status["consensus"] is None and status["total_power"] == 100
    node.close()


def test_the_proposer_builds_for_half_its_propose_timeout_at_most(tmp_path: Path) -> None:
    """A block that takes longer to build than the peers' propose timeout loses the
    round: with a propose timeout too short for a second tx, each block takes one."""
    from zg_actors.chain.heights import BUILD_SHARE_OF_PROPOSE_TIMEOUT
    from zg_actors.chain.tx import make_tx
    from zg_actors.crypto.devkeys import load_account

    assert 0 < BUILD_SHARE_OF_PROPOSE_TIMEOUT < 1
    config = small_config(**{"networks.timeouts.propose_s": 1e-9,
                             "networks.timeouts.propose_delta_s": 1e-9})
    me = IDENTITIES[0]
    node = make_node(tmp_path, config, 0, validator_set([me]), 1)
    heights = make_heights(node, config, me)
    alice = load_account("zg-devnet", 0)
    txs = [make_tx(alice, 0, n, "token", "transfer", [alice.address, 1]) for n in range(3)]
    assert node.add_txs([tx.encoded for tx in txs]) == [None] * 3
    blocks = commit_heights(heights, 3)
    assert [[tx.nonce for tx in b.txs] for b in blocks] == [[0], [1], [2]]
    node.close()


def test_a_decision_for_a_height_caught_up_meanwhile_commits_nothing(tmp_path: Path) -> None:
    config = small_config()
    me = IDENTITIES[0]
    node = make_node(tmp_path, config, 0, validator_set([me]), 1)
    heights = make_heights(node, config, me)

    async def run() -> None:
        effects, _ = heights.start()
        decisions = await carry_out(heights, effects, 0.0, decide=False)
        assert heights.decide(decisions[0], 0.0) is not None
        assert heights.decide(decisions[0], 0.0) is None  # height 1 is committed

    asyncio.run(run())
    assert node.committed.height == 1
    node.close()


def test_a_proposal_counts_once_its_proposer_and_signature_check_and_its_block_validates(
        tmp_path: Path) -> None:
    vset, node, heights = one_of_four(tmp_path, small_config())
    block = node.build_block(0, identity_at(vset, vset.proposer(1, 0)).address, None, 1)
    index, signature = proposers_signature(vset, block)
    other = (index + 1) % 4
    others_signature = bls.sign(identity_at(vset, other).bls_secret,
                                proposal_sign_bytes(0, 1, 0, -1, block.hash))

    async def run() -> None:
        # Signed by another validator than the proposer, or sent as from one whose turn it
        # is not: dropped, nothing counted.
        for sender in (index, other):
            assert await heights.on_proposal(1, 0, -1, block.encode(), sender,
                                             others_signature) == (True, [])
        assert heights.machine.proposals == {}
        held, effects = await heights.on_proposal(1, 0, -1, block.encode(), index, signature)
        assert held and block.hash in heights.blocks
        assert [e.vote.block_hash for e in effects if isinstance(e, BroadcastVote)] == [
            block.hash]  # we prevote it
        assert await heights.on_proposal(1, 0, -1, block.encode(), index,
                                         b"copy") == (True, [])  # a copy: not checked again

    asyncio.run(run())
    node.close()


def test_a_proposal_whose_block_does_not_validate_is_counted_and_prevoted_nil(
        tmp_path: Path) -> None:
    vset, node, heights = one_of_four(tmp_path, small_config())
    someone_else = identity_at(vset, (vset.proposer(1, 0) + 1) % 4)
    block = node.build_block(0, someone_else.address, None, 1)  # names another proposer
    index, signature = proposers_signature(vset, block)
    held, effects = asyncio.run(heights.on_proposal(1, 0, -1, block.encode(), index,
                                                    signature))
    assert held and block.hash not in heights.blocks and 0 in heights.machine.proposals
    assert [e.vote.block_hash for e in effects if isinstance(e, BroadcastVote)] == [NIL]
    node.close()


def test_a_proposal_is_not_held_while_c0_cannot_give_the_set_its_block_switches_to(
        tmp_path: Path) -> None:
    """Every height is an epoch boundary here; the block names C0 tick 2, whose set this
    validator cannot read: the proposer is to send it again later."""
    vset, node, heights = one_of_four(tmp_path, small_config(**{"networks.epoch_blocks": 1}))
    block = node.build_block(0, identity_at(vset, vset.proposer(1, 0)).address, None, 2)
    index, signature = proposers_signature(vset, block)
    assert asyncio.run(heights.on_proposal(1, 0, -1, block.encode(), index,
                                           signature)) == (False, [])
    assert block.hash not in heights.blocks
    node.close()


def test_a_restarted_validator_starts_its_height_locked_on_the_block_it_precommitted(
        tmp_path: Path) -> None:
    config = small_config(**{"networks.epoch_blocks": 1})
    vset = validator_set(IDENTITIES)
    me = identity_at(vset, 0)
    node = make_node(tmp_path, config, 0, vset, 1)
    block = node.build_block(0, identity_at(vset, vset.proposer(1, 0)).address, None, 2)
    node.sign_vote(1, 0, PREVOTE, block.hash, block, me.bls_secret)
    node.sign_vote(1, 0, PRECOMMIT, block.hash, block, me.bls_secret)
    node.close()
    reopened = make_node(tmp_path, config, 0, vset, 1)
    heights = make_heights(reopened, config, me)
    effects, unknown_set = heights.start()
    assert heights.machine.locked_hash == block.hash and block.hash in heights.blocks
    # The block switches to C0's set at tick 2, which the restart forgot: fetch it.
    assert unknown_set is not None and unknown_set.hash == block.hash
    assert not heights.is_valid(unknown_set)  # not before that set is known
    assert heights.machine.round == 0 and effects
    reopened.close()


def test_votes_of_no_vote_type_are_dropped_and_those_of_coming_heights_kept(
        tmp_path: Path) -> None:
    _, node, heights = one_of_four(tmp_path, small_config())
    assert heights.route_vote(1, 0, 7, b"", 1, b"sig").held is True  # dropped
    assert heights.inbox.buffered == {}
    ahead = heights.route_vote(3, 0, PREVOTE, b"", 1, b"sig")
    assert (ahead.held, ahead.sync) == (True, True)
    assert heights.inbox.take(3) == [(MessageKind.PREVOTE, (3, 0, PREVOTE, b"", 1, b"sig"))]
    assert heights.route_vote(1, 0, PREVOTE, b"", 1, b"sig").held is None  # count it now
    assert heights.on_vote(1, 0, PREVOTE, b"", 1, b"bad signature") == []  # dropped
    assert heights.on_timeout(2, 0, Step.PROPOSE) == []  # a height not started
    node.close()
