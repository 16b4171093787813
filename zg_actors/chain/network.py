"""What every consensus network runs, derived from the config (pure)."""

from __future__ import annotations

from zg_actors.chain.consensus import TimeoutConfig
from zg_actors.chain.execution import ChainParams, StateMachine
from zg_actors.chain.modules.token import TokenModule
from zg_actors.config import Config
from zg_actors.crypto.devkeys import load_account


def build_state_machine(config: Config, network_id: int) -> StateMachine:
    """The modules every network runs; genesis funds the workload accounts."""
    seed = config.devnet.key_seed
    genesis = {load_account(seed, i).address: config.networks.load_account_balance
               for i in range(config.networks.load_accounts)}
    params = ChainParams(network_id, config.networks.max_block_txs,
                         config.networks.max_block_bytes, config.networks.max_tx_bytes,
                         config.networks.min_tx_fee)
    return StateMachine(params, [TokenModule(config.networks.block_reward, genesis)])


def timeout_config(config: Config) -> TimeoutConfig:
    t = config.networks.timeouts
    return TimeoutConfig(t.propose_s, t.propose_delta_s, t.prevote_s, t.prevote_delta_s,
                         t.precommit_s, t.precommit_delta_s)
