"""Shared builders for unit tests: a C0 ledger with the actor's commit-or-drop rule,
a validator node with real keys, and its consensus (Heights) driven as the Validator actor
drives it, so tests read as examples of use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from zg_actors.chain.block import PRECOMMIT, Block, vote_sign_bytes
from zg_actors.chain.consensus import (
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Effect,
    RequestProposal,
)
from zg_actors.chain.heights import BlockPacing, Heights
from zg_actors.chain.network import open_chain_node, timeout_config
from zg_actors.chain.node import ChainNode
from zg_actors.chain.staking_view import StakingView
from zg_actors.chain.stats import ValidatorStats
from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
from zg_actors.config import ZG, Config, load_config
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import BlsIdentity, validator_identity
from zg_actors.metrics import ChainMetrics
from zg_actors.staking.genesis import genesis_allocation
from zg_actors.staking.ledger import StakingLedger, StakingParams
from zg_actors.store.overlay import Overlay

T = TypeVar("T")


def small_config(**changes: object) -> Config:
    base = {"staking.validators": 4, "staking.genesis_accounts": 4,
            "networks.load_accounts": 4, "staking.unbonding_ticks": 3}
    base.update(changes)
    return load_config().replace(**base)


class LedgerHarness:
    """A C0 ledger over a dict; a call that raises changes nothing, like the actor."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state: dict[bytes, bytes] = {}
        self.params = StakingParams(config.staking.unbonding_ticks,
                                    config.staking.slash_fraction_bps,
                                    config.staking.min_stake_zg * ZG)
        self.run(lambda ledger: ledger.genesis(*genesis_allocation(config)))

    def run(self, action: Callable[[StakingLedger], T]) -> T:
        overlay = Overlay(self.state.get)
        result = action(StakingLedger(overlay, self.params))
        for key, value in overlay.writes():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        return result

    @property
    def ledger(self) -> StakingLedger:
        """Read-only view (writes through it are discarded)."""
        return StakingLedger(Overlay(self.state.get), self.params)


def make_node(tmp_path: Path, config: Config, network_id: int, vset: ValidatorSet,
              tick: int, name: str = "v0") -> ChainNode:
    return open_chain_node(config, network_id, vset, tick, tmp_path / name)


def sign_commit(node: ChainNode, config: Config, block_hash: bytes, height: int,
                signers: list[int], round_: int = 0):
    """A certificate signed by the given indexes of the node's validator set."""
    seed = config.devnet.key_seed
    by_address = {validator_identity(seed, i).address: validator_identity(seed, i)
                  for i in range(config.staking.validators)}
    message = vote_sign_bytes(node.params.network_id, height, round_, PRECOMMIT, block_hash)
    votes = []
    for index in signers:
        identity = by_address[node.validator_set.validators[index].address]
        votes.append((index, bls.sign(identity.bls_secret, message)))
    return node.make_certificate(height, round_, block_hash, votes)


# ---- a validator's consensus, with no actor --------------------------------------------
IDENTITIES = [validator_identity("zg-devnet", i) for i in range(4)]  # small_config's keys


def validator_set(identities: list[BlsIdentity]) -> ValidatorSet:
    return ValidatorSet.from_list([ValidatorInfo(i.address, i.bls_pubkey, 100)
                                   for i in identities])


def identity_at(vset: ValidatorSet, index: int) -> BlsIdentity:
    """The identity of the validator at `index` of `vset` (a set is ordered by address)."""
    return next(i for i in IDENTITIES if i.address == vset.validators[index].address)


class C0Gone:
    """C0's handle while the staking actor cannot be reached."""

    def __getattr__(self, method: str) -> object:
        raise ValueError("Failed to look up actor with name 'staking'")


def make_heights(node: ChainNode, config: Config, identity: BlsIdentity,
                 now: float = 0.0) -> Heights:
    networks = config.networks
    return Heights(node, identity, timeout_config(config), StakingView(0, C0Gone),
                   BlockPacing(networks.block_interval_s, networks.empty_block_interval_s,
                               now, now),
                   ValidatorStats(ChainMetrics(0)), networks.reward_burn_threshold)


async def carry_out(heights: Heights, effects: list[Effect], now: float,
                    decide: bool = True) -> list[Block | Decide]:
    """What the Validator actor does with the effects (timeouts aside): propose, sign and
    count our own votes, commit.  Returns the blocks committed, or with `decide` False the
    decisions, not carried out."""
    out: list[Block | Decide] = []
    pending = list(effects)
    while pending:
        effect = pending.pop(0)
        if isinstance(effect, RequestProposal):
            pending += await heights.propose(effect.height, effect.round)
        elif isinstance(effect, BroadcastProposal):
            heights.sign_proposal(effect.proposal)
        elif isinstance(effect, BroadcastVote):
            _, (_, args) = heights.sign_vote(effect.vote)
            pending += heights.on_vote(*args, verified=True)
        elif isinstance(effect, Decide) and not decide:
            out.append(effect)
        elif isinstance(effect, Decide) and (block := heights.decide(effect, now)):
            out.append(block)
    return out


def commit_heights(heights: Heights, count: int) -> list[Block]:
    """A network of one validator (all the power) commits `count` heights."""

    async def run() -> list[Block]:
        blocks = []
        for _ in range(count):
            effects, _ = heights.start()
            blocks += await carry_out(heights, effects, 0.0)
        return blocks

    return asyncio.run(run())
