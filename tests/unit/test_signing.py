"""Double-sign protection: what a validator signs at a height is persisted before it is
sent, and a restarted validator sends the same proposal and votes again, never a second
value for one step, and keeps its lock (ChainNode.sign_proposal, sign_vote, restored_lock)."""

from pathlib import Path

from zg_actors.chain.block import PRECOMMIT, PREVOTE, proposal_sign_bytes, vote_sign_bytes
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity

from .helpers import make_node, sign_commit, small_config

SEED = "zg-devnet"


def genesis_set(n: int = 4) -> ValidatorSet:
    return ValidatorSet.from_list([
        ValidatorInfo(validator_identity(SEED, i).address, validator_identity(SEED, i).bls_pubkey,
                      100) for i in range(n)])


def test_a_proposer_signs_one_block_per_round_even_across_a_restart(tmp_path: Path) -> None:
    """The first proposal signed at (height, round) is persisted and is what every later
    request to sign there gets back, also from a node reopened on the same store."""
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    proposer = vset.proposer(1, 0)
    me = validator_identity(SEED, proposer)
    first = node.build_block(0, me.address, None, 1)
    signed = node.sign_proposal(1, 0, -1, first, me.bls_secret)
    assert signed.block.hash == first.hash and signed.pol_round == -1
    assert bls.verify(me.bls_pubkey, proposal_sign_bytes(0, 1, 0, -1, first.hash),
                      signed.signature)
    other = node.build_block(1, me.address, None, 1)  # another block: round 1's header
    assert other.hash != first.hash
    again = node.sign_proposal(1, 0, 0, other, me.bls_secret)
    assert (again.block.hash, again.pol_round, again.signature) == (
        first.hash, -1, signed.signature)
    node.close()
    reopened = make_node(tmp_path, config, 0, vset, 1)  # a restarted validator
    again = reopened.sign_proposal(1, 0, -1, other, me.bls_secret)
    assert (again.block.hash, again.pol_round, again.signature) == (
        first.hash, -1, signed.signature)
    # Another round is another duty: it signs the block it is given.
    assert reopened.sign_proposal(1, 1, -1, other, me.bls_secret).block.hash == other.hash
    reopened.close()


def test_a_validator_signs_one_vote_per_step_even_across_a_restart(tmp_path: Path) -> None:
    """The first vote signed at (height, round, type) is what every later request to sign
    that step gets back, also from a node reopened on the same store; it is a valid vote."""
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    me = validator_identity(SEED, 0)
    block = node.build_block(0, me.address, None, 1)
    vote = node.sign_vote(1, 0, PREVOTE, block.hash, block, me.bls_secret)
    assert vote.block_hash == block.hash
    assert bls.verify(me.bls_pubkey, vote_sign_bytes(0, 1, 0, PREVOTE, block.hash),
                      vote.signature)
    assert node.sign_vote(1, 0, PREVOTE, b"", None, me.bls_secret) == vote  # not nil now
    node.close()
    reopened = make_node(tmp_path, config, 0, vset, 1)
    assert reopened.sign_vote(1, 0, PREVOTE, b"", None, me.bls_secret) == vote
    # Another step is another duty: a nil precommit, signed as nil.
    nil = reopened.sign_vote(1, 0, PRECOMMIT, b"", None, me.bls_secret)
    assert nil.block_hash == b""
    assert bls.verify(me.bls_pubkey, vote_sign_bytes(0, 1, 0, PRECOMMIT, b""), nil.signature)
    assert reopened.sign_vote(1, 0, PRECOMMIT, block.hash, block, me.bls_secret) == nil
    reopened.close()


def test_a_precommit_locks_and_the_lock_survives_a_restart(tmp_path: Path) -> None:
    """A precommit for a block records the lock on it and the round voted in; prevotes and
    nil precommits lock nothing; a reopened node restores the latest lock and round."""
    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    me = validator_identity(SEED, 0)
    assert node.restored_lock(1) is None and node.voted_round(1) == 0
    first = node.build_block(0, me.address, None, 1)
    node.sign_vote(1, 0, PREVOTE, first.hash, first, me.bls_secret)
    node.sign_vote(1, 1, PRECOMMIT, b"", None, me.bls_secret)
    assert node.restored_lock(1) is None and node.voted_round(1) == 1
    second = node.build_block(2, me.address, None, 1)
    node.sign_vote(1, 2, PRECOMMIT, second.hash, second, me.bls_secret)
    node.close()
    reopened = make_node(tmp_path, config, 0, vset, 1)
    lock = reopened.restored_lock(1)
    assert lock is not None and (lock.round, lock.block.hash) == (2, second.hash)
    assert reopened.voted_round(1) == 2
    assert reopened.restored_lock(2) is None  # a lock holds at its height only
    reopened.close()


def test_committing_a_height_ends_its_signing_records(tmp_path: Path) -> None:
    """After the commit of height 1 nothing signed there is kept: a later height starts
    unlocked at round 0."""


    config = small_config()
    vset = genesis_set()
    node = make_node(tmp_path, config, 0, vset, 1)
    proposer = validator_identity(SEED, vset.proposer(1, 0))
    block = node.build_block(0, proposer.address, None, 1)
    node.sign_vote(1, 0, PRECOMMIT, block.hash, block, validator_identity(SEED, 0).bls_secret)
    node.commit(block, sign_commit(node, config, block.hash, 1, [0, 1, 2]))
    assert node.restored_lock(1) is None and node.voted_round(1) == 0
    assert node.signed_vote(1, 0, PRECOMMIT) is None
    node.close()
