"""Catching up: committed blocks a validator missed, fetched from a peer, checked, applied.

Pure (no Ray): the actor passes in how blocks are fetched (Peers asks the most advanced
peer) and how C0's validator set at a tick is read (StakingView), so unit tests drive it
with another node's blocks.  A fetched block counts only with a commit certificate that
the validator set in force signed (ChainNode.apply_synced): a faulty peer cannot make us
apply a block the network did not commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from zg_actors.chain.block import Block
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet, set_changes
from zg_actors.errors import Unavailable

log = logging.getLogger(__name__)

SYNC_BATCH_BLOCKS = 64  # blocks one fetch returns at most
SYNC_MIN_INTERVAL_S = 0.5  # between catch-ups started by peers' messages

class ValidatorSyncing(Unavailable):
    """A validator that is catching up (or has not resumed since a restart) answers no
    reads: its state may be blocks behind the network's (after losing its disk, at
    genesis). A chain client asks another validator."""

    code = "VALIDATOR_SYNCING"


# height -> the committed (block, certificate) pairs from there on, [] when none is ahead
FetchBlocks = Callable[[int], Awaitable[list[tuple[bytes, bytes]]]]


async def catch_up(node: ChainNode, fetch_blocks: FetchBlocks,
                   set_at_tick: Callable[[int], Awaitable[ValidatorSet]],
                   committed: Callable[[Block], None]) -> int:
    """Apply what `fetch_blocks` returns after our last commit until it returns nothing;
    `committed` is told of each block applied (not of those that consensus committed here
    meanwhile, which are skipped).  Returns how many were applied.  At an
    epoch boundary that switches sets, C0's next set is read first (set_at_tick raises
    while C0 cannot be read: the block then waits for the next catch-up)."""
    applied = 0
    while items := await fetch_blocks(node.committed.height + 1):
        for block_raw, cert_raw in items:
            block = Block.decode(block_raw)
            if block.height <= node.committed.height:
                continue  # consensus committed it here while the fetch was under way
            if node.is_epoch_boundary(block.height):
                tick = block.header.staking_tick
                node.next_set = (await set_at_tick(tick)
                                 if set_changes(node.committed.staking_tick, tick) else None)
            node.apply_synced(block_raw, cert_raw)
            committed(block)
            applied += 1
    return applied


class CatchUp:
    """One catch-up at a time, at most one per SYNC_MIN_INTERVAL_S: every message from a
    peer ahead of us asks for one, and each costs a round of calls to every peer."""

    def __init__(self, node: ChainNode, fetch_blocks: FetchBlocks,
                 set_at_tick: Callable[[int], Awaitable[ValidatorSet]],
                 committed: Callable[[Block], None],
                 min_interval_s: float = SYNC_MIN_INTERVAL_S) -> None:
        self.node = node
        self.fetch_blocks = fetch_blocks
        self.set_at_tick = set_at_tick
        self.committed = committed
        self.min_interval_s = min_interval_s
        self.syncing = False
        self.last_started = float("-inf")

    async def run(self, now: float) -> int:
        """Catch up unless one runs or ran less than min_interval_s before `now`; returns
        how many blocks were applied."""
        if self.syncing or now - self.last_started < self.min_interval_s:
            return 0
        self.syncing, self.last_started = True, now
        try:
            applied = await catch_up(self.node, self.fetch_blocks, self.set_at_tick,
                                     self.committed)
        finally:
            self.syncing = False
        if applied:
            log.info("network %d: synced to height %d", self.node.params.network_id,
                     self.node.committed.height)
        return applied
