"""The validator-set rule at epoch boundaries while C0 may be unreachable (no Ray): the
set in force follows from committed headers alone, so every validator decides the same."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet, refresh_tick, set_changes
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.errors import Unavailable

from .helpers import LedgerHarness, make_node, sign_commit, small_config

EPOCH_BLOCKS = 2


def commit_next(node: ChainNode, config, tick: int, last_commit=None):
    """Build, check and commit the next block, naming C0 tick `tick`."""
    height = node.committed.height + 1
    vset = node.validator_set
    proposer = vset.validators[vset.proposer(height, 0)].address
    block = node.build_block(0, proposer, last_commit, tick)
    node.validate_block(block, proposer)
    cert = sign_commit(node, config, block.hash, height, [0, 1, 2])
    node.commit(block, cert)
    return cert


@pytest.fixture
def network(tmp_path: Path):
    config = small_config(**{"networks.epoch_blocks": EPOCH_BLOCKS})
    c0 = LedgerHarness(config)
    members = [validator_identity(config.devnet.key_seed, i).address for i in range(4)]
    vset = c0.run(lambda ledger: ledger.register_network(0, members))
    node = make_node(tmp_path, config, 0, vset, c0.ledger.tick)
    cert = commit_next(node, config, node.committed.staking_tick)  # height 1
    yield node, config, cert
    node.close()


def test_the_tick_named_is_c0s_or_the_one_in_force_without_c0() -> None:
    assert refresh_tick(7, None) == 7  # C0 unreadable: the set stays
    assert refresh_tick(7, 9) == 9
    assert refresh_tick(7, 6) == 7  # never backwards
    assert not set_changes(7, 7) and set_changes(7, 9)


def test_boundary_keeping_the_tick_commits_with_no_c0_read(network) -> None:
    node, config, cert = network
    before = node.validator_set
    tick = refresh_tick(node.committed.staking_tick, None)
    commit_next(node, config, tick, cert)  # height 2, a boundary; next_set never fetched
    assert node.committed.height == EPOCH_BLOCKS
    assert node.validator_set == before


def test_boundary_switching_sets_needs_that_set_and_commits_nothing_without_it(network) -> None:
    node, config, cert = network
    before = node.validator_set
    tick = node.committed.staking_tick + 5
    height = node.committed.height + 1
    proposer = before.validators[before.proposer(height, 0)].address
    block = node.build_block(0, proposer, cert, tick)
    node.validate_block(block, proposer)
    commit = sign_commit(node, config, block.hash, height, [0, 1, 2])
    # Keeping the old set here would split the network from the validators that could
    # read C0: the commit waits for the set instead, and changes nothing meanwhile.
    with pytest.raises(Unavailable, match=f"C0 tick {tick}"):
        node.commit(block, commit)
    assert node.committed.height == height - 1 and node.validator_set == before
    doubled = ValidatorSet(tuple(replace(v, power=2 * v.power) for v in before.validators))
    node.next_set = doubled
    node.commit(block, commit)
    assert node.committed.height == height and node.validator_set == doubled
    assert node.next_set is None
