"""The Validator actor: one validator identity's node on one network.

Validators of a network call each other's methods directly; no central actor decides
blocks.  The actor owns timers and messaging only: the pure ConsensusMachine
(chain/consensus.py) decides, the ChainNode (chain/node.py) keeps the chain in LMDB and
signs (persisting what it signed first), the Inbox (chain/inbox.py) routes and checks
peers' messages, Peers (chain/peers.py) re-sends ours until each peer holds them, and
StakingView (chain/staking_view.py) reads C0.  Ray lookups are passed in, so that unit
tests can drive the actor's logic with stand-in peers and C0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from zg_actors.chain.block import Block
from zg_actors.chain.consensus import (
    BroadcastProposal,
    BroadcastVote,
    ConsensusMachine,
    Decide,
    Equivocation,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Step,
    Vote,
)
from zg_actors.chain.gossip import MessageKind
from zg_actors.chain.inbox import (
    Inbox,
    Message,
    check_proposal,
    check_vote_signature,
    vote_of,
)
from zg_actors.chain.network import build_state_machine, timeout_config
from zg_actors.chain.node import ChainNode
from zg_actors.chain.peers import Peers
from zg_actors.chain.staking_view import StakingView
from zg_actors.chain.stats import ValidatorStats
from zg_actors.chain.validator_set import ValidatorSet, refresh_tick, set_changes
from zg_actors.config import config_from_dict
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.errors import NotFound, ZgError
from zg_actors.metrics import ChainMetrics
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.staking.ledger import DoubleSignEvidence

log = logging.getLogger(__name__)

SYNC_BATCH_BLOCKS = 64  # blocks one catch-up call fetches
SYNC_MIN_INTERVAL_S = 0.5  # between catch-ups started by peers' messages
MAX_WAIT_HEIGHT_S = 10.0  # a long poll holds a call this long at most; callers loop


class UnknownNetworkId(NotFound):
    code = "UNKNOWN_NETWORK"


def validator_name(network_id: int, identity: int) -> str:
    return f"zg-validator-{network_id}-{identity}"


@ray.remote(max_restarts=-1, max_task_retries=0)
class Validator:
    """One validator identity's node on one network."""

    def __init__(self, config_dict: dict, network_id: int, identity: int,
                 members: list[int], genesis_set: bytes, genesis_tick: int,
                 data_dir: str, get_actor: Callable[[str], Any] = ray.get_actor) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.crypto.bls_backend)
        self.network_id = network_id
        self.identity = validator_identity(self.config.devnet.key_seed, identity)
        self.members = members
        machine = build_state_machine(self.config, network_id)
        self.node = ChainNode(Path(data_dir) / f"network-{network_id}" / f"validator-{identity}",
                              machine.params, machine, ValidatorSet.decode(genesis_set),
                              genesis_tick, self.config.networks.epoch_blocks,
                              self.config.lmdb_map_mb, self.config.networks.txpool)
        self.timeouts = timeout_config(self.config)
        self.machine: ConsensusMachine | None = None
        self.started = False
        self.stopped = False
        self.peers = Peers(self.identity.index, members,
                           lambda peer: get_actor(validator_name(network_id, peer)))
        self.c0 = StakingView(network_id, lambda: get_actor(STAKING_ACTOR_NAME))
        self.inbox = Inbox()
        self._blocks: dict[bytes, Block] = {}  # blocks proposed at this height, valid ones
        self._last_sync = 0.0
        self._syncing = False
        self._height_started_at = time.time()  # block time counts from here
        self.record = ValidatorStats(ChainMetrics(network_id))
        self._evidence_sent: set[bytes] = set()
        self._committed_event = asyncio.Event()  # set, then replaced, at every commit
        self._committed_at = time.time()  # of the last block
        self._idle: asyncio.TimerHandle | None = None  # waiting for txs before a height

    # ---- lifecycle ----------------------------------------------------------------
    async def start(self) -> dict:
        """Begin (or resume, after a restart) consensus; idempotent."""
        if not self.started and not self.stopped:
            self.started = True
            await self._sync()
            self._start_height()
        self.peers.ensure_deliveries()
        return self.status_now()

    async def stop(self) -> None:
        """Stop taking part (network retired); the store stays."""
        self.stopped = True
        self.machine = None
        self.peers.stop()

    async def _ensure_started(self) -> None:
        if not self.started and not self.stopped:
            await self.start()

    def _my_index(self) -> int | None:
        return self.node.validator_set.index_of(self.identity.address)

    def _at(self, height: int, round_: int) -> bool:
        return self.machine is not None and (self.machine.height, self.machine.round) == (
            height, round_)

    # ---- heights --------------------------------------------------------------------
    def _start_height(self) -> None:
        if self.stopped:
            return
        height = self.node.committed.height + 1
        vset = self.node.validator_set
        self.machine = ConsensusMachine(height, vset.powers, self._my_index(), vset.proposer,
                                        self._is_valid, self.timeouts)
        self._blocks.clear()
        self.peers.outbox.prune(height - 1)  # the last height's precommits: peers may lack them
        lock = self.node.restored_lock(height)  # after a restart mid-height
        if lock is not None:
            self._blocks[lock.block.hash] = lock.block
            self.machine.restore_lock(lock.round, lock.block.hash, lock.block)
            if not self.c0.next_set_known(self.node, lock.block):  # a restart forgot it
                asyncio.get_running_loop().create_task(
                    self.c0.fetch_next_set(self.node, lock.block))
        self._process(self.machine.start(self.node.voted_round(height)))
        for message in self.inbox.take(height):
            self._dispatch(message)

    def _is_valid(self, block: object) -> bool:
        return (isinstance(block, Block) and self._blocks.get(block.hash) is block
                and self.c0.next_set_known(self.node, block))

    def _count_round(self) -> None:
        if self.machine is not None:
            self.record.in_round(self.machine.height, self.machine.round)

    def _process(self, effects: list) -> None:
        loop = asyncio.get_running_loop()
        self._count_round()
        for effect in effects:
            if isinstance(effect, RequestProposal):
                loop.create_task(self._propose(effect.height, effect.round))
            elif isinstance(effect, BroadcastProposal):
                self._send_proposal(effect.proposal)
            elif isinstance(effect, BroadcastVote):
                self._send_vote(effect.vote)
            elif isinstance(effect, ScheduleTimeout):
                loop.call_later(effect.delay, self._on_timeout, effect.height, effect.round,
                                effect.step)
            elif isinstance(effect, Decide):
                self._decide(effect)
            elif isinstance(effect, Equivocation):
                loop.create_task(self._report_equivocation(effect.first, effect.second))
        self._count_round()

    def _on_timeout(self, height: int, round_: int, step: Step) -> None:
        if self.machine is not None and self.machine.height == height:
            self._process(self.machine.on_timeout(height, round_, step))

    async def _propose(self, height: int, round_: int) -> None:
        tick = self.node.committed.staking_tick
        if self.node.is_epoch_boundary(height):
            tick = refresh_tick(tick, await self.c0.final_tick())
        if not self._at(height, round_):
            return
        earlier = self.node.signed_proposal(height, round_)
        if earlier is not None:  # signed before a restart: propose that block again
            block = earlier.block
            await self.c0.fetch_next_set(self.node, block)
            if not self._at(height, round_):
                return
        else:
            block = self.node.build_block(round_, self.identity.address,
                                          self.node.certificate_at(height - 1), tick)
        self._blocks[block.hash] = block
        self._process(self.machine.propose(block.hash, block))

    def _send_proposal(self, proposal: Proposal) -> None:
        signed = self.node.sign_proposal(proposal.height, proposal.round, proposal.pol_round,
                                         proposal.block, self.identity.bls_secret)
        if signed.block.hash != proposal.block.hash:
            log.info("network %d: re-sending our earlier proposal at height %d round %d",
                     self.network_id, proposal.height, proposal.round)
            self._blocks[signed.block.hash] = signed.block
        self.peers.gossip((proposal.height, proposal.round, MessageKind.PROPOSAL), (
            MessageKind.PROPOSAL, (proposal.height, proposal.round, signed.pol_round,
                                   signed.block.encode(), proposal.proposer, signed.signature)))

    def _send_vote(self, vote: Vote) -> None:
        signed = self.node.sign_vote(vote.height, vote.round, int(vote.vote_type),
                                     vote.block_hash, self._blocks.get(vote.block_hash),
                                     self.identity.bls_secret)
        if signed.block_hash != vote.block_hash:
            log.info("network %d: re-sending our earlier vote at height %d round %d",
                     self.network_id, vote.height, vote.round)
        args = (vote.height, vote.round, int(vote.vote_type), signed.block_hash,
                vote.validator, signed.signature)
        kind = MessageKind(vote.vote_type)
        self.peers.gossip((vote.height, vote.round, kind), (kind, args))
        self._handle_vote(*args, verified=True)

    # ---- incoming messages ------------------------------------------------------------
    async def on_messages(self, sender: int, incarnation: bytes,
                          messages: list[Message]) -> tuple[bytes, list[bool]]:
        """Proposals and votes from `sender`'s outbox.  Answers our incarnation and, per
        message, whether we hold it (counted, or buffered for a coming height)."""
        await self._ensure_started()
        self.peers.received_from(sender, incarnation)
        held = []
        for kind, args in messages:
            if kind == MessageKind.PROPOSAL:
                held.append(await self.on_proposal(*args))
            else:
                held.append(self._handle_vote(*args))
        return self.peers.incarnation, held

    def _dispatch(self, message: Message) -> None:
        """A message kept for the height we start now."""
        kind, args = message
        if kind == MessageKind.PROPOSAL:
            asyncio.get_running_loop().create_task(self.on_proposal(*args))
        else:
            self._handle_vote(*args)

    def _route(self, height: int, message: Message) -> bool | None:
        """Whether we hold a message not for the height we vote on; None when it is."""
        routing = self.inbox.route(height, self.node.committed.height + 1,
                                   self.machine is not None, message)
        if routing.wake:
            self._wake()  # a peer started this height: it is not idle
        if routing.sync:
            asyncio.get_running_loop().create_task(self._sync_and_restart())
        return routing.held

    async def on_proposal(self, height: int, round_: int, pol_round: int, block_raw: bytes,
                          proposer: int, signature: bytes) -> bool:
        """A peer's proposal; whether we hold it (False: send it again later)."""
        await self._ensure_started()
        args = (height, round_, pol_round, block_raw, proposer, signature)
        held = self._route(height, (MessageKind.PROPOSAL, args))
        if held is not None:
            return held
        if round_ in self.machine.proposals:
            return True  # a copy of one we have
        try:
            proposal = check_proposal(self.node.validator_set, self.network_id, *args)
        except ZgError as exc:
            log.warning("network %d: proposal dropped: %s", self.network_id, exc)
            return True
        block: Block = proposal.block
        if not await self.c0.fetch_next_set(self.node, block):
            return False  # C0 could not be read: the proposer sends it again
        if self.machine is None or self.machine.height != height:
            return True
        vset = self.node.validator_set
        try:
            self.node.validate_block(
                block, vset.validators[vset.proposer(height, block.header.round)].address)
            self._blocks[block.hash] = block
        except ZgError as exc:
            log.warning("network %d height %d: invalid block: %s", self.network_id, height, exc)
        self._process(self.machine.on_proposal(proposal))
        return True

    async def on_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                      validator: int, signature: bytes) -> bool:
        """A peer's vote; whether we hold it (False: send it again later)."""
        await self._ensure_started()
        return self._handle_vote(height, round_, vote_type, block_hash, validator, signature)

    def _handle_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                     validator: int, signature: bytes, verified: bool = False) -> bool:
        if vote_type not in (MessageKind.PREVOTE, MessageKind.PRECOMMIT):
            log.warning("network %d: vote of unknown type %r dropped", self.network_id,
                        vote_type)
            return True
        args = (height, round_, vote_type, block_hash, validator, signature)
        held = self._route(height, (MessageKind(vote_type), args))
        if held is not None:
            return held
        vset = self.node.validator_set
        try:
            vote = vote_of(vset, *args)
            if self.machine.has_vote(vote):
                return True  # a copy: no second signature check
            if not verified:
                check_vote_signature(vset, self.network_id, vote)
        except ZgError as exc:
            log.warning("network %d: vote dropped: %s", self.network_id, exc)
            return True
        self._process(self.machine.on_vote(vote))
        return True

    # ---- decisions --------------------------------------------------------------------
    def _decide(self, decision: Decide) -> None:
        if decision.height != self.node.committed.height + 1:
            return
        block: Block = decision.block
        if self.node.is_epoch_boundary(block.height):
            self.node.next_set = self.c0.sets_by_tick.get(block.header.staking_tick)
        cert = self.node.make_certificate(
            decision.height, decision.round, decision.block_hash,
            [(v.validator, v.signature) for v in decision.precommits])
        latencies = self.node.commit(block, cert)
        self._after_commit(block, latencies)
        self.machine = None
        delay = max(0.0, self.config.networks.block_interval_s -
                    (time.time() - self._height_started_at))
        self._height_started_at = time.time() + delay
        asyncio.get_running_loop().call_later(delay, self._next_height)

    def _next_height(self) -> None:
        """Start the next height now if the mempool holds executable txs, else wait for txs.

        As CometBFT with create_empty_blocks_interval: with an empty mempool the height
        starts when a tx or a peer's message for it arrives, or empty_block_interval_s
        after the last commit, whichever is first. An idle network then costs a block
        per empty_block_interval_s instead of one per block_interval_s, and a tx arriving
        at an idle network is proposed at once. Unlike CometBFT, no proof block follows
        a block with txs: a header holds its own state root and the commit certificate
        is stored at commit, so nothing waits for the next block."""
        if self.stopped or self.machine is not None:
            return
        idle_for = self.config.networks.empty_block_interval_s - (
            time.time() - self._committed_at)
        # Queued (future-nonce) txs cannot go in a block: they do not hurry the next one.
        if self.node.mempool.pending_count or idle_for <= 0:
            self._start_height()
            return
        self._idle = asyncio.get_running_loop().call_later(idle_for, self._wake)

    def _wake(self) -> None:
        """End an idle wait (a tx, a peer's message for the next height, or the timer)."""
        if self._idle is None:
            return
        self._idle.cancel()
        self._idle = None
        if not self.stopped and self.machine is None:
            self._start_height()

    def _after_commit(self, block: Block, latencies: list[float]) -> None:
        self._committed_event.set()
        self._committed_event = asyncio.Event()
        self._committed_at = time.time()
        new_set = self.node.is_epoch_boundary(block.height) or block.height == 1
        self.record.committed(block, latencies, len(self.node.mempool),
                              self.node.validator_set if new_set else None)
        self._burn_rewards()

    def _burn_rewards(self) -> None:
        """Send this validator's local rewards to C0 through the bridge (burn here)."""
        tx = self.node.reward_burn(self.identity.account,
                                   self.config.networks.reward_burn_threshold)
        if tx is not None and self.node.add_txs([tx.encoded]) == [None]:
            self.peers.broadcast("submit_txs", [tx.encoded], False)

    async def _report_equivocation(self, first: Vote, second: Vote) -> None:
        offender = self.node.validator_set.validators[first.validator]
        evidence = DoubleSignEvidence(self.network_id, first.height, first.round,
                                      int(first.vote_type), offender.address,
                                      first.block_hash, first.signature, second.block_hash,
                                      second.signature)
        if evidence.id in self._evidence_sent:
            return
        self._evidence_sent.add(evidence.id)
        log.warning("network %d: validator 0x%s double-signed at height %d round %d; "
                    "submitting evidence to C0", self.network_id, offender.address.hex(),
                    first.height, first.round)
        try:
            await self.c0.submit_evidence(evidence)
        except Exception as exc:  # another honest validator may have been first
            log.info("evidence not applied: %s", exc)

    # ---- catch-up --------------------------------------------------------------------
    async def _sync_and_restart(self) -> None:
        before = self.node.committed.height
        await self._sync()
        if self.node.committed.height > before and not self.stopped:
            self._start_height()

    async def _sync(self) -> None:
        """Fetch committed blocks we miss from the most advanced peer; verify and apply."""
        if self._syncing or time.time() - self._last_sync < SYNC_MIN_INTERVAL_S:
            return
        self._syncing, self._last_sync = True, time.time()
        try:
            while (best := await self.peers.most_advanced(self.node.committed.height)) is not None:
                try:
                    items = await self.peers.call(best, "get_blocks",
                                                  self.node.committed.height + 1,
                                                  SYNC_BATCH_BLOCKS)
                except Exception:
                    self.peers.forget(best)
                    return
                if not items:
                    return
                for block_raw, cert_raw in items:
                    block = Block.decode(block_raw)
                    if self.node.is_epoch_boundary(block.height):
                        # Raises while C0 cannot be read and the block switches sets.
                        tick = block.header.staking_tick
                        self.node.next_set = (
                            await self.c0.set_at_tick(tick)
                            if set_changes(self.node.committed.staking_tick, tick) else None)
                    self.node.apply_synced(block_raw, cert_raw)
                    self._after_commit(block, [])
                    self.machine = None
                log.info("network %d: validator %d synced to height %d", self.network_id,
                         self.identity.index, self.node.committed.height)
        finally:
            self._syncing = False

    # ---- queries ---------------------------------------------------------------------
    async def committed_height(self) -> int:
        return self.node.committed.height

    async def wait_height(self, height: int, timeout_s: float) -> int:
        """The committed height, once it reaches `height` or after `timeout_s` (at most
        MAX_WAIT_HEIGHT_S), whichever is first: a client waiting for its tx asks once per
        block instead of polling."""
        deadline = time.monotonic() + min(max(0.0, float(timeout_s)), MAX_WAIT_HEIGHT_S)
        while self.node.committed.height < height:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self._committed_event.wait(), left)
            except TimeoutError:
                break
        return self.node.committed.height

    async def get_blocks(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
        return self.node.blocks_range(start, min(limit, SYNC_BATCH_BLOCKS))

    async def submit_txs(self, raw_txs: list[bytes], forward: bool = True) -> list[str | None]:
        """Admit txs to the mempool (persisted first); forwards accepted ones to peers."""
        await self._ensure_started()
        if self.stopped:
            raise UnknownNetworkId(f"network {self.network_id} is retired",
                                   network_id=self.network_id)
        # A DA certificate's check costs ~0.8 CPU-s with py_ecc: in a thread first (its
        # result is kept for add_txs and the block), so that this event loop keeps
        # handling votes meanwhile instead of stalling consensus.
        await asyncio.get_running_loop().run_in_executor(None, self.node.prepare_txs, raw_txs)
        results = self.node.add_txs(raw_txs)
        if any(error is None for error in results):
            self._wake()  # an idle network proposes a tx at once
        if forward:
            accepted = [raw for raw, error in zip(raw_txs, results, strict=True)
                        if error is None]
            if accepted:
                self.peers.broadcast("submit_txs", accepted, False)
        self.record.metrics.mempool(len(self.node.mempool))
        return results

    async def account(self, address: bytes) -> dict:
        return {"balance": self.node.balance(address),
                "nonce": self.node.machine.account_nonce(self.node.state_get, address)}

    async def query(self, module: str, method: str, args: tuple) -> object:
        return self.node.machine.query(self.node.state_get, module, method, args)

    async def burns_from(self, height: int, limit: int = 200) -> list[tuple[int, Any]]:
        """Burn proofs for committed heights [height, height + limit)."""
        return self.node.burns_from(height, limit)

    def status_now(self) -> dict:
        vset = self.node.validator_set
        return {"network_id": self.network_id, "identity": self.identity.index,
                "address": "0x" + self.identity.address.hex(),
                "height": self.node.committed.height, "mempool": len(self.node.mempool),
                "mempool_pending": self.node.mempool.pending_count,
                "rounds": self.record.rounds, "committed_txs": self.record.committed_txs,
                "consensus": None if self.machine is None else {
                    "height": self.machine.height, "round": self.machine.round,
                    "step": self.machine.step.name},
                "started": self.started, "syncing": self._syncing,
                "in_set": self._my_index() is not None, "stopped": self.stopped,
                "validators": [{"address": "0x" + v.address.hex(), "power": v.power}
                               for v in vset.validators],
                "total_power": vset.total_power}

    async def status(self) -> dict:
        return self.status_now()

    async def stats(self, since: float = 0.0) -> dict:
        """Commit log and latency samples for reports and benchmarks."""
        return {**self.status_now(), **self.record.since(since)}
