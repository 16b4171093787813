"""What every consensus network runs, derived from the config (pure), and the error for a
network id that names no active network."""

from __future__ import annotations

from pathlib import Path

from zg_actors.chain.consensus import TimeoutConfig
from zg_actors.chain.execution import ChainParams, StateMachine
from zg_actors.chain.modules.base import Module
from zg_actors.chain.modules.token import TokenModule
from zg_actors.chain.node import ChainNode
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.compute.accounts import compute_genesis_balances, serving_module
from zg_actors.compute.params import SERVING_NETWORK_ID
from zg_actors.config import Config
from zg_actors.crypto.devkeys import load_account
from zg_actors.da.keys import disperser_account
from zg_actors.da.module import DAModule, da_module_params
from zg_actors.errors import NotFound
from zg_actors.evm.module import EvmModule
from zg_actors.storage.flow import FlowModule
from zg_actors.storage.mine import MineModule
from zg_actors.storage.placement import client_account


class UnknownNetworkId(NotFound):
    """A network id the network manager does not run: never launched, or retired.  (C0's
    UnknownNetwork is a network id the staking ledger never registered.)"""

    code = "UNKNOWN_NETWORK_ID"


def build_state_machine(config: Config, network_id: int) -> StateMachine:
    """The modules every network runs; genesis funds the workload accounts."""
    seed = config.devnet.key_seed
    genesis = {load_account(seed, i).address: config.networks.load_account_balance
               for i in range(config.networks.load_accounts)}
    modules: list[Module] = []
    if network_id == SERVING_NETWORK_ID:  # the compute marketplace lives on network 0 only
        genesis.update(compute_genesis_balances(config))
        modules.append(serving_module(config))
    # Storage on every network: the devnet client pays for uploads, miners confirm (zero fee).
    genesis[client_account(seed).address] = config.storage.client_balance
    modules += [FlowModule(config.storage, seed), MineModule(config.storage)]
    # DA on every network: dispersers pay certificate txs and deposits (docs/spec/da.md).
    genesis.update({disperser_account(seed, i).address: 10 * config.da.disperser_deposit
                    for i in range(config.da.dispersers)})
    modules.append(DAModule(da_module_params(config)))
    modules.append(EvmModule(config.networks.evm, network_id))  # docs/spec/evm.md
    params = ChainParams(network_id, config.networks.max_block_txs,
                         config.networks.max_block_bytes, config.networks.max_tx_bytes,
                         config.networks.min_tx_fee)
    return StateMachine(params, [TokenModule(config.networks.block_reward, genesis), *modules])


def open_chain_node(config: Config, network_id: int, genesis_set: ValidatorSet,
                    genesis_tick: int, data_dir: Path) -> ChainNode:
    """A validator's copy of the network's chain, in LMDB under `data_dir`: written at
    genesis the first time, reopened where a restarted validator left it after that."""
    machine = build_state_machine(config, network_id)
    return ChainNode(data_dir, machine.params, machine, genesis_set, genesis_tick,
                     config.networks.epoch_blocks, config.lmdb_map_mb, config.networks.txpool)


def timeout_config(config: Config) -> TimeoutConfig:
    t = config.networks.timeouts
    return TimeoutConfig(t.propose_s, t.propose_delta_s, t.prevote_s, t.prevote_delta_s,
                         t.precommit_s, t.precommit_delta_s)
