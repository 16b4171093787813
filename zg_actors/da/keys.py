"""Deterministic devnet identities of DA signers and dispersers, from `devnet.key_seed`.

Like validators' (crypto/devkeys.py): every actor rebuilds its keys from the
seed and its index. Devnets and tests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from zg_actors.crypto import bls
from zg_actors.crypto.accounts import Account


@dataclass(frozen=True)
class SignerIdentity:
    index: int
    account: Account  # stakes at C0, answers sampling rounds
    bls_secret: int  # signs epoch tickets and batch roots

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
def da_signer_identity(seed: str, index: int) -> SignerIdentity:
    return SignerIdentity(index, Account.from_seed(f"{seed}/da-signer/{index}".encode()),
                          bls.keygen(f"{seed}/da-signer-bls/{index}".encode()))


@lru_cache(maxsize=256)
def disperser_account(seed: str, index: int) -> Account:
    """Pays certificate txs and holds the deposit on every network (funded at genesis)."""
    return Account.from_seed(f"{seed}/da-disperser/{index}".encode())


@lru_cache(maxsize=16)
def c0_attestor(seed: str) -> Account:
    """C0's DA attestation key: signs each sealed epoch registry's hash. Its address is
    fixed in every network's `da` module at genesis (zg_actors.da.module)."""
    return Account.from_seed(f"{seed}/c0-da-attestor".encode())
