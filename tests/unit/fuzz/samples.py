"""Valid encodings built with the product's own encoders and real keys: the seeds that the
mutating strategies start from."""

from __future__ import annotations

from functools import cache

from zg_actors.chain.block import (
    PRECOMMIT,
    Block,
    CommitCertificate,
    Header,
    make_bitmap,
    vote_sign_bytes,
)
from zg_actors.chain.tx import Transaction, decode_tx, make_tx
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.crypto import bls
from zg_actors.crypto.devkeys import load_account
from zg_actors.crypto.keccak import keccak256

from ...evm_contract import Wallet
from ..helpers import IDENTITIES, identity_at, validator_set

NETWORK_ID = 1
SEED = "zg-devnet"
EVM_CHAIN_ID = 16_601  # any chain id: decoding does not check it


@cache
def vset() -> ValidatorSet:
    return validator_set(IDENTITIES)


@cache
def txs() -> tuple[Transaction, ...]:
    alice, bob = load_account(SEED, 0), load_account(SEED, 1)
    ours = [make_tx(alice, NETWORK_ID, 0, "token", "transfer", [bob.address, 10**18], fee=7),
            make_tx(bob, NETWORK_ID, 3, "flow", "submit", [4096, b"", [[b"\x01" * 32, 12]]]),
            make_tx(alice, 0, 1, "staking", "delegate", [bob.address, 5])]

    wallet = Wallet(2, EVM_CHAIN_ID, SEED)
    ethereum = [decode_tx(wallet.sign(to=bob.address, value=5, kind=kind))
                for kind in (0, 1, 2)]
    ethereum.append(decode_tx(wallet.sign(data=b"\x60\x00\x60\x00\xf3", kind=2)))  # create
    return tuple(ours + ethereum)


def certificate(height: int, block_hash: bytes, round_: int = 0) -> CommitCertificate:
    """Signed by validators 0, 1 and 2 of vset(): more than 2/3 of its power."""
    message = vote_sign_bytes(NETWORK_ID, height, round_, PRECOMMIT, block_hash)
    signers = [0, 1, 2]
    signature = bls.aggregate([bls.sign(identity_at(vset(), i).bls_secret, message)
                               for i in signers])
    return CommitCertificate(NETWORK_ID, height, round_, block_hash,
                             make_bitmap(signers, len(vset())), signature)


@cache
def blocks() -> tuple[Block, ...]:
    out = []
    prev = None
    for height in (1, 2):
        header = Header(NETWORK_ID, height, 0, 1_700_000_000_000 + height,
                        prev.hash if prev else bytes(32), IDENTITIES[0].address,
                        keccak256(b"txs"), keccak256(b"receipts"), keccak256(b"state"),
                        vset().hash, prev and certificate(prev.height, prev.hash).hash
                        or bytes(32), 0)
        block = Block(header, txs()[:height + 2], certificate(height - 1, prev.hash)
                      if prev else None)
        out.append(block)
        prev = block
    return tuple(out)
