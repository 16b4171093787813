"""Shared builders for unit tests: a C0 ledger with the actor's commit-or-drop rule,
and a validator node with real keys, so tests read as examples of use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from zg_actors.chain.block import PRECOMMIT, vote_sign_bytes
from zg_actors.chain.network import build_state_machine
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.config import ZG, Config, load_config
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import validator_identity
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
    machine = build_state_machine(config, network_id)
    return ChainNode(tmp_path / name, machine.params, machine, vset, tick,
                     config.networks.epoch_blocks, 64, config.networks.txpool)


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
