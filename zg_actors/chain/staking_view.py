"""One network's link to C0, the staking actor: its validator set at a tick, C0's final
tick, and double-sign evidence for C0 to slash.

No Ray here: the actor passes in how the staking actor's handle is looked up, so unit tests
drive this with a stand-in C0.  Every read gives up after C0_READ_TIMEOUT_S: while C0 is
down the network keeps its validator set and goes on committing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from zg_actors.chain.block import Block
from zg_actors.chain.consensus import Vote
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet, set_changes
from zg_actors.staking.ledger import DoubleSignEvidence

log = logging.getLogger(__name__)

C0_READ_TIMEOUT_S = 1.0  # a C0 read not answered by then: C0 counts as unreachable


def double_sign_evidence(network_id: int, vset: ValidatorSet, first: Vote,
                         second: Vote) -> DoubleSignEvidence:
    """The evidence that the validator of `first` signed `second` too, for one step."""
    return DoubleSignEvidence(network_id, first.height, first.round, int(first.vote_type),
                              vset.validators[first.validator].address, first.block_hash,
                              first.signature, second.block_hash, second.signature)


class StakingView:
    """C0's validator sets of network `network_id`, fetched once per tick."""

    def __init__(self, network_id: int, staking: Callable[[], Any]) -> None:
        self.network_id = network_id
        self.staking = staking  # -> the staking actor's handle (raises while it is gone)
        self.sets_by_tick: dict[int, ValidatorSet] = {}
        self.evidence_sent: set[bytes] = set()  # ids of the evidence handed to C0

    async def set_at_tick(self, tick: int) -> ValidatorSet:
        """C0's validator set of this network at `tick` (raises when C0 cannot be read)."""
        if tick not in self.sets_by_tick:
            raw = await asyncio.wait_for(
                self.staking().validator_set_at.remote(self.network_id, tick),
                C0_READ_TIMEOUT_S)
            self.sets_by_tick[tick] = ValidatorSet.decode(raw)
        return self.sets_by_tick[tick]

    def next_set_known(self, node: ChainNode, block: Block) -> bool:
        """Whether `node` can commit `block` as far as the validator set goes: it keeps the
        set in force, or we hold C0's set at the tick it names (chain/validator_set.py)."""
        tick = block.header.staking_tick
        return (not node.is_epoch_boundary(block.height)
                or not set_changes(node.committed.staking_tick, tick)
                or tick in self.sets_by_tick)

    async def fetch_next_set(self, node: ChainNode, block: Block) -> bool:
        """Make `block`'s next validator set known (see next_set_known); False while C0
        cannot be read."""
        if self.next_set_known(node, block):
            return True
        try:
            await self.set_at_tick(block.header.staking_tick)
            return True
        except Exception as exc:
            log.warning("network %d: no validator set at C0 tick %d yet: %r", self.network_id,
                        block.header.staking_tick, exc)
            return False

    async def final_tick(self) -> int | None:
        """C0's latest final tick, its validator set fetched; None when C0 cannot be read."""
        try:
            tick = await asyncio.wait_for(self.staking().final_tick.remote(),
                                          C0_READ_TIMEOUT_S)
            await self.set_at_tick(tick)
            return tick
        except Exception as exc:
            log.warning("network %d: C0 unreachable, the validator set stays: %r",
                        self.network_id, exc)
            return None

    async def report_double_sign(self, vset: ValidatorSet, first: Vote, second: Vote) -> None:
        """Hand C0 the evidence that a validator of `vset` signed both votes; C0 slashes
        it.  Each pair once from here (C0 slashes once anyway: another validator may have
        been first)."""
        evidence = double_sign_evidence(self.network_id, vset, first, second)
        if evidence.id in self.evidence_sent:
            return
        self.evidence_sent.add(evidence.id)
        log.warning("network %d: validator 0x%s double-signed at height %d round %d; "
                    "submitting evidence to C0", self.network_id, evidence.validator.hex(),
                    evidence.height, evidence.round)
        try:
            await self.staking().submit_evidence.remote(evidence)
        except Exception as exc:
            log.info("evidence not applied: %s", exc)
