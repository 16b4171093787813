"""Deterministic devnet identities derived from `devnet.key_seed`.

Every actor can rebuild its own keys from the seed and its index, so a
restarted actor needs no key file.  This is for devnets and tests only; a
production deployment would load keys from files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from zg_actors.crypto import bls
from zg_actors.crypto.accounts import Account


@dataclass(frozen=True)
class ValidatorIdentity:
    index: int
    account: Account  # rewards, evidence identity
    bls_secret: int  # signs votes

    @property
    def address(self) -> bytes:
        return self.account.address

    @property
    def bls_pubkey(self) -> bytes:
        return _pubkey(self.bls_secret)


@lru_cache(maxsize=1024)
def _pubkey(secret: int) -> bytes:
    return bls.sk_to_pk(secret)


@lru_cache(maxsize=1024)
def validator_identity(seed: str, index: int) -> ValidatorIdentity:
    return ValidatorIdentity(index, Account.from_seed(f"{seed}/validator/{index}".encode()),
                             bls.keygen(f"{seed}/validator-bls/{index}".encode()))


@lru_cache(maxsize=4096)
def c0_account(seed: str, index: int) -> Account:
    """Funded ZG accounts on C0."""
    return Account.from_seed(f"{seed}/c0-account/{index}".encode())


@lru_cache(maxsize=4096)
def load_account(seed: str, index: int) -> Account:
    """Funded local-token accounts on every consensus network, for workloads."""
    return Account.from_seed(f"{seed}/load-account/{index}".encode())
