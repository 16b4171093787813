"""Ray actors of the chain: Validator (one per validator x network), NetworkManager, Relayer.

Validators of a network call each other's methods directly; no central actor
decides blocks.  Each re-sends its proposals and votes to peers that have not
acknowledged them (chain/gossip.py), so a message a peer missed while it was
down reaches it once it is back.  Each Validator wraps a pure ConsensusMachine
(chain/consensus.py) and a ChainNode (chain/node.py, its LMDB store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from zg_actors.chain.block import (
    Block,
    CommitCertificate,
    proposal_sign_bytes,
    vote_sign_bytes,
)
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
    VoteType,
)
from zg_actors.chain.gossip import MessageKey, MessageKind, Outbox, RetrySchedule
from zg_actors.chain.network import build_state_machine, timeout_config
from zg_actors.chain.node import ChainNode, lock_key, round_key, vote_key
from zg_actors.chain.tx import TxError, make_tx
from zg_actors.chain.validator_set import ValidatorSet, refresh_tick, set_changes
from zg_actors.config import config_from_dict
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.crypto.encoding import as_int, decode, encode
from zg_actors.errors import InvalidInput, NotFound, ZgError
from zg_actors.metrics import ChainMetrics
from zg_actors.staking.ledger import DoubleSignEvidence
from zg_actors.store import Store

log = logging.getLogger(__name__)

NETWORK_MANAGER_NAME = "networks"
RELAYER_NAME = "relayer"
SYNC_BATCH_BLOCKS = 64
SYNC_MIN_INTERVAL_S = 0.5
FUTURE_HEIGHTS_BUFFERED = 3
MAX_WAIT_HEIGHT_S = 10.0  # a long poll holds a call this long at most; callers loop
VALIDATOR_RESOURCE = "zg_validator"  # custom resource declared by cluster.yaml's CPU workers
PEER_CALL_TIMEOUT_S = 3.0  # a send to a peer not answered by then is re-sent (gossip.py)
RESEND_SCHEDULE = RetrySchedule(first_s=0.2, factor=2.0, max_s=2.0)
C0_READ_TIMEOUT_S = 1.0  # a C0 read not answered by then: C0 counts as unreachable


class UnknownNetworkId(NotFound):
    code = "UNKNOWN_NETWORK"


def validator_name(network_id: int, identity: int) -> str:
    return f"zg-validator-{network_id}-{identity}"


@ray.remote(max_restarts=-1, max_task_retries=0)
class Validator:
    """One validator identity's node on one network."""

    def __init__(self, config_dict: dict, network_id: int, identity: int,
                 members: list[int], genesis_set: bytes, genesis_tick: int,
                 data_dir: str) -> None:
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
        self.metrics = ChainMetrics(network_id)
        self.timeouts = timeout_config(self.config)
        self.machine: ConsensusMachine | None = None
        self.started = False
        self.stopped = False
        self._peers: dict[int, Any] = {}
        # Drawn anew by every process: peers that see a new one re-send what we lost.
        self.incarnation = os.urandom(8)
        self.outbox = Outbox([i for i in members if i != self.identity.index],
                             RESEND_SCHEDULE)
        self._outbox_changed = asyncio.Event()  # set, then replaced, at every change
        self._deliveries: dict[int, asyncio.Task] = {}  # peer -> its sending loop
        self._buffer: dict[int, list[tuple[str, tuple]]] = defaultdict(list)
        self._sets_by_tick: dict[int, ValidatorSet] = {}
        self._blocks: dict[bytes, Block] = {}
        self._last_sync = 0.0
        self._syncing = False
        self._height_started_at = time.time()  # block time counts from here
        self._rounds = 0
        self._committed_txs = 0
        self._latencies: list[float] = []
        self._commit_log: list[tuple[float, int, int]] = []  # (time, height, txs)
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
        self._ensure_deliveries()
        return self.status_now()

    async def stop(self) -> None:
        """Stop taking part (network retired); the store stays."""
        self.stopped = True
        self.machine = None
        for task in self._deliveries.values():
            task.cancel()

    def _peer(self, identity: int) -> Any:
        if identity not in self._peers:
            self._peers[identity] = ray.get_actor(validator_name(self.network_id, identity))
        return self._peers[identity]

    # ---- eventual delivery of our proposals and votes (chain/gossip.py) ---------------
    def _gossip(self, key: MessageKey, args: tuple) -> None:
        """Send a message we signed to every peer, and again until each holds it."""
        self.outbox.add(key, (int(key[2]), args))
        self._outbox_touched()

    def _outbox_touched(self) -> None:
        self._outbox_changed.set()
        self._outbox_changed = asyncio.Event()
        self._ensure_deliveries()

    def _ensure_deliveries(self) -> None:
        if self.stopped:
            return
        for peer in self.outbox.peers:
            task = self._deliveries.get(peer)
            if task is None or task.done():
                self._deliveries[peer] = asyncio.get_running_loop().create_task(
                    self._deliver_to(peer))

    async def _deliver_to(self, peer: int) -> None:
        """One call to `peer` at a time, carrying what it has not acknowledged."""
        while not self.stopped:
            changed = self._outbox_changed
            now = time.monotonic()
            keys = self.outbox.due(peer, now)
            if not keys:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.outbox.wait_s(peer, now))
                continue
            messages = [self.outbox.messages[key] for key in keys]
            try:
                incarnation, held = await asyncio.wait_for(
                    self._peer(peer).on_messages.remote(self.identity.index, self.incarnation,
                                                        messages), PEER_CALL_TIMEOUT_S)
            except Exception as exc:  # down, restarting, re-created, or too slow
                log.debug("network %d: send to validator %d failed: %s", self.network_id,
                          peer, exc)
                self._peers.pop(peer, None)  # look the name up again: it may be a new actor
                self.outbox.failed(peer, time.monotonic())
                continue
            self.outbox.delivered(peer, keys, held, incarnation, time.monotonic())

    async def on_messages(self, sender: int, incarnation: bytes,
                          messages: list[tuple[int, tuple]]) -> tuple[bytes, list[bool]]:
        """Proposals and votes from `sender`'s outbox.  Answers our incarnation and, per
        message, whether we hold it (counted, or buffered for a coming height)."""
        await self._ensure_started()
        if self.outbox.seen_incarnation(sender, incarnation):
            self._outbox_touched()  # it restarted: it lost what we had sent it
        held = []
        for kind, args in messages:
            if kind == MessageKind.PROPOSAL:
                held.append(await self.on_proposal(*args))
            else:
                held.append(self._handle_vote(*args))
        return self.incarnation, held

    def _broadcast(self, method: str, *args: Any) -> None:
        for identity in self.members:
            if identity == self.identity.index:
                continue
            try:
                getattr(self._peer(identity), method).remote(*args)
            except ValueError:  # the peer's name is gone (restarting): it will sync
                self._peers.pop(identity, None)

    def _my_index(self) -> int | None:
        return self.node.validator_set.index_of(self.identity.address)

    # ---- heights --------------------------------------------------------------------
    def _start_height(self) -> None:
        if self.stopped:
            return
        height = self.node.committed.height + 1
        vset = self.node.validator_set
        self.machine = ConsensusMachine(height, vset.powers, self._my_index(), vset.proposer,
                                        self._is_valid, self.timeouts)
        self._blocks.clear()
        self._round_seen = -1
        self.outbox.prune(height - 1)  # the last height's precommits: a peer may lack them
        # After a restart mid-height: resume at the last round we voted in, locked on the
        # block we last precommitted (Tendermint's lock must survive crashes).
        last_round = self.node.store.get("signed", round_key(height))
        lock = self.node.store.get("signed", lock_key(height))
        if lock is not None:
            lock_round, lock_hash, block_raw = decode(lock)
            block = Block.decode(block_raw)
            self._blocks[block.hash] = block
            self.machine.restore_lock(as_int(lock_round), lock_hash, block)
            if not self._next_set_known(block):  # a restart forgot C0's set it names
                asyncio.get_running_loop().create_task(self._fetch_next_set(block))
        start_round = 0 if last_round is None else int.from_bytes(last_round, "big")
        self._process(self.machine.start(start_round))
        for kind, args in self._buffer.pop(height, []):
            if kind == "proposal":
                asyncio.get_running_loop().create_task(self.on_proposal(*args))
            else:
                self._handle_vote(*args)
        for stale in [h for h in self._buffer if h < height]:
            del self._buffer[stale]

    def _is_valid(self, block: object) -> bool:
        return (isinstance(block, Block) and self._blocks.get(block.hash) is block
                and self._next_set_known(block))

    def _next_set_known(self, block: Block) -> bool:
        """Whether we can commit `block` as far as the validator set goes: it keeps the set
        in force, or we hold C0's set at the tick it names (chain/validator_set.py)."""
        tick = block.header.staking_tick
        return (not self.node.is_epoch_boundary(block.height)
                or not set_changes(self.node.committed.staking_tick, tick)
                or tick in self._sets_by_tick)

    def _count_round(self) -> None:
        if self.machine is not None and self.machine.round != self._round_seen:
            self._round_seen = self.machine.round
            self._rounds += 1
            self.metrics.round_started()

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

    async def _set_at_tick(self, tick: int) -> ValidatorSet:
        """C0's validator set of this network at `tick` (raises when C0 cannot be read)."""
        if tick not in self._sets_by_tick:
            staking = ray.get_actor("staking")
            raw = await asyncio.wait_for(staking.validator_set_at.remote(self.network_id, tick),
                                         C0_READ_TIMEOUT_S)
            self._sets_by_tick[tick] = ValidatorSet.decode(raw)
        return self._sets_by_tick[tick]

    async def _fetch_next_set(self, block: Block) -> bool:
        """Make `block`'s next validator set known (see _next_set_known); False while C0
        cannot be read."""
        if self._next_set_known(block):
            return True
        try:
            await self._set_at_tick(block.header.staking_tick)
            return True
        except Exception as exc:
            log.warning("network %d: no validator set at C0 tick %d yet: %r", self.network_id,
                        block.header.staking_tick, exc)
            return False

    async def _c0_final_tick(self) -> int | None:
        """C0's latest final tick, its validator set fetched; None when C0 cannot be read."""
        try:
            staking = ray.get_actor("staking")
            tick = await asyncio.wait_for(staking.final_tick.remote(), C0_READ_TIMEOUT_S)
            await self._set_at_tick(tick)
            return tick
        except Exception as exc:
            log.warning("network %d: C0 unreachable, the validator set stays: %r",
                        self.network_id, exc)
            return None

    async def _propose(self, height: int, round_: int) -> None:
        tick = self.node.committed.staking_tick
        if self.node.is_epoch_boundary(height):
            tick = refresh_tick(tick, await self._c0_final_tick())
        if self.machine is None or (self.machine.height, self.machine.round) != (height, round_):
            return
        earlier = self.node.signed_proposal(height, round_)
        if earlier is not None:  # signed before a restart: propose that block again
            block = earlier.block
            await self._fetch_next_set(block)
            if self.machine is None or (self.machine.height, self.machine.round) != (
                    height, round_):
                return
        else:
            last_commit = None
            if height > 1:
                raw = self.node.store.get("certs", (height - 1).to_bytes(8, "big"))
                last_commit = CommitCertificate.decode(raw)
            block = self.node.build_block(round_, self.identity.address, last_commit, tick)
        self._blocks[block.hash] = block
        self._process(self.machine.propose(block.hash, block))

    def _send_proposal(self, proposal: Proposal) -> None:
        # Persisted (synced) before it is sent; after a crash, the same proposal again.
        signed = self.node.sign_proposal(proposal.height, proposal.round, proposal.pol_round,
                                         proposal.block, self.identity.bls_secret)
        if signed.block.hash != proposal.block.hash:
            log.info("network %d: re-sending our earlier proposal at height %d round %d",
                     self.network_id, proposal.height, proposal.round)
            self._blocks[signed.block.hash] = signed.block
        self._gossip((proposal.height, proposal.round, MessageKind.PROPOSAL),
                     (proposal.height, proposal.round, signed.pol_round, signed.block.encode(),
                      proposal.proposer, signed.signature))

    def _send_vote(self, vote: Vote) -> None:
        key = vote_key(vote.height, vote.round, int(vote.vote_type))
        previous = self.node.store.get("signed", key)
        if previous is not None:
            # Signed before a restart: send that same vote again, never a second one.
            block_hash = b"" if previous[:32] == bytes(32) else previous[:32]  # b"": nil
            signature = previous[32:]
            if block_hash != vote.block_hash:
                log.info("network %d: re-sending our earlier vote at height %d round %d",
                         self.network_id, vote.height, vote.round)
        else:
            block_hash = vote.block_hash
            message = vote_sign_bytes(self.network_id, vote.height, vote.round,
                                      int(vote.vote_type), block_hash)
            signature = bls.sign(self.identity.bls_secret, message)
            writes = [("signed", key, block_hash.ljust(32, b"\0") + signature),
                      ("signed", round_key(vote.height), vote.round.to_bytes(4, "big"))]
            if vote.vote_type == VoteType.PRECOMMIT and block_hash:
                block = self._blocks.get(block_hash)
                if block is not None:
                    writes.append(("signed", lock_key(vote.height), encode(
                        [vote.round, block_hash, block.encode()])))
            # Persisted (one atomic, synced write) before it is sent: after a crash we
            # neither sign another value for this step nor forget our lock.
            self.node.store.write(writes)
        args = (vote.height, vote.round, int(vote.vote_type), block_hash, vote.validator,
                signature)
        self._gossip((vote.height, vote.round, MessageKind(vote.vote_type)), args)
        self._handle_vote(*args, verified=True)

    # ---- incoming messages ------------------------------------------------------------
    def _maybe_sync(self, height: int) -> None:
        if height > self.node.committed.height + 1 or (
                height == self.node.committed.height + 2):
            asyncio.get_running_loop().create_task(self._sync_and_restart())

    def _not_at_height(self, height: int, kind: str, args: tuple) -> bool | None:
        """A message for a height other than the one we vote on: whether we hold it
        (passed, or buffered for a coming height); None when it is for our height."""
        current = self.node.committed.height + 1
        if height < current:
            return True  # committed here already: nothing to do with it
        if height == current and self.machine is not None:
            return None
        held = height <= current + FUTURE_HEIGHTS_BUFFERED
        if held:
            self._buffer[height].append((kind, args))
        if height == current:
            self._wake()  # a peer started this height: it is not idle
        self._maybe_sync(height)
        return held

    async def on_proposal(self, height: int, round_: int, pol_round: int, block_raw: bytes,
                          proposer: int, signature: bytes) -> bool:
        """A peer's proposal; whether we hold it (False: send it again later)."""
        await self._ensure_started()
        held = self._not_at_height(height, "proposal", (height, round_, pol_round, block_raw,
                                                        proposer, signature))
        if held is not None:
            return held
        vset = self.node.validator_set
        if (proposer != vset.proposer(height, round_) or proposer >= len(vset)
                or round_ in self.machine.proposals):
            return True  # not its turn, or a copy of one we have
        try:
            block = Block.decode(block_raw)  # once: it parses every tx
        except ZgError as exc:
            log.warning("network %d: malformed proposal dropped: %s", self.network_id, exc)
            return True
        message = proposal_sign_bytes(self.network_id, height, round_, pol_round, block.hash)
        if not bls.verify(vset.validators[proposer].bls_pubkey, message, signature):
            log.warning("network %d: proposal with a bad signature dropped", self.network_id)
            return True
        if not await self._fetch_next_set(block):
            return False  # C0 could not be read: the proposer sends it again
        if self.machine is None or self.machine.height != height:
            return True
        header_proposer = vset.validators[vset.proposer(height, block.header.round)].address
        try:
            self.node.validate_block(block, header_proposer)
            self._blocks[block.hash] = block
        except (InvalidInput, TxError, ZgError) as exc:
            log.warning("network %d height %d: invalid block: %s", self.network_id, height, exc)
        self._process(self.machine.on_proposal(
            Proposal(height, round_, block.hash, pol_round, block, proposer, signature)))
        return True

    async def on_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                      validator: int, signature: bytes) -> bool:
        """A peer's vote; whether we hold it (False: send it again later)."""
        await self._ensure_started()
        return self._handle_vote(height, round_, vote_type, block_hash, validator, signature)

    def _handle_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                     validator: int, signature: bytes, verified: bool = False) -> bool:
        args = (height, round_, vote_type, block_hash, validator, signature)
        held = self._not_at_height(height, "vote", args)
        if held is not None:
            return held
        vset = self.node.validator_set
        if vote_type not in (1, 2) or not 0 <= validator < len(vset):
            return True
        vote = Vote(height, round_, VoteType(vote_type), block_hash, validator, signature)
        if self.machine.has_vote(vote):
            return True  # a copy: no second signature check
        if not verified:
            message = vote_sign_bytes(self.network_id, height, round_, vote_type, block_hash)
            if not bls.verify(vset.validators[validator].bls_pubkey, message, signature):
                log.warning("network %d: vote with a bad signature from %d dropped",
                            self.network_id, validator)
                return True
        self._process(self.machine.on_vote(vote))
        return True

    async def _ensure_started(self) -> None:
        if not self.started and not self.stopped:
            await self.start()

    # ---- decisions --------------------------------------------------------------------
    def _decide(self, decision: Decide) -> None:
        if decision.height != self.node.committed.height + 1:
            return
        block: Block = decision.block
        if self.node.is_epoch_boundary(block.height):
            self.node.next_set = self._sets_by_tick.get(block.header.staking_tick)
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
        self._committed_txs += len(block.txs)
        self._committed_at = time.time()
        self._latencies.extend(latencies)
        del self._latencies[:-20_000]
        self._commit_log.append((time.time(), block.height, len(block.txs)))
        del self._commit_log[:-5_000]
        self.metrics.committed(block.height, len(block.txs), latencies)
        self.metrics.mempool(len(self.node.mempool))
        if self.node.is_epoch_boundary(block.height) or block.height == 1:
            vset = self.node.validator_set
            self.metrics.validator_set({"0x" + v.address.hex()[:8]: v.power
                                        for v in vset.validators})
        self._burn_rewards()

    def _burn_rewards(self) -> None:
        """Send this validator's local rewards to C0 through the bridge (burn here)."""
        me = self.identity.address
        balance = self.node.balance(me)
        if balance < self.config.networks.reward_burn_threshold:
            return
        if any(tx.sender == me for tx in self.node.mempool.values()):
            return  # the previous burn is still pending
        nonce = self.node.machine.account_nonce(self.node.state_get, me)
        tx = make_tx(self.identity.account, self.network_id, nonce, "token", "burn",
                     [balance, me], 0)
        if self.node.add_txs([tx.encoded]) == [None]:
            self._broadcast("submit_txs", [tx.encoded], False)

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
            await ray.get_actor("staking").submit_evidence.remote(evidence)
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
            while True:
                best, best_height = None, self.node.committed.height
                refs = {}
                for identity in self.members:
                    if identity != self.identity.index:
                        try:
                            refs[identity] = self._peer(identity).committed_height.remote()
                        except ValueError:
                            self._peers.pop(identity, None)
                for identity, ref in refs.items():
                    try:
                        height = await asyncio.wait_for(ref, timeout=2.0)
                    except Exception:
                        self._peers.pop(identity, None)  # look the name up again next time
                        continue
                    if height > best_height:
                        best, best_height = identity, height
                if best is None:
                    return
                try:
                    items = await self._peer(best).get_blocks.remote(
                        self.node.committed.height + 1, SYNC_BATCH_BLOCKS)
                except Exception:
                    self._peers.pop(best, None)  # look the name up again next time
                    return
                if not items:
                    return
                for block_raw, cert_raw in items:
                    block = Block.decode(block_raw)
                    if self.node.is_epoch_boundary(block.height):
                        # Raises while C0 cannot be read and the block switches sets.
                        self.node.next_set = (await self._set_at_tick(block.header.staking_tick)
                                              if set_changes(self.node.committed.staking_tick,
                                                             block.header.staking_tick)
                                              else None)
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
                self._broadcast("submit_txs", accepted, False)
        self.metrics.mempool(len(self.node.mempool))
        return results

    async def account(self, address: bytes) -> dict:
        return {"balance": self.node.balance(address),
                "nonce": self.node.machine.account_nonce(self.node.state_get, address)}

    async def query(self, module: str, method: str, args: tuple) -> object:
        return self.node.machine.query(self.node.state_get, module, method, args)

    async def burns_from(self, height: int, limit: int = 200) -> list[tuple[int, Any]]:
        """Burn proofs for committed heights [height, height + limit)."""
        out = []
        top = min(self.node.committed.height, height + limit - 1)
        for h in range(height, top + 1):
            out.extend((h, proof) for proof in self.node.burns_in(h))
        return out

    def status_now(self) -> dict:
        vset = self.node.validator_set
        return {"network_id": self.network_id, "identity": self.identity.index,
                "address": "0x" + self.identity.address.hex(),
                "height": self.node.committed.height, "mempool": len(self.node.mempool),
                "mempool_pending": self.node.mempool.pending_count,
                "rounds": self._rounds, "committed_txs": self._committed_txs,
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
        return {**self.status_now(),
                "commits": [c for c in self._commit_log if c[0] >= since],
                "latencies": list(self._latencies)}

    async def reset_stats(self) -> None:
        self._latencies.clear()
        self._commit_log.clear()


# ---------------------------------------------------------------------------------------
@ray.remote(max_restarts=-1, max_task_retries=0)
class NetworkManager:
    """Launches and retires consensus networks (actor groups sharing the staking actor)."""

    def __init__(self, config_dict: dict, data_dir: str, detached: bool) -> None:
        self.config_dict = config_dict
        self.config = config_from_dict(config_dict)
        self.data_dir = data_dir
        self.detached = detached
        self.store = Store(Path(data_dir) / "network-manager", ["networks"],
                           self.config.lmdb_map_mb)
        self.networks: dict[int, dict] = {}
        self.handles: dict[int, dict[int, Any]] = {}
        self.groups: dict[int, Any] = {}
        for key, raw in self.store.items("networks"):
            self.networks[int.from_bytes(key, "big")] = json.loads(raw)
        self._watchdog: asyncio.Task | None = None

    def _save(self, network_id: int) -> None:
        self.store.put("networks", network_id.to_bytes(4, "big"),
                       json.dumps(self.networks[network_id]).encode())

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Nudge validators so that one Ray restarted resumes even with no traffic."""
        while True:
            await asyncio.sleep(2.0)
            for network_id, info in list(self.networks.items()):
                if info["status"] != "active":
                    continue
                for identity in info["members"]:
                    try:
                        self._handle(network_id, identity).start.remote()
                    except ValueError:
                        continue

    def _handle(self, network_id: int, identity: int) -> Any:
        handles = self.handles.setdefault(network_id, {})
        if identity not in handles:
            handles[identity] = ray.get_actor(validator_name(network_id, identity))
        return handles[identity]

    async def launch_network(self, validators: int | None = None) -> dict:
        """Register a network at C0, start its validators in one SPREAD placement group."""
        self._ensure_watchdog()
        count = validators or self.config.networks.validators_per_network
        staking = ray.get_actor("staking")
        candidates = [v for v in await staking.validators.remote() if not v["jailed"]]
        if count < 1 or count > len(candidates):
            raise InvalidInput(f"cannot launch a network of {count} validators: "
                               f"{len(candidates)} active validators are registered",
                               validators=count, available=len(candidates))
        seed = self.config.devnet.key_seed
        by_address = {validator_identity(seed, i).address: i
                      for i in range(self.config.staking.validators)}
        chosen = sorted(candidates, key=lambda v: (-v["stake"], v["address"]))[:count]
        members = sorted(by_address[v["address"]] for v in chosen if v["address"] in by_address)
        network_id = max(self.networks, default=-1) + 1
        tick, genesis_set = await staking.register_network.remote(
            network_id, [validator_identity(seed, i).address for i in members])
        info = {"network_id": network_id, "members": members, "status": "active",
                "launched_at": time.time(), "placement_group": f"zg-network-{network_id}",
                "genesis_tick": tick, "genesis_set": genesis_set.hex()}
        # Recorded before its actors start: a manager restarted mid-launch resumes it.
        self.networks[network_id] = info
        self._save(network_id)
        await self._start_validators(info)
        log.info("launched network %d with validators %s", network_id, members)
        return info

    async def _start_validators(self, info: dict, only_missing: bool = False) -> list[int]:
        """Start the network's validators in its SPREAD placement group (made if missing)."""
        network_id, members = info["network_id"], info["members"]
        cpus = self.config.networks.validator_num_cpus
        bundle_resources: dict[str, float] = {"CPU": cpus}
        # On a cluster made from cluster.yaml, validators go to nodes that offer the
        # zg_validator resource; the embedded Ray has none and places them anywhere.
        if VALIDATOR_RESOURCE in ray.cluster_resources():
            bundle_resources[VALIDATOR_RESOURCE] = 1
        group = self.groups.get(network_id)
        if group is None:
            try:
                group = ray.util.get_placement_group(info["placement_group"])
            except ValueError:
                group = placement_group([bundle_resources] * len(members), strategy="SPREAD",
                                        name=info["placement_group"],
                                        lifetime="detached" if self.detached else None)
            await group.ready()
            self.groups[network_id] = group
        # Handles of running validators stay held: a non-detached actor dies with the last
        # handle its owner holds, so dropping them here would kill the survivors.
        handles = self.handles.setdefault(network_id, {})
        started = []
        refs = []
        for bundle, identity in enumerate(members):
            name = validator_name(network_id, identity)
            if only_missing:
                try:
                    ray.get_actor(name)
                    continue
                except ValueError:
                    pass
            options = {"name": name, "num_cpus": cpus,
                       "resources": {k: v for k, v in bundle_resources.items() if k != "CPU"},
                       "scheduling_strategy": PlacementGroupSchedulingStrategy(
                           group, placement_group_bundle_index=bundle)}
            if self.detached:
                options["lifetime"] = "detached"
            handle = Validator.options(**options).remote(
                self.config_dict, network_id, identity, members,
                bytes.fromhex(info["genesis_set"]), info["genesis_tick"], self.data_dir)
            # Keep the handle: a non-detached actor dies when its last handle goes away.
            handles[identity] = handle
            refs.append(handle.start.remote())
            started.append(identity)
        await asyncio.gather(*refs)
        return started

    async def resume(self) -> dict[int, list[int]]:
        """Re-create the missing validators of every active network (after `zg down` and
        `zg up`, or a whole-cluster restart); each recovers its chain from its LMDB store."""
        self._ensure_watchdog()
        resumed = {}
        for network_id, info in sorted(self.networks.items()):
            if info["status"] == "active" and "genesis_set" in info:
                started = await self._start_validators(info, only_missing=True)
                if started:
                    resumed[network_id] = started
                    log.info("resumed network %d: restarted validators %s", network_id,
                             started)
        return resumed

    async def retire_network(self, network_id: int, drain_timeout_s: float = 10.0) -> dict:
        """Stop routing to it, let its mempool drain, stop its validators; data stays."""
        info = self._info(network_id)
        if info["status"] == "retired":  # "retiring": an interrupted retirement goes on
            raise InvalidInput(f"network {network_id} is already {info['status']}",
                               network_id=network_id)
        info["status"] = "retiring"
        self._save(network_id)
        deadline = time.time() + drain_timeout_s
        handles = []
        for identity in info["members"]:
            try:
                handles.append(self._handle(network_id, identity))
            except ValueError:  # already gone (an interrupted retirement, a dead node)
                continue
        while handles and time.time() < deadline:
            try:
                status = await handles[0].status.remote()
            except Exception:
                break
            if status["mempool_pending"] == 0:  # queued txs never drain: nothing to wait for
                break
            await asyncio.sleep(0.25)
        final = await self._network_status(network_id)
        await asyncio.gather(*[h.stop.remote() for h in handles], return_exceptions=True)
        for h in handles:
            ray.kill(h, no_restart=True)
        group = self.groups.pop(network_id, None)
        if group is None:
            try:
                group = ray.util.get_placement_group(info["placement_group"])
            except Exception:
                group = None
        if group is not None:
            remove_placement_group(group)
        self.handles.pop(network_id, None)
        await ray.get_actor("staking").retire_network.remote(network_id)
        info["status"] = "retired"
        info["final_height"] = final.get("height")
        self._save(network_id)
        return info

    def _info(self, network_id: int) -> dict:
        if network_id not in self.networks:
            raise UnknownNetworkId(f"unknown network id {network_id}; known: "
                                   f"{sorted(self.networks)}", network_id=network_id)
        return self.networks[network_id]

    async def _network_status(self, network_id: int) -> dict:
        info = self._info(network_id)
        for identity in info["members"]:
            try:
                status = await asyncio.wait_for(
                    self._handle(network_id, identity).status.remote(), timeout=3.0)
                return {**info, **status}
            except Exception:
                continue
        return {**info, "height": None}

    async def list_networks(self) -> list[dict]:
        self._ensure_watchdog()
        out = []
        for network_id, info in sorted(self.networks.items()):
            if info["status"] == "active":
                out.append(await self._network_status(network_id))
            else:
                out.append(dict(info))
        return out

    async def active_networks(self) -> list[int]:
        return [n for n, info in sorted(self.networks.items()) if info["status"] == "active"]

    async def validator_handles(self, network_id: int) -> dict[int, Any]:
        info = self._info(network_id)
        if info["status"] != "active":
            raise UnknownNetworkId(f"network {network_id} is {info['status']}",
                                   network_id=network_id)
        return {i: self._handle(network_id, i) for i in info["members"]}

    async def shutdown(self) -> None:
        for network_id, info in self.networks.items():
            if info["status"] == "active":
                for identity in info["members"]:
                    try:
                        ray.kill(self._handle(network_id, identity), no_restart=True)
                    except ValueError:
                        continue
                try:
                    remove_placement_group(
                        ray.util.get_placement_group(info["placement_group"]))
                except Exception:
                    continue


# ---------------------------------------------------------------------------------------
@ray.remote(max_restarts=-1, max_task_retries=0)
class Relayer:
    """Bridges validators' rewards: finds committed burns on each network and has C0
    mint them from burn proofs.  Its cursor is in LMDB; C0 mints each burn once anyway."""

    def __init__(self, config_dict: dict, data_dir: str) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.crypto.bls_backend)
        self.store = Store(Path(data_dir) / "relayer", ["cursor"], 64)
        self.minted = 0
        self.errors: list[str] = []
        self._loop: asyncio.Task | None = None

    async def start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.relayer.interval_s)
            try:
                await self.relay_once()
            except Exception as exc:
                self.errors = [*self.errors[-9:], str(exc)]

    async def relay_once(self) -> int:
        manager = ray.get_actor(NETWORK_MANAGER_NAME)
        staking = ray.get_actor("staking")
        minted = 0
        for network_id in await manager.active_networks.remote():
            handles = await manager.validator_handles.remote(network_id)
            key = network_id.to_bytes(4, "big")
            raw = self.store.get("cursor", key)
            cursor = int.from_bytes(raw, "big") if raw else 1
            for handle in handles.values():
                try:
                    height = await asyncio.wait_for(handle.committed_height.remote(), 3.0)
                    burns = await asyncio.wait_for(handle.burns_from.remote(cursor), 10.0)
                except Exception:
                    continue
                for _, proof in burns:
                    try:
                        await staking.bridge_mint.remote(proof)
                        minted += 1
                    except Exception as exc:
                        if "ALREADY" not in str(exc) and "already minted" not in str(exc):
                            self.errors = [*self.errors[-9:], str(exc)]
                self.store.put("cursor", key, (min(height, cursor + 199) + 1).to_bytes(8, "big"))
                break
        self.minted += minted
        return minted

    async def status(self) -> dict:
        return {"minted": self.minted, "errors": self.errors}
