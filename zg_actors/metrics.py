"""Ray metrics exported by the actors and SDKs, every one defined here with its description
and tag keys (Prometheus names get Ray's `ray_` prefix, counters `_total`).

Metric names are listed in docs/monitoring.md and used by the dashboards in dashboards/;
unit tests check that the dashboards query only these names and show every one of them.
"""

from __future__ import annotations

from collections import Counter

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
STORAGE_METRICS = {
    "zg_storage_uploads": ("counter", "Files the storage SDK uploaded (submitted, every "
                           "shard sent)", ("network_id",)),
    "zg_storage_upload_bytes": ("counter", "Bytes of the files uploaded", ("network_id",)),
    "zg_storage_download_bytes": ("counter", "Bytes downloaded and verified against the "
                                  "file root", ("network_id",)),
    "zg_storage_segments_stored": ("counter", "Segment shards a miner verified and persisted "
                                   "(uploads and rebuilds)", ("miner",)),
    "zg_storage_segments_held": ("gauge", "Segment shards in a miner's store", ("miner",)),
    "zg_storage_pora_answers": ("counter", "PoRA answers a miner submitted",
                                ("miner", "network_id")),
    "zg_storage_rewards": ("gauge", "Mining rewards paid to a miner (ZG)",
                           ("miner", "network_id")),
    "zg_storage_segments_short": ("gauge", "Segments below their full redundancy at the "
                                  "repairer's latest round", ()),
    "zg_storage_segments_lost": ("gauge", "Segments with fewer than k shards left at the "
                                 "repairer's latest round", ()),
}
DA_METRICS = {
    "zg_da_blobs": ("counter", "Blobs reaching a status (PROCESSING when accepted)",
                    ("network_id", "status")),
    "zg_da_dispersed_bytes": ("counter", "Payload bytes of blobs certified on chain",
                              ("network_id",)),
    "zg_da_certificate_latency_seconds": ("histogram", "Blob accepted -> certificate on "
                                          "chain (CONFIRMED)", ("network_id",)),
    "zg_da_batch_signatures": ("histogram", "DA node signatures aggregated per certified "
                               "batch", ("network_id",)),
    "zg_da_node_slices_stored": ("counter", "Slices a DA node verified, persisted and "
                                 "signed for", ("node",)),
    "zg_da_node_blobs": ("gauge", "Blobs whose slices a DA node holds", ("node",)),
}
COMPUTE_METRICS = {
    "zg_compute_requests": ("counter", "Inference requests a provider served",
                            ("provider", "model")),
    "zg_compute_tokens": ("counter", "Tokens a provider billed, by kind (prompt, completion)",
                          ("provider", "kind")),
    "zg_compute_fees": ("counter", "Fees of the requests a provider served (ZG)",
                        ("provider",)),
    "zg_compute_unsettled_fees": ("gauge", "Fees served and not yet settled on chain (ZG)",
                                  ("provider",)),
    "zg_compute_settlement_txs": ("counter", "Settlement txs a provider sent",
                                  ("provider",)),
}
# Every gateway (the DA gRPC Disperser today; the JSON-RPC and OpenAI HTTP ones as they
# come) records its calls here, told apart by `gateway`; `code` is the gRPC status name.
GATEWAY_METRICS = {
    "zg_gateway_requests": ("counter", "Requests a gateway answered", ("gateway", "method")),
    "zg_gateway_errors": ("counter", "Requests a gateway answered with an error",
                          ("gateway", "method", "code")),
    "zg_gateway_request_seconds": ("histogram", "Request received -> answered",
                                   ("gateway", "method")),
}
# Every KV node replays its network's flow (storage/kv/): entries in tx_seq order, each KV tx
# of its followed streams recorded with 0G's result (Commit, VersionConfliction, ...).
KV_METRICS = {
    "zg_kv_flow_entries_replayed": ("counter", "Flow entries a KV node replayed (KV txs of "
                                    "its streams and every other entry)",
                                    ("node", "network_id")),
    "zg_kv_stream_txs": ("counter", "KV txs of the followed streams replayed, by recorded "
                         "result (Commit, VersionConfliction, ...)",
                         ("node", "network_id", "result")),
    "zg_kv_next_tx_seq": ("gauge", "The tx_seq a KV node replays next",
                          ("node", "network_id")),
    "zg_kv_replay_lag_entries": ("gauge", "Flow entries the log has that a KV node has not "
                                 "replayed yet", ("node", "network_id")),
}
# Every validator records its network's EVM at each commit (one series per validator: read
# them with `max by (network_id)`); `type` is the EIP-2718 tx type, `status` the receipt's.
EVM_METRICS = {
    "zg_evm_txs": ("counter", "EVM txs executed in committed blocks, by tx type and receipt "
                   "status", ("network_id", "type", "status")),
    "zg_evm_gas_used": ("counter", "Gas the EVM txs of committed blocks used",
                        ("network_id",)),
    "zg_evm_block_gas_used": ("gauge", "Gas used by the latest committed block",
                              ("network_id",)),
    "zg_evm_block_gas_limit": ("gauge", "Gas limit of a block", ("network_id",)),
    "zg_evm_base_fee_wei": ("gauge", "Base fee of the latest committed block (wei per gas, "
                            "EIP-1559)", ("network_id",)),
}
PILLAR_METRICS = {"chain": CHAIN_METRICS, "staking": STAKING_METRICS,
                  "storage": STORAGE_METRICS, "da": DA_METRICS, "compute": COMPUTE_METRICS,
                  "kv": KV_METRICS, "evm": EVM_METRICS, "gateway": GATEWAY_METRICS}
