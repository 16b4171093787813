"""The Validator actor: one validator identity's node on one network.

Validators of a network call each other's methods directly; no central actor decides
blocks.  The actor owns timers and messaging only: Heights (chain/heights.py) runs the
pure ConsensusMachine on the chain a ChainNode keeps in LMDB and signs through it (what it
signs is persisted first), its Inbox (chain/inbox.py) routes peers' messages, Peers
(chain/peers.py) re-sends ours until each peer holds them, CatchUp (chain/catch_up.py)
applies blocks we missed, and StakingView (chain/staking_view.py) reads C0.  Ray lookups
are passed in, so that unit tests can drive the actor with stand-in peers and C0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import ray

from zg_actors.chain import consensus
from zg_actors.chain.block import Block
from zg_actors.chain.catch_up import SYNC_BATCH_BLOCKS, CatchUp, ValidatorSyncing
from zg_actors.chain.execution import tune_gc_for_execution
from zg_actors.chain.gossip import MessageKind
from zg_actors.chain.heights import BlockPacing, Heights
from zg_actors.chain.inbox import Message, Routing
from zg_actors.chain.network import UnknownNetworkId, open_chain_node, timeout_config
from zg_actors.chain.peers import Peers
from zg_actors.chain.staking_view import StakingView
from zg_actors.chain.stats import ValidatorStats
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.config import config_from_dict
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.metrics import ChainMetrics
from zg_actors.placement import node_data_dir
from zg_actors.staking.actors import STAKING_ACTOR_NAME

MAX_WAIT_HEIGHT_S = 10.0  # a long poll holds a call this long at most; callers loop
READ_SYNC_WAIT_S = 5.0  # a state read waits this long for a catch-up to end, then refuses
READ_SYNC_POLL_S = 0.05


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
        self.node = open_chain_node(
            self.config, network_id, ValidatorSet.decode(genesis_set), genesis_tick,
            node_data_dir(data_dir, self.config.data_dir_per_node) / f"network-{network_id}"
            / f"validator-{identity}")
        self.started = False
        self.stopped = False
        self.peers = Peers(self.identity.index, members,
                           lambda peer: get_actor(validator_name(network_id, peer)))
        self.c0 = StakingView(network_id, lambda: get_actor(STAKING_ACTOR_NAME))
        networks = self.config.networks
        pacing = BlockPacing(networks.block_interval_s, networks.empty_block_interval_s,
                             time.time(), time.time())
        self.record = ValidatorStats(ChainMetrics(network_id))
        self.heights = Heights(self.node, self.identity, timeout_config(self.config), self.c0,
                               pacing, self.record, networks.reward_burn_threshold)
        self.catch_up = CatchUp(
            self.node, lambda start: self.peers.blocks_from(start, SYNC_BATCH_BLOCKS),
            self.c0.set_at_tick, self._caught_up)
        self._committed_event = asyncio.Event()  # set, then replaced, at every commit
        self._idle: asyncio.TimerHandle | None = None  # waiting for txs before a height
        tune_gc_for_execution()  # this worker process hosts this actor alone

    # ---- lifecycle ----------------------------------------------------------------
    async def start(self) -> dict:
        """Begin (or resume, after a restart) consensus; idempotent."""
        if not self.started and not self.stopped:
            self.started = True
            await self.catch_up.run(time.time())
            self._start_height()
        self.peers.ensure_deliveries()
        return await self.status()

    async def stop(self) -> None:
        """Stop taking part (network retired); the store stays."""
        self.stopped = True
        self.heights.machine = None
        self.peers.stop()

    async def _ensure_started(self) -> None:
        if not self.started and not self.stopped:
            await self.start()

    # ---- heights --------------------------------------------------------------------
    def _start_height(self) -> None:
        if self.stopped:
            return
        self.peers.outbox.prune(self.node.committed.height)  # peers may lack its precommits
        effects, unknown_set = self.heights.start()
        if unknown_set is not None:  # a restart forgot the next set of the block locked on
            asyncio.get_running_loop().create_task(self.c0.fetch_next_set(self.node, unknown_set))
        self._process(effects)
        for message in self.heights.inbox.take(self.heights.next_height):
            self._dispatch(message)

    def _process(self, effects: list[consensus.Effect]) -> None:
        loop = asyncio.get_running_loop()
        self.heights.count_round()
        for effect in effects:
            if isinstance(effect, consensus.RequestProposal):
                loop.create_task(self._propose(effect.height, effect.round))
            elif isinstance(effect, consensus.BroadcastProposal):
                self._send_proposal(effect.proposal)
            elif isinstance(effect, consensus.BroadcastVote):
                self._send_vote(effect.vote)
            elif isinstance(effect, consensus.ScheduleTimeout):
                loop.call_later(effect.delay, self._on_timeout, effect.height, effect.round,
                                effect.step)
            elif isinstance(effect, consensus.Decide):
                self._decide(effect)
            elif isinstance(effect, consensus.Equivocation):
                loop.create_task(self.c0.report_double_sign(self.node.validator_set,
                                                            effect.first, effect.second))
        self.heights.count_round()

    def _on_timeout(self, height: int, round_: int, step: consensus.Step) -> None:
        self._process(self.heights.on_timeout(height, round_, step))

    async def _propose(self, height: int, round_: int) -> None:
        self._process(await self.heights.propose(height, round_))

    def _send_proposal(self, proposal: consensus.Proposal) -> None:
        self.peers.gossip(*self.heights.sign_proposal(proposal))

    def _send_vote(self, vote: consensus.Vote) -> None:
        key, message = self.heights.sign_vote(vote)
        self.peers.gossip(key, message)
        self._handle_vote(*message[1], verified=True)

    # ---- incoming messages ------------------------------------------------------------
    async def on_messages(self, sender: int, incarnation: bytes,
                          messages: list[Message]) -> tuple[bytes, list[bool]]:
        """Proposals and votes from `sender`'s outbox.  Answers our incarnation and, per
        message, whether we hold it (counted, or buffered for a coming height)."""
        await self._ensure_started()
        self.peers.received_from(sender, incarnation)
        return self.peers.incarnation, [
            await self.on_proposal(*args) if kind == MessageKind.PROPOSAL
            else self._handle_vote(*args) for kind, args in messages]

    def _dispatch(self, message: Message) -> None:
        """A message kept for the height we start now."""
        kind, args = message
        if kind == MessageKind.PROPOSAL:
            asyncio.get_running_loop().create_task(self.on_proposal(*args))
        else:
            self._handle_vote(*args)

    def _follow(self, routing: Routing) -> bool | None:
        """Whether we hold a message not for the height we vote on; None when it is."""
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
        held = self._follow(self.heights.route(height, (MessageKind.PROPOSAL, args)))
        if held is None:
            held, effects = await self.heights.on_proposal(*args)
            self._process(effects)
        return held

    async def on_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                      validator: int, signature: bytes) -> bool:
        """A peer's vote; whether we hold it (False: send it again later)."""
        await self._ensure_started()
        return self._handle_vote(height, round_, vote_type, block_hash, validator, signature)

    def _handle_vote(self, height: int, round_: int, vote_type: int, block_hash: bytes,
                     validator: int, signature: bytes, verified: bool = False) -> bool:
        args = (height, round_, vote_type, block_hash, validator, signature)
        held = self._follow(self.heights.route_vote(*args))
        if held is None:
            self._process(self.heights.on_vote(*args, verified=verified))
        return True if held is None else held

    # ---- commits ----------------------------------------------------------------------
    def _decide(self, decision: consensus.Decide) -> None:
        if self.heights.decide(decision, time.time()) is None:
            return
        self._after_commit()
        asyncio.get_running_loop().call_later(
            self.heights.pacing.next_height_delay(time.time()), self._next_height)

    def _next_height(self) -> None:
        """Start the next height now, or wait for txs (BlockPacing says which)."""
        if self.stopped or self.heights.machine is not None:
            return
        idle_for = self.heights.pacing.idle_wait(time.time(), self.node.mempool.pending_count)
        if idle_for <= 0:
            self._start_height()
            return
        self._idle = asyncio.get_running_loop().call_later(idle_for, self._wake)

    def _wake(self) -> None:
        """End an idle wait (a tx, a peer's message for the next height, or the timer)."""
        if self._idle is None:
            return
        self._idle.cancel()
        self._idle = None
        if not self.stopped and self.heights.machine is None:
            self._start_height()

    def _after_commit(self) -> None:
        """A block committed (decided, or caught up): wake long polls, burn our rewards."""
        self._committed_event.set()
        self._committed_event = asyncio.Event()
        if (burn := self.heights.burn_rewards()) is not None:
            self.peers.broadcast("submit_txs", [burn], False)

    def _caught_up(self, block: Block) -> None:
        self.heights.committed(block, [], time.time())
        self._after_commit()

    # ---- catch-up --------------------------------------------------------------------
    async def _sync_and_restart(self) -> None:
        if await self.catch_up.run(time.time()) and not self.stopped:
            self._start_height()

    # ---- queries ---------------------------------------------------------------------
    async def _serving_reads(self) -> None:
        """State reads come from a validator that follows the chain: one catching up (after
        a restart, at genesis if it lost its disk) waits up to READ_SYNC_WAIT_S for it to
        end, else refuses (ValidatorSyncing: a chain client asks another validator)."""
        if not self.started and not self.stopped:  # restarted: this read resumes it
            asyncio.get_running_loop().create_task(self._ensure_started())
        deadline = time.monotonic() + READ_SYNC_WAIT_S
        while self.catch_up.syncing or not (self.started or self.stopped):
            if time.monotonic() >= deadline:
                raise ValidatorSyncing(
                    f"validator {self.identity.index} of network {self.network_id} is "
                    f"catching up (at height {self.node.committed.height}): ask another",
                    network_id=self.network_id, height=self.node.committed.height)
            await asyncio.sleep(READ_SYNC_POLL_S)

    async def committed_height(self) -> int:
        return self.node.committed.height

    async def wait_height(self, height: int, timeout_s: float) -> int:
        """The committed height, once it reaches `height` or after `timeout_s` (at most
        MAX_WAIT_HEIGHT_S), whichever is first: a client waiting for its tx asks once per
        block instead of polling."""
        deadline = time.monotonic() + min(max(0.0, float(timeout_s)), MAX_WAIT_HEIGHT_S)
        while self.node.committed.height < height and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._committed_event.wait(), left)
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
        # handling votes meanwhile instead of stalling consensus. Txs without such work
        # (Ethereum txs: ~0.1 ms each to decode) stay on the loop: a thread would only
        # contend with it for the GIL.
        if self.node.needs_preparation(raw_txs):
            await asyncio.get_running_loop().run_in_executor(None, self.node.prepare_txs,
                                                             raw_txs)
        results = self.node.add_txs(raw_txs)
        accepted = [raw for raw, error in zip(raw_txs, results, strict=True) if error is None]
        if accepted:
            # An idle network proposes an executable tx at once. A future-nonce tx waits
            # for the one that fills its gap (a batch can overtake an earlier one): a height
            # started for it would commit an empty block.
            if self.node.mempool.pending_count:
                self._wake()
            if forward:
                self.peers.broadcast("submit_txs", accepted, False)
        self.record.metrics.mempool(len(self.node.mempool))
        return results

    async def account(self, address: bytes) -> dict:
        await self._serving_reads()
        return {"balance": self.node.balance(address),
                "nonce": self.node.machine.account_nonce(self.node.state_get, address)}

    async def query(self, module: str, method: str, args: tuple) -> object:
        await self._serving_reads()
        return self.node.machine.query(self.node.state_get, module, method, args)

    async def query_at(self, height: int, module: str, method: str, args: tuple) -> object:
        """`query` on the state as it was after block `height` (eth_call at a block)."""
        await self._serving_reads()
        return self.node.machine.query(self.node.state_get_at(height), module, method, args)

    async def receipts_at(self, height: int) -> list[bytes]:
        """The encoded receipts of committed block `height`: the block's own, then one per
        tx in block order ([] if none is kept)."""
        await self._serving_reads()
        return self.node.receipts_at(height)

    async def burns_from(self, height: int, limit: int = 200) -> list[tuple[int, Any]]:
        """Burn proofs for committed heights [height, height + limit)."""
        return self.node.burns_from(height, limit)

    async def status(self) -> dict:
        return {"network_id": self.network_id, "identity": self.identity.index,
                "address": "0x" + self.identity.address.hex(), **self.heights.status(),
                "started": self.started, "syncing": self.catch_up.syncing,
                "stopped": self.stopped}

    async def stats(self, since: float = 0.0) -> dict:
        """Commit log and latency samples for reports and benchmarks."""
        return {**await self.status(), **self.record.since(since)}
