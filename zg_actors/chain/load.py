"""Workload generation: pre-signed token transfers from the devnet load accounts."""

from __future__ import annotations

import random

from zg_actors.chain.tx import Transaction, make_tx
from zg_actors.crypto.devkeys import load_account


class TransferLoad:
    """Signs transfers round-robin over `accounts` funded accounts, tracking nonces."""

    def __init__(self, seed: str, network_id: int, accounts: int, start_nonces: list[int],
                 rng_seed: int = 7) -> None:
        self.network_id = network_id
        self.accounts = [load_account(seed, i) for i in range(accounts)]
        self.nonces = list(start_nonces)
        self.rng = random.Random(rng_seed)
        self.cursor = 0

    def next_batch(self, count: int, amount: int = 1) -> list[Transaction]:
        batch = []
        for _ in range(count):
            i = self.cursor % len(self.accounts)
            self.cursor += 1
            to = self.accounts[self.rng.randrange(len(self.accounts))].address
            batch.append(make_tx(self.accounts[i], self.network_id, self.nonces[i], "token",
                                 "transfer", [to, amount], 0))
            self.nonces[i] += 1
        return batch