ALL_METRICS = {name: spec for table in PILLAR_METRICS.values() for name, spec in table.items()}

LATENCY_BOUNDARIES_S = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30]
SIGNATURE_BOUNDARIES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128]  # signatures
BOUNDARIES = {"zg_da_batch_signatures": SIGNATURE_BOUNDARIES}  # others: LATENCY_BOUNDARIES_S


def make(name: str, spec: tuple) -> metrics.Metric:
    kind, description, tags = spec
    if kind == "gauge":
        return metrics.Gauge(name, description, tag_keys=tags)
    if kind == "counter":
        return metrics.Counter(name, description, tag_keys=tags)
    return metrics.Histogram(name, description,
                             boundaries=BOUNDARIES.get(name, LATENCY_BOUNDARIES_S),
                             tag_keys=tags)


class Metrics:
    """The metrics of one table as one actor (or SDK client) records them: `fixed` tags
    (e.g. its miner index) are set on every value, the others are given per call."""

    def __init__(self, table: dict[str, tuple], **fixed: object) -> None:
        self.m = {name: make(name, spec) for name, spec in table.items()}
        self.fixed = {key: str(value) for key, value in fixed.items()}

    def _tags(self, tags: dict[str, object]) -> dict[str, str]:
        return {**self.fixed, **{key: str(value) for key, value in tags.items()}}

    def inc(self, name: str, value: float = 1, **tags: object) -> None:
        if value:
            self.m[name].inc(value, self._tags(tags))

    def set(self, name: str, value: float, **tags: object) -> None:
        self.m[name].set(value, self._tags(tags))

    def observe(self, name: str, value: float, **tags: object) -> None:
        self.m[name].observe(value, self._tags(tags))


class ChainMetrics:
    """One validator's view of its network's metrics (chain and EVM)."""

    def __init__(self, network_id: int) -> None:
        self.tags = {"network_id": str(network_id)}
        self.m = {name: make(name, spec) for name, spec in CHAIN_METRICS.items()}
        self.evm = Metrics(EVM_METRICS, network_id=network_id)
        self._in_set: set[str] = set()

    def committed(self, height: int, txs: int, latencies: list[float]) -> None:
        self.m["zg_chain_block_height"].set(height, self.tags)
        if txs:
            self.m["zg_chain_committed_txs"].inc(txs, self.tags)
        hist = self.m["zg_chain_commit_latency_seconds"]
        for latency in latencies[:200]:  # a sample per block keeps the cost flat
            hist.observe(latency, self.tags)

    def evm_committed(self, txs: list[tuple[str, str]], gas_used: int, gas_limit: int,
                      base_fee_wei: int) -> None:
        """A committed block's EVM: (type, status) of each EVM tx, its gas and base fee."""
        for (tx_type, status), count in Counter(txs).items():
            self.evm.inc("zg_evm_txs", count, type=tx_type, status=status)
        self.evm.inc("zg_evm_gas_used", gas_used)
        self.evm.set("zg_evm_block_gas_used", gas_used)
        self.evm.set("zg_evm_block_gas_limit", gas_limit)
        self.evm.set("zg_evm_base_fee_wei", base_fee_wei)

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
