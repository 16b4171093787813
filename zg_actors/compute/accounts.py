"""Devnet compute identities and what network 0's genesis gives them (pure).

Like crypto/devkeys.py, keys derive from `devnet.key_seed` so a restarted provider
rebuilds its signing key; a production deployment would load keys from files.
"""

from __future__ import annotations

from functools import lru_cache

from zg_actors.compute.params import MS_PER_S
from zg_actors.compute.serving import ServingModule, ServingParams
from zg_actors.config import Config
from zg_actors.crypto.accounts import Account


@lru_cache(maxsize=1024)
def provider_account(seed: str, index: int) -> Account:
    """Signs responses and settlement txs; holds the provider's stake and earnings."""
    return Account.from_seed(f"{seed}/compute-provider/{index}".encode())


@lru_cache(maxsize=1024)
def user_account(seed: str, index: int) -> Account:
    """Signs inference requests and pays for them through the serving ledgers."""
    return Account.from_seed(f"{seed}/compute-user/{index}".encode())


def compute_genesis_balances(config: Config) -> dict[bytes, int]:
    """Network-0 token balances of the devnet's compute providers and users."""
    seed, c = config.devnet.key_seed, config.compute
    accounts = [provider_account(seed, i) for i in range(c.providers)]
    accounts += [user_account(seed, i) for i in range(c.users)]
    return {a.address: c.genesis_balance for a in accounts}


def serving_module(config: Config) -> ServingModule:
    c = config.compute
    return ServingModule(ServingParams(c.provider_stake, c.min_ledger_balance,
                                       int(c.refund_lock_s * MS_PER_S)))
