"""Ray metrics exported by the actors (Prometheus names get Ray's `ray_` prefix).

Metric names are listed in README.md and used by dashboards/zg-chain.json; a
unit test checks that the dashboard uses only these names.
"""

from __future__ import annotations

from ray.util import metrics

# (name, kind, description, tag keys)
CHAIN_METRICS = {
    "zg_chain_block_height": ("gauge", "Committed height", ("network_id",)),
    "zg_chain_committed_txs": ("counter", "Txs in committed blocks", ("network_id",)),
    "zg_chain_rounds": ("counter", "Consensus rounds started", ("network_id",)),
    "zg_chain_commit_latency_seconds": ("histogram", "Tx received -> block committed",
                                        ("network_id",)),
    "zg_chain_mempool_txs": ("gauge", "Txs waiting in the mempool", ("network_id",)),
    "zg_chain_validators": ("gauge", "Validators in the set", ("network_id",)),
    "zg_chain_voting_power": ("gauge", "Voting power of a validator",
                              ("network_id", "validator")),
}
STAKING_METRICS = {
    "zg_staking_total_supply": ("gauge", "ZG total supply on C0 (base units / 1e18)", ()),
    "zg_staking_bridge_mints": ("counter", "Burns minted on C0 by the bridge", ()),
    "zg_staking_slashings": ("counter", "Validators slashed for double signing", ()),
}
LATENCY_BOUNDARIES_S = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30]


def make(name: str, spec: tuple) -> metrics.Metric:
    kind, description, tags = spec
    if kind == "gauge":
        return metrics.Gauge(name, description, tag_keys=tags)
    if kind == "counter":
        return metrics.Counter(name, description, tag_keys=tags)
    return metrics.Histogram(name, description, boundaries=LATENCY_BOUNDARIES_S, tag_keys=tags)


class ChainMetrics:
    """One validator's view of its network's metrics."""

    def __init__(self, network_id: int) -> None:
        self.tags = {"network_id": str(network_id)}
        self.m = {name: make(name, spec) for name, spec in CHAIN_METRICS.items()}
        self._in_set: set[str] = set()

    def committed(self, height: int, txs: int, latencies: list[float]) -> None:
        self.m["zg_chain_block_height"].set(height, self.tags)
        if txs:
            self.m["zg_chain_committed_txs"].inc(txs, self.tags)
        hist = self.m["zg_chain_commit_latency_seconds"]
        for latency in latencies[:200]:  # a sample per block keeps the cost flat
            hist.observe(latency, self.tags)

    def round_started(self) -> None:
        self.m["zg_chain_rounds"].inc(1, self.tags)

    def mempool(self, size: int) -> None:
        self.m["zg_chain_mempool_txs"].set(size, self.tags)

    def validator_set(self, powers: dict[str, int]) -> None:
        self.m["zg_chain_validators"].set(len(powers), self.tags)
        # A validator that left the set (jailed, unstaked) shows 0, not its last power.
        for gone in self._in_set - set(powers):
            self.m["zg_chain_voting_power"].set(0, {**self.tags, "validator": gone})
        for validator, power in powers.items():
            self.m["zg_chain_voting_power"].set(power, {**self.tags, "validator": validator})
        self._in_set = set(powers)


class StakingMetrics:
    def __init__(self) -> None:
        self.m = {name: make(name, spec) for name, spec in STAKING_METRICS.items()}

    def supply(self, base_units: int) -> None:
        self.m["zg_staking_total_supply"].set(base_units / 10**18)

    def bridge_mint(self) -> None:
        self.m["zg_staking_bridge_mints"].inc(1)

    def slashing(self) -> None:
        self.m["zg_staking_slashings"].inc(1)
