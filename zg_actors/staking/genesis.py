"""C0's genesis allocation from the config (pure)."""

from __future__ import annotations

from zg_actors.config import ZG, Config
from zg_actors.crypto.devkeys import c0_account, validator_identity


def genesis_allocation(config: Config) -> tuple[dict[bytes, int], list[tuple[bytes, bytes, int]]]:
    """(balances, [(validator address, BLS public key, stake)]) in ZG base units."""
    seed = config.devnet.key_seed
    balances = {c0_account(seed, i).address: config.staking.genesis_balance_zg * ZG
                for i in range(config.staking.genesis_accounts)}
    validators = []
    for i in range(config.staking.validators):
        identity = validator_identity(seed, i)
        validators.append((identity.address, identity.bls_pubkey,
                           config.staking.validator_stake_zg * ZG))
    return balances, validators
