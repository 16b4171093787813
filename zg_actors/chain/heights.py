"""The height a validator votes on, from its start to its commit, and when the next starts.

No Ray, no timers, no clock (the time is passed in).  Heights joins the Tendermint machine
of one height (chain/consensus.py) to the chain (chain/node.py): it starts the machine on
the validator set in force and the lock kept across a restart, proposes, admits only
proposals whose block validates, signs through ChainNode (which persists what it signs
first), commits a decision with its certificate and burns the rewards it earned.  C0 is
read through StakingView.  The Validator actor carries out the effects it returns (timers,
sends); unit tests drive it with no actor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from zg_actors.chain.block import Block
from zg_actors.chain.consensus import (
    ConsensusMachine,
    Decide,
    Effect,
    Proposal,
    Step,
    TimeoutConfig,
    Vote,
)
from zg_actors.chain.gossip import MessageKey, MessageKind
from zg_actors.chain.inbox import (
    Inbox,
    Message,
    Routing,
    check_proposal,
    check_vote_signature,
    vote_of,
)
from zg_actors.chain.node import ChainNode
from zg_actors.chain.staking_view import StakingView
from zg_actors.chain.stats import ValidatorStats
from zg_actors.chain.validator_set import refresh_tick
from zg_actors.crypto.devkeys import BlsIdentity
from zg_actors.errors import ZgError

log = logging.getLogger(__name__)

# The proposer stops adding txs to its block after this share of the round's propose
# timeout: the others' timeouts started about when its round did, so a block that takes
# longer to build reaches them after they prevoted nil and the round is lost, its
# execution wasted (a gas-full block of ERC-20 transfers is ~575 txs, about 1 s of py-evm
# on a free core). The rest of the timeout is for sending the block and for peers that
# started the round a little earlier.
BUILD_SHARE_OF_PROPOSE_TIMEOUT = 0.5


@dataclass
class BlockPacing:
    """When the next height starts.

    block_interval_s after the last height started (CometBFT's timeout_commit), at once
    when that has passed.  As CometBFT with create_empty_blocks_interval: with no
    executable tx in the mempool the height starts when one becomes executable (a
    future-nonce tx waits for the tx that fills its gap) or a peer's message for it
    arrives, or empty_block_interval_s after the last commit, whichever is first.  An idle
    network then costs a block per empty_block_interval_s instead of one per
    block_interval_s, and a tx arriving at an idle network is proposed at once.  Unlike
    CometBFT, no proof block follows a block with txs: a header holds its own state root
    and the commit certificate is stored at commit, so nothing waits for the next block.
    """

    block_interval_s: float
    empty_block_interval_s: float
    height_started_at: float  # block time counts from here
    committed_at: float  # of the last block

    def committed(self, now: float) -> None:
        self.committed_at = now

    def next_height_delay(self, now: float) -> float:
        """Seconds until the next height may start, counted from the last one's start."""
        delay = max(0.0, self.block_interval_s - (now - self.height_started_at))
        self.height_started_at = now + delay
        return delay

    def idle_wait(self, now: float, pending_txs: int) -> float:
        """Seconds to wait for txs before starting the next height; 0: start it now.
        Queued (future-nonce) txs cannot go in a block: they do not count as pending."""
        if pending_txs:
            return 0.0
        return max(0.0, self.empty_block_interval_s - (now - self.committed_at))


class Heights:
    """The consensus of validator `identity` on the chain `node` keeps."""

    def __init__(self, node: ChainNode, identity: BlsIdentity, timeouts: TimeoutConfig,
                 c0: StakingView, pacing: BlockPacing, record: ValidatorStats,
                 reward_burn_threshold: int) -> None:
        self.node = node
        self.identity = identity
        self.timeouts = timeouts
        self.c0 = c0
        self.pacing = pacing
        self.record = record
        self.reward_burn_threshold = reward_burn_threshold  # rewards burned once above it
        self.machine: ConsensusMachine | None = None  # None between a commit and a start
        self.blocks: dict[bytes, Block] = {}  # {hash: block} proposed at this height, valid
        self.inbox = Inbox()
        self.network_id = node.params.network_id

    @property
    def next_height(self) -> int:
        """The height after the last commit: the one we vote on, or start next."""
        return self.node.committed.height + 1

    def my_index(self) -> int | None:
        return self.node.validator_set.index_of(self.identity.address)

    def at(self, height: int, round_: int) -> bool:
        return self.machine is not None and (self.machine.height, self.machine.round) == (
            height, round_)

    def start(self) -> tuple[list[Effect], Block | None]:
        """Start the height after the last commit, in the round last voted in and on the
        lock held before a restart.  Returns the machine's effects and, when we are locked
        on a block whose next validator set C0 must still give us, that block."""
        height = self.next_height
        vset = self.node.validator_set
        self.machine = ConsensusMachine(height, vset.powers, self.my_index(), vset.proposer,
                                        self.is_valid, self.timeouts)
        self.blocks.clear()
        lock = self.node.restored_lock(height)
        unknown_set = None
        if lock is not None:
            self.blocks[lock.block.hash] = lock.block
            self.machine.restore_lock(lock.round, lock.block.hash, lock.block)
            if not self.c0.next_set_known(self.node, lock.block):  # a restart forgot it
                unknown_set = lock.block
        return self.machine.start(self.node.voted_round(height)), unknown_set

    def is_valid(self, block: object) -> bool:
        """Tendermint's valid(v): the block validated here and its next set is known."""
        return (isinstance(block, Block) and self.blocks.get(block.hash) is block
                and self.c0.next_set_known(self.node, block))

    def count_round(self) -> None:
        if self.machine is not None:
            self.record.in_round(self.machine.height, self.machine.round)

    def on_timeout(self, height: int, round_: int, step: Step) -> list[Effect]:
        """A timeout the machine scheduled; one of a height since committed does nothing."""
        if self.machine is None or self.machine.height != height:
            return []
        return self.machine.on_timeout(height, round_, step)

    def route(self, height: int, message: Message) -> Routing:
        """Where a peer's message for `height` goes (chain/inbox.py)."""
        return self.inbox.route(height, self.next_height, self.machine is not None, message)

    def route_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                   validator: int, signature: bytes) -> Routing:
        """Where a peer's vote goes; one of no vote type is dropped (held: not re-sent)."""
        if vote_type not in (MessageKind.PREVOTE, MessageKind.PRECOMMIT):
            log.warning("network %d: vote of unknown type %r dropped", self.network_id,
                        vote_type)
            return Routing(held=True)
        return self.route(height, (MessageKind(vote_type), (
            height, round_, vote_type, block_hash, validator, signature)))

    # ---- proposing and signing -------------------------------------------------------
    async def propose(self, height: int, round_: int) -> list[Effect]:
        """Our proposal for (height, round_), if we are still there once C0 is read: the
        block signed there before a restart, else a new one; at an epoch boundary it names
        C0's final tick, so that the next epoch's set is C0's latest."""
        tick = self.node.committed.staking_tick
        if self.node.is_epoch_boundary(height):
            tick = refresh_tick(tick, await self.c0.final_tick())
        if not self.at(height, round_):
            return []
        earlier = self.node.signed_proposal(height, round_)
        if earlier is None:
            block = self.node.build_block(
                round_, self.identity.address, self.node.certificate_at(height - 1), tick,
                BUILD_SHARE_OF_PROPOSE_TIMEOUT * self.timeouts.delay(Step.PROPOSE, round_))
        else:
            block = earlier.block
            await self.c0.fetch_next_set(self.node, block)  # a restart forgot its set
            if not self.at(height, round_):
                return []
        self.blocks[block.hash] = block
        return self.machine.propose(block.hash, block)

    def sign_proposal(self, proposal: Proposal) -> tuple[MessageKey, Message]:
        """Our proposal signed (or the one signed before a restart), as peers receive it."""
        signed = self.node.sign_proposal(proposal.height, proposal.round, proposal.pol_round,
                                         proposal.block, self.identity.bls_secret)
        if signed.block.hash != proposal.block.hash:
            log.info("network %d: re-sending our earlier proposal at height %d round %d",
                     self.network_id, proposal.height, proposal.round)
            self.blocks[signed.block.hash] = signed.block
        return (proposal.height, proposal.round, MessageKind.PROPOSAL), (
            MessageKind.PROPOSAL, (proposal.height, proposal.round, signed.pol_round,
                                   signed.block.encode(), proposal.proposer, signed.signature))

    def sign_vote(self, vote: Vote) -> tuple[MessageKey, Message]:
        """Our vote signed (or the one signed before a restart), as peers receive it."""
        signed = self.node.sign_vote(vote.height, vote.round, int(vote.vote_type),
                                     vote.block_hash, self.blocks.get(vote.block_hash),
                                     self.identity.bls_secret)
        if signed.block_hash != vote.block_hash:
            log.info("network %d: re-sending our earlier vote at height %d round %d",
                     self.network_id, vote.height, vote.round)
        kind = MessageKind(vote.vote_type)
        return (vote.height, vote.round, kind), (kind, (
            vote.height, vote.round, int(vote.vote_type), signed.block_hash, vote.validator,
            signed.signature))

    # ---- peers' messages for the height we vote on -----------------------------------
    async def on_proposal(self, height: int, round_: int, pol_round: int, block_raw: bytes,
                          proposer: int, signature: bytes) -> tuple[bool, list[Effect]]:
        """Count a peer's proposal for the height we vote on once its proposer and signature
        check; its block counts as valid only once it validates.  Returns whether we hold
        it (False: C0's next set could not be read, the proposer sends it again) and the
        effects.  A copy of one we have, or one failing a check, is dropped: a faulty peer
        sends nothing we count."""
        if round_ in self.machine.proposals:
            return True, []
        try:
            proposal = check_proposal(self.node.validator_set, self.network_id, height,
                                      round_, pol_round, block_raw, proposer, signature)
        except ZgError as exc:
            log.warning("network %d: proposal dropped: %s", self.network_id, exc)
            return True, []
        block: Block = proposal.block
        if not await self.c0.fetch_next_set(self.node, block):
            return False, []
        if self.machine is None or self.machine.height != height:
            return True, []  # committed meanwhile
        vset = self.node.validator_set
        try:
            self.node.validate_block(
                block, vset.validators[vset.proposer(height, block.header.round)].address)
            self.blocks[block.hash] = block
        except ZgError as exc:
            log.warning("network %d height %d: invalid block: %s", self.network_id, height,
                        exc)
        return True, self.machine.on_proposal(proposal)

    def on_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                validator: int, signature: bytes, verified: bool = False) -> list[Effect]:
        """Count a vote once it names a validator and its signature verifies (`verified`:
        ours, signed here); a copy of a counted vote is not checked again."""
        vset = self.node.validator_set
        try:
            vote = vote_of(vset, height, round_, vote_type, block_hash, validator, signature)
            if self.machine.has_vote(vote):
                return []
            if not verified:
                check_vote_signature(vset, self.network_id, vote)
        except ZgError as exc:
            log.warning("network %d: vote dropped: %s", self.network_id, exc)
            return []
        return self.machine.on_vote(vote)

    # ---- commit ----------------------------------------------------------------------
    def decide(self, decision: Decide, now: float) -> Block | None:
        """Commit a decided block with the certificate its precommits make; None when the
        height was committed already (caught up meanwhile)."""
        if decision.height != self.next_height:
            return None
        block: Block = decision.block
        if self.node.is_epoch_boundary(block.height):
            self.node.next_set = self.c0.sets_by_tick.get(block.header.staking_tick)
        cert = self.node.make_certificate(
            decision.height, decision.round, decision.block_hash,
            [(v.validator, v.signature) for v in decision.precommits])
        self.committed(block, self.node.commit(block, cert), now)
        return block

    def committed(self, block: Block, latencies: list[float], now: float) -> None:
        """Record a block committed at `now`, decided here or caught up."""
        self.machine = None
        self.pacing.committed(now)
        new_set = self.node.is_epoch_boundary(block.height) or block.height == 1
        self.record.committed(block, latencies, len(self.node.mempool),
                              self.node.validator_set if new_set else None,
                              self.node.evm_commit(block))

    def burn_rewards(self) -> bytes | None:
        """Our reward burn tx, once the rewards we earned here pass the threshold, admitted
        to the mempool (for peers to get too).  Rewards reach C0 through the bridge:
        burned here, minted there (chain/relayer.py)."""
        tx = self.node.reward_burn(self.identity.account, self.reward_burn_threshold)
        if tx is not None and self.node.add_txs([tx.encoded]) == [None]:
            return tx.encoded
        return None

    def status(self) -> dict:
        """The chain and consensus figures of a validator's status."""
        vset = self.node.validator_set
        return {"height": self.node.committed.height, "mempool": len(self.node.mempool),
                "mempool_pending": self.node.mempool.pending_count,
                "consensus": None if self.machine is None else {
                    "height": self.machine.height, "round": self.machine.round,
                    "step": self.machine.step.name},
                "rounds": self.record.rounds, "committed_txs": self.record.committed_txs,
                "in_set": self.my_index() is not None,
                "validators": [{"address": "0x" + v.address.hex(), "power": v.power}
                               for v in vset.validators],
                "total_power": vset.total_power}
