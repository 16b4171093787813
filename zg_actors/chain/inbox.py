"""A validator's inbox: what to do with a peer's proposal or vote before consensus counts it.

Pure (no Ray, no clock).  A message is for a height we committed (nothing to do), for the
height we vote on (checked, then counted), or for a coming height: kept for when we start
it, up to FUTURE_HEIGHTS_BUFFERED heights ahead, and a sign that we are behind, so we
catch up from peers.  Before a message reaches the consensus machine its sender must be
the one entitled to it and its BLS signature must verify, so that a faulty peer cannot
make us count what an honest validator never signed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from zg_actors.chain.block import Block, proposal_sign_bytes, vote_sign_bytes
from zg_actors.chain.consensus import Proposal, Vote, VoteType
from zg_actors.chain.gossip import MessageKind
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.crypto import bls
from zg_actors.errors import InvalidInput, InvalidSignature

FUTURE_HEIGHTS_BUFFERED = 3  # heights ahead of ours whose messages we keep


class NotProposer(InvalidInput):
    """A proposal from a validator whose turn it is not."""

    code = "NOT_PROPOSER"


class UnknownVoter(InvalidInput):
    """A vote naming an index outside the validator set, or of no vote type."""

    code = "UNKNOWN_VOTER"


@dataclass(frozen=True)
class Routing:
    """Where a message goes.  held: whether the sender may count it as delivered, None when
    it is for the height we vote on (check and count it now); wake: a peer started the
    height we are waiting to start; sync: a peer is ahead of us, catch up."""

    held: bool | None
    wake: bool = False
    sync: bool = False


# (kind, the arguments of on_proposal or on_vote)
Message = tuple[MessageKind, tuple]


class Inbox:
    """Messages kept for heights we have not started yet."""

    def __init__(self, heights_buffered: int = FUTURE_HEIGHTS_BUFFERED) -> None:
        self.heights_buffered = heights_buffered
        self.buffered: dict[int, list[Message]] = defaultdict(list)  # {height: [message]}

    def route(self, height: int, current: int, voting: bool, message: Message) -> Routing:
        """Route a message for `height`; `current` is the height after our last commit,
        `voting` whether we have started it."""
        if height < current:
            return Routing(held=True)  # committed here already
        if height == current and voting:
            return Routing(held=None)
        held = height <= current + self.heights_buffered
        if held:
            self.buffered[height].append(message)
        return Routing(held=held, wake=height == current, sync=height > current)

    def take(self, height: int) -> list[Message]:
        """The messages kept for `height`, which we start now; older ones are dropped."""
        messages = self.buffered.pop(height, [])
        for stale in [h for h in self.buffered if h < height]:
            del self.buffered[stale]
        return messages


def check_proposal(vset: ValidatorSet, network_id: int, height: int, round_: int,
                   pol_round: int, block_raw: bytes, proposer: int,
                   signature: bytes) -> Proposal:
    """The proposal, once it is from the proposer of its round and signed by it; raises
    NotProposer, InvalidSignature, or the block's decoding error."""
    if not 0 <= proposer < len(vset) or proposer != vset.proposer(height, round_):
        raise NotProposer(f"validator {proposer} is not the proposer of height {height} "
                          f"round {round_}", proposer=proposer, height=height, round=round_)
    block = Block.decode(block_raw)  # once: it parses every tx
    message = proposal_sign_bytes(network_id, height, round_, pol_round, block.hash)
    if not bls.verify(vset.validators[proposer].bls_pubkey, message, signature):
        raise InvalidSignature(f"bad signature on the proposal of validator {proposer} at "
                               f"height {height} round {round_}", proposer=proposer)
    return Proposal(height, round_, block.hash, pol_round, block, proposer, signature)


def vote_of(vset: ValidatorSet, height: int, round_: int, vote_type: int, block_hash: bytes,
            validator: int, signature: bytes) -> Vote:
    """The vote, once it names a vote type and a validator of `vset` (its signature is
    checked apart, by check_vote_signature: a copy of a counted vote needs no check)."""
    if vote_type not in (VoteType.PREVOTE, VoteType.PRECOMMIT) or not 0 <= validator < len(
            vset):
        raise UnknownVoter(f"vote of type {vote_type} from validator {validator} of "
                           f"{len(vset)}", vote_type=vote_type, validator=validator)
    return Vote(height, round_, VoteType(vote_type), block_hash, validator, signature)


def check_vote_signature(vset: ValidatorSet, network_id: int, vote: Vote) -> None:
    """Raise InvalidSignature unless the vote's validator signed it."""
    message = vote_sign_bytes(network_id, vote.height, vote.round, int(vote.vote_type),
                              vote.block_hash)
    if not bls.verify(vset.validators[vote.validator].bls_pubkey, message, vote.signature):
        raise InvalidSignature(f"bad signature on the vote of validator {vote.validator} at "
                               f"height {vote.height} round {vote.round}",
                               validator=vote.validator)
