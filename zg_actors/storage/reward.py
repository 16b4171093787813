"""Pricing-segment reward pools (docs/spec/storage.md "Incentives"), pure integer arithmetic.

A pool is released over time once its segment of the flow is full: linearly
over the lifetime (0G ChunkLinearReward) or by exponential decay of a fixed
share a year (0G ChunkDecayReward; the seed's 4% a year). Integers only, so
every validator computes the same amounts.
"""

from __future__ import annotations

from zg_actors.config import StorageConfig
from zg_actors.storage.constants import BPS


def released_linear(total: int, elapsed_blocks: int, lifetime_blocks: int) -> int:
    return total * min(max(elapsed_blocks, 0), lifetime_blocks) // lifetime_blocks


def released_decay(total: int, elapsed_blocks: int, decay_bps_per_year: int,
                   blocks_per_year: int) -> int:
    """total x (1 - (1 - r)^t): whole years compound exactly, the running year is linear."""
    years, into_year = divmod(max(elapsed_blocks, 0), blocks_per_year)
    keep = BPS - decay_bps_per_year
    remaining = total * keep**years // BPS**years
    remaining -= remaining * decay_bps_per_year * into_year // (BPS * blocks_per_year)
    return total - remaining


def released(total: int, elapsed_blocks: int, storage: StorageConfig) -> int:
    if storage.reward_schedule == "decay":
        return released_decay(total, elapsed_blocks, storage.decay_bps_per_year,
                              storage.blocks_per_year)
    return released_linear(total, elapsed_blocks, storage.reward_lifetime_blocks)


def answer_reward(pool: int, claimed: int, elapsed_blocks: int | None,
                  storage: StorageConfig) -> int:
    """Half of the segment's released and unclaimed reward (nothing before it is full)."""
    if elapsed_blocks is None:
        return 0
    return max(0, released(pool, elapsed_blocks, storage) - claimed) // 2
