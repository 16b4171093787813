"""The inbox: which peer messages a validator counts now, keeps for a coming height, or
takes as a sign to catch up, and the checks a proposal or vote passes first."""

import pytest

from zg_actors.chain.block import PRECOMMIT, PREVOTE, proposal_sign_bytes, vote_sign_bytes
from zg_actors.chain.consensus import Vote, VoteType
from zg_actors.chain.gossip import MessageKind
from zg_actors.chain.inbox import (
    FUTURE_HEIGHTS_BUFFERED,
    Inbox,
    NotProposer,
    Routing,
    UnknownVoter,
    check_proposal,
    check_vote_signature,
    vote_of,
)
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.errors import InvalidSignature

from .helpers import make_node, small_config

SEED = "zg-devnet"
VSET = ValidatorSet.from_list([
    ValidatorInfo(validator_identity(SEED, i).address, validator_identity(SEED, i).bls_pubkey,
                  100) for i in range(4)])
BY_ADDRESS = {validator_identity(SEED, i).address: validator_identity(SEED, i) for i in range(4)}


def key_of(index: int) -> int:
    """The BLS secret of the validator at `index` of VSET (the set is ordered by address)."""
    return BY_ADDRESS[VSET.validators[index].address].bls_secret


def vote_message(height: int) -> tuple:
    return MessageKind.PREVOTE, (height, 0, PREVOTE, b"", 0, b"sig")


def test_messages_for_committed_heights_are_held_and_dropped() -> None:
    inbox = Inbox()
    assert inbox.route(4, 5, True, vote_message(4)) == Routing(held=True)
    assert not inbox.buffered


def test_messages_for_the_height_being_voted_on_are_handled_now() -> None:
    inbox = Inbox()
    assert inbox.route(5, 5, True, vote_message(5)) == Routing(held=None)
    assert not inbox.buffered


def test_a_message_for_the_height_we_wait_to_start_wakes_us_and_is_kept() -> None:
    inbox = Inbox()
    assert inbox.route(5, 5, False, vote_message(5)) == Routing(held=True, wake=True)
    assert inbox.take(5) == [vote_message(5)]
    assert inbox.take(5) == []


def test_messages_ahead_are_kept_a_few_heights_and_start_a_catch_up() -> None:
    inbox = Inbox()
    last_kept = 5 + FUTURE_HEIGHTS_BUFFERED
    assert inbox.route(6, 5, True, vote_message(6)) == Routing(held=True, sync=True)
    assert inbox.route(last_kept, 5, True, vote_message(last_kept)) == Routing(
        held=True, sync=True)
    # Too far ahead: not held (the sender re-sends it later), and we are behind.
    assert inbox.route(last_kept + 1, 5, True, vote_message(last_kept + 1)) == Routing(
        held=False, sync=True)
    assert sorted(inbox.buffered) == [6, last_kept]


def test_taking_a_height_drops_what_was_kept_for_heights_below_it() -> None:
    inbox = Inbox()
    for height in (6, 7, 8):
        inbox.route(height, 5, True, vote_message(height))
    assert inbox.take(7) == [vote_message(7)]
    assert sorted(inbox.buffered) == [8]


def proposal_args(proposer: int, signer: int, height: int = 1, round_: int = 0,
                  tmp_path=None) -> tuple:
    node = make_node(tmp_path, small_config(), 0, VSET, 1)
    block = node.build_block(round_, VSET.validators[proposer].address, None, 1)
    node.close()
    signature = bls.sign(key_of(signer), proposal_sign_bytes(0, height, round_, -1, block.hash))
    return (height, round_, -1, block.encode(), proposer, signature), block


def test_a_proposal_signed_by_the_proposer_of_its_round_passes(tmp_path) -> None:
    proposer = VSET.proposer(1, 0)
    args, block = proposal_args(proposer, proposer, tmp_path=tmp_path)
    proposal = check_proposal(VSET, 0, *args)
    assert (proposal.block_hash, proposal.proposer, proposal.block.hash) == (
        block.hash, proposer, block.hash)


def test_a_proposal_from_another_validator_is_refused(tmp_path) -> None:
    other = (VSET.proposer(1, 0) + 1) % 4
    args, _ = proposal_args(other, other, tmp_path=tmp_path)
    with pytest.raises(NotProposer, match=f"validator {other} is not the proposer"):
        check_proposal(VSET, 0, *args)
    with pytest.raises(NotProposer):
        check_proposal(VSET, 0, *args[:4], 7, args[5])  # no such validator


def test_a_proposal_signed_by_someone_else_is_refused(tmp_path) -> None:
    proposer = VSET.proposer(1, 0)
    args, _ = proposal_args(proposer, (proposer + 1) % 4, tmp_path=tmp_path)
    with pytest.raises(InvalidSignature, match=f"validator {proposer}"):
        check_proposal(VSET, 0, *args)


@pytest.mark.parametrize("vote_type", [PREVOTE, PRECOMMIT])
def test_a_vote_signed_by_its_validator_passes(vote_type: int) -> None:
    signature = bls.sign(key_of(2), vote_sign_bytes(0, 3, 1, vote_type, b"\x01" * 32))
    vote = vote_of(VSET, 3, 1, vote_type, b"\x01" * 32, 2, signature)
    assert vote == Vote(3, 1, VoteType(vote_type), b"\x01" * 32, 2, signature)
    check_vote_signature(VSET, 0, vote)
    with pytest.raises(InvalidSignature, match="validator 1"):
        check_vote_signature(VSET, 0, Vote(3, 1, VoteType(vote_type), b"\x01" * 32, 1,
                                           signature))
    with pytest.raises(InvalidSignature):  # the same signature on another block
        check_vote_signature(VSET, 0, Vote(3, 1, VoteType(vote_type), b"", 2, signature))


@pytest.mark.parametrize(("vote_type", "validator"), [(3, 0), (PREVOTE, 4), (PREVOTE, -1)])
def test_a_vote_of_no_type_or_no_validator_is_refused(vote_type: int, validator: int) -> None:
    with pytest.raises(UnknownVoter):
        vote_of(VSET, 3, 1, vote_type, b"", validator, b"sig")
