"""What a validator records of its rounds and commits: figures for status, reports and
benchmarks, and the Ray metrics its network's dashboard shows (zg_actors/metrics.py)."""

from __future__ import annotations

import time

from zg_actors.chain.block import Block
from zg_actors.chain.node import EvmCommit
from zg_actors.chain.validator_set import ValidatorSet
from zg_actors.evm.params import TX_TYPE_NAMES
from zg_actors.metrics import ChainMetrics

LATENCIES_KEPT = 20_000  # commit latency samples kept for stats()
COMMITS_KEPT = 5_000  # (time, height, txs) records kept for stats()


class ValidatorStats:
    """Rounds started, txs committed, commit latencies and the commit log of one validator."""

    def __init__(self, metrics: ChainMetrics) -> None:
        self.metrics = metrics
        self.rounds = 0
        self.committed_txs = 0
        self.latencies: list[float] = []
        self.commits: list[tuple[float, int, int]] = []  # (time, height, txs)
        self._round_seen: tuple[int, int] | None = None  # (height, round)

    def in_round(self, height: int, round_: int) -> None:
        """The consensus machine is at (height, round_): counted once per round."""
        if self._round_seen != (height, round_):
            self._round_seen = (height, round_)
            self.rounds += 1
            self.metrics.round_started()

    def committed(self, block: Block, latencies: list[float], mempool_size: int,
                  vset: ValidatorSet | None, evm: EvmCommit | None = None) -> None:
        """`block` committed; `vset`: the set in force, when it may have changed; `evm`:
        what the block did in the EVM."""
        self.committed_txs += len(block.txs)
        self.latencies.extend(latencies)
        del self.latencies[:-LATENCIES_KEPT]
        self.commits.append((time.time(), block.height, len(block.txs)))
        del self.commits[:-COMMITS_KEPT]
        self.metrics.committed(block.height, len(block.txs), latencies)
        self.metrics.mempool(mempool_size)
        if evm is not None:
            self.metrics.evm_committed(
                [(TX_TYPE_NAMES[tx_type], "success" if ok else "failed")
                 for tx_type, ok in evm.txs], evm.gas_used, evm.gas_limit, evm.base_fee)
        if vset is not None:
            self.metrics.validator_set({"0x" + v.address.hex()[:8]: v.power
                                        for v in vset.validators})

    def since(self, since: float) -> dict:
        return {"commits": [c for c in self.commits if c[0] >= since],
                "latencies": list(self.latencies)}
