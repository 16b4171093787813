"""Catching up: a validator applies the committed blocks a peer ahead of it fetches for it,
each only with a certificate its validator set signed; CatchUp runs one at a time, at most
one per interval.  Blocks come from another node's store through a plain async callable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zg_actors.chain.block import Block
from zg_actors.chain.catch_up import CatchUp, catch_up
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.errors import InvalidProof

from .helpers import (
    IDENTITIES,
    commit_heights,
    make_heights,
    make_node,
    small_config,
    validator_set,
)


def chain_ahead(tmp_path: Path, heights: int) -> tuple[ChainNode, ChainNode]:
    """A node that committed `heights` blocks and a fresh one on the same genesis."""
    config = small_config()
    vset = validator_set([IDENTITIES[0]])
    ahead = make_node(tmp_path, config, 0, vset, 1, name="ahead")
    commit_heights(make_heights(ahead, config, IDENTITIES[0]), heights)
    return ahead, make_node(tmp_path, config, 0, vset, 1, name="behind")


async def no_set(tick: int) -> ValidatorSet:
    raise AssertionError(f"no epoch boundary here, yet C0's set at tick {tick} was read")


def test_a_node_behind_applies_the_peers_blocks_in_batches_until_none_is_left(
        tmp_path: Path) -> None:
    ahead, behind = chain_ahead(tmp_path, 5)
    asked: list[int] = []

    async def fetch(height: int) -> list[tuple[bytes, bytes]]:
        asked.append(height)
        return ahead.blocks_range(height, 2)

    committed: list[Block] = []
    applied = asyncio.run(catch_up(behind, fetch, no_set, committed.append))
    assert applied == 5 and asked == [1, 3, 5, 6]
    assert [b.height for b in committed] == [1, 2, 3, 4, 5]
    assert behind.committed.block_hash == ahead.committed.block_hash
    ahead.close()
    behind.close()


def test_blocks_committed_by_consensus_during_the_fetch_are_skipped(tmp_path: Path) -> None:
    ahead, behind = chain_ahead(tmp_path, 3)

    async def fetch(height: int) -> list[tuple[bytes, bytes]]:
        items = ahead.blocks_range(height, 3)
        if height == 1:  # meanwhile this node decided height 1 itself
            behind.apply_synced(*items[0])
        return items

    committed: list[Block] = []
    applied = asyncio.run(catch_up(behind, fetch, no_set, committed.append))
    assert applied == 2 and [b.height for b in committed] == [2, 3]
    assert behind.committed.block_hash == ahead.committed.block_hash
    ahead.close()
    behind.close()


def test_a_block_with_a_certificate_for_another_block_is_not_applied(tmp_path: Path) -> None:
    ahead, behind = chain_ahead(tmp_path, 2)
    (block_1, _), (_, cert_2) = ahead.blocks_range(1, 2)

    async def forged(height: int) -> list[tuple[bytes, bytes]]:
        return [(block_1, cert_2)]

    committed: list[Block] = []
    with pytest.raises(InvalidProof):
        asyncio.run(catch_up(behind, forged, no_set, committed.append))
    assert behind.committed.height == 0 and committed == []
    ahead.close()
    behind.close()


def test_catch_ups_run_one_at_a_time_and_at_most_one_per_interval(tmp_path: Path) -> None:
    ahead, behind = chain_ahead(tmp_path, 3)
    asked: list[int] = []
    release = asyncio.Event()

    async def slow_fetch(height: int) -> list[tuple[bytes, bytes]]:
        asked.append(height)
        await release.wait()
        return ahead.blocks_range(height, 64)

    sync = CatchUp(behind, slow_fetch, no_set, lambda block: None, min_interval_s=0.5)

    async def run() -> tuple[int, int, int, int]:
        first = asyncio.ensure_future(sync.run(100.0))
        await asyncio.sleep(0)
        assert sync.syncing
        during = await sync.run(101.0)  # one runs: this one does nothing
        release.set()
        applied = await first
        too_soon = await sync.run(100.3)
        later = await sync.run(101.0)
        return applied, during, too_soon, later

    assert asyncio.run(run()) == (3, 0, 0, 0)
    assert asked == [1, 4, 4] and not sync.syncing  # the later one asked, found nothing new
    assert behind.committed.height == 3
    ahead.close()
    behind.close()
