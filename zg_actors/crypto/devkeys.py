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
class BlsIdentity:
    """An account plus a BLS key: a validator (votes) or a DA signer (tickets, batches)."""

    index: int
    account: Account  # rewards, stake, evidence identity
    bls_secret: int  # signs votes, or epoch tickets and batch roots

    @property
    def address(self) -> bytes:
        return self.account.address

    @property
    def bls_pubkey(self) -> bytes:
        return _pubkey(self.bls_secret)


@lru_cache(maxsize=1024)
def _pubkey(secret: int) -> bytes:
    return bls.sk_to_pk(secret)


ValidatorIdentity = BlsIdentity


@lru_cache(maxsize=2048)
def bls_identity(seed: str, role: str, index: int) -> BlsIdentity:
    """The identity number `index` of a role ("validator", "da-signer")."""
    return BlsIdentity(index, Account.from_seed(f"{seed}/{role}/{index}".encode()),
                       bls.keygen(f"{seed}/{role}-bls/{index}".encode()))


def validator_identity(seed: str, index: int) -> BlsIdentity:
    return bls_identity(seed, "validator", index)


@lru_cache(maxsize=4096)
def c0_account(seed: str, index: int) -> Account:
    """Funded ZG accounts on C0."""
    return Account.from_seed(f"{seed}/c0-account/{index}".encode())


@lru_cache(maxsize=4096)
def load_account(seed: str, index: int) -> Account:
    """Funded local-token accounts on every consensus network, for workloads."""
    return Account.from_seed(f"{seed}/load-account/{index}".encode())
