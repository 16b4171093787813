"""Deterministic devnet identities of DA signers and dispersers, from `devnet.key_seed`.

Like validators' (crypto/devkeys.py): every actor rebuilds its keys from the
seed and its index. Devnets and tests only.
"""

from __future__ import annotations

from functools import lru_cache

from zg_actors.crypto.accounts import Account
from zg_actors.crypto.devkeys import BlsIdentity, bls_identity

SignerIdentity = BlsIdentity


def da_signer_identity(seed: str, index: int) -> BlsIdentity:
    return bls_identity(seed, "da-signer", index)


@lru_cache(maxsize=256)
def disperser_account(seed: str, index: int) -> Account:
    """Pays certificate txs and holds the deposit on every network (funded at genesis)."""
    return Account.from_seed(f"{seed}/da-disperser/{index}".encode())


@lru_cache(maxsize=16)
def c0_attestor(seed: str) -> Account:
    """C0's DA attestation key: signs each sealed epoch registry's hash. Its address is
    fixed in every network's `da` module at genesis (zg_actors.da.module)."""
    return Account.from_seed(f"{seed}/c0-da-attestor".encode())
