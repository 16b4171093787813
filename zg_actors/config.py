"""The deployment's YAML file, loaded into frozen dataclasses.

Every value has a default (the dataclass field), so an empty file is a valid
devnet.  Unknown keys and bad values fail with a ConfigError naming the key
path, e.g. `networks.block_interval_s: must be > 0, got -1`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zg_actors.errors import InvalidInput

ZG = 10**18  # base units per ZG (ERC-20 decimals = 18)
DEFAULT_CONFIG = "devnet.yaml"


class ConfigError(InvalidInput):
    code = "CONFIG"


def _check(path: str, ok: bool, message: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{path}: {message}, got {value!r}", key=path, value=value)


@dataclass(frozen=True)
class RayConfig:
    namespace: str = "zg"
    num_cpus: int = 2  # embedded Ray only; a cluster reports its own
    object_store_mb: int = 256  # embedded Ray only: small machines need a modest store
    include_dashboard: bool = False
    # Embedded Ray only (a cluster sets it at `ray start --system-config`): task arguments
    # and results up to this size travel inside Ray's task messages instead of through the
    # shared-memory object store, whose every object costs synchronous round trips to the
    # raylet. Ray's default is 100 KiB; at 2 MiB the raylet's CPU under a 128 KiB DA stream
    # fell from about 4 to about 1 ms per blob on 2 cores (README, "Configuration").
    inline_object_max_bytes: int = 2 * 1024 * 1024

    def validate(self, path: str) -> None:
        _check(f"{path}.num_cpus", self.num_cpus >= 1, "must be >= 1", self.num_cpus)
        _check(f"{path}.inline_object_max_bytes",
               0 <= self.inline_object_max_bytes <= 64 * 1024 * 1024,
               "must be between 0 and 64 MiB", self.inline_object_max_bytes)
        _check(f"{path}.object_store_mb", self.object_store_mb >= 78,
               "must be >= 78 (Ray's minimum)", self.object_store_mb)
        _check(f"{path}.namespace", bool(self.namespace), "must not be empty", self.namespace)


@dataclass(frozen=True)
class CryptoConfig:
    bls_backend: str = "fastest"  # py_ecc | milagro | blspy | fastest (the fastest installed)

    def validate(self, path: str) -> None:
        _check(f"{path}.bls_backend",
               self.bls_backend in ("py_ecc", "milagro", "blspy", "fastest"),
               "must be py_ecc, milagro, blspy or fastest", self.bls_backend)


@dataclass(frozen=True)
class StakingConfig:
    genesis_accounts: int = 16  # funded C0 accounts derived from devnet.key_seed
    genesis_balance_zg: int = 1_000_000
    validators: int = 8  # genesis validators: registered, staked, with BLS keys
    validator_stake_zg: int = 100_000
    min_stake_zg: int = 1_000
    unbonding_ticks: int = 50  # C0 ticks a withdrawal waits
    slash_fraction_bps: int = 200  # 2%, as 0G mainnet
    tick_interval_s: float = 1.0  # C0's block time: one tick per interval
    num_cpus: float = 0.1

    def validate(self, path: str) -> None:
        _check(f"{path}.validators", 1 <= self.validators <= 256, "must be 1..256",
               self.validators)
        _check(f"{path}.genesis_accounts", self.genesis_accounts >= 1, "must be >= 1",
               self.genesis_accounts)
        _check(f"{path}.validator_stake_zg", self.validator_stake_zg >= self.min_stake_zg,
               "must be >= min_stake_zg", self.validator_stake_zg)
        _check(f"{path}.slash_fraction_bps", 0 <= self.slash_fraction_bps <= 10_000,
               "must be 0..10000 basis points", self.slash_fraction_bps)
        _check(f"{path}.unbonding_ticks", self.unbonding_ticks >= 0, "must be >= 0",
               self.unbonding_ticks)
        _check(f"{path}.tick_interval_s", self.tick_interval_s > 0, "must be > 0",
               self.tick_interval_s)


@dataclass(frozen=True)
class TimeoutsConfig:
    """Tendermint timeouts in seconds; round r waits base + r * delta."""

    propose_s: float = 1.0
    propose_delta_s: float = 0.5
    prevote_s: float = 0.5
    prevote_delta_s: float = 0.5
    precommit_s: float = 0.5
    precommit_delta_s: float = 0.5

    def validate(self, path: str) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check(f"{path}.{f.name}", value > 0, "must be > 0", value)


@dataclass(frozen=True)
class TxPoolConfig:
    """Each validator's mempool limits, as Geth's txpool (chain/txpool.py, README "Faults
    and limits"). Pending txs run on from their sender's committed nonce without a gap
    (the next block may take them); queued txs have future nonces."""

    account_slots: int = 1_024  # pending txs per sender
    account_queue: int = 64  # queued txs per sender (Geth: 64)
    global_slots: int = 100_000  # txs in the pool in all, pending and queued; full: evict
    global_queue: int = 4_096  # queued txs in the pool in all
    max_nonce_gap: int = 64  # nonces a queued tx may run past its sender's next pending one
    lifetime_s: float = 10_800.0  # a queued tx is dropped this long after arrival (Geth: 3 h)
    price_bump_percent: int = 10  # fee raise a same-nonce replacement needs (Geth: 10%)

    def validate(self, path: str) -> None:
        for name in ("account_slots", "account_queue", "global_slots", "global_queue"):
            value = getattr(self, name)
            _check(f"{path}.{name}", value >= 1, "must be >= 1", value)
        _check(f"{path}.global_queue", self.global_queue <= self.global_slots,
               "must be <= global_slots", self.global_queue)
        _check(f"{path}.max_nonce_gap", self.max_nonce_gap >= 1, "must be >= 1",
               self.max_nonce_gap)
        _check(f"{path}.lifetime_s", self.lifetime_s > 0, "must be > 0 seconds",
               self.lifetime_s)
        _check(f"{path}.price_bump_percent", self.price_bump_percent >= 0, "must be >= 0",
               self.price_bump_percent)


@dataclass(frozen=True)
class EvmConfig:
    """The `evm` module every network runs (docs/spec/evm.md): its chain id and gas market."""

    # A network's EVM chain id is chain_id_base + its network id: distinct per network and
    # clear of the public ids of Ethereum and 0G (16600-16661).
    chain_id_base: int = 4_169_000
    block_gas_limit: int = 30_000_000  # gas per block (Geth's default)
    initial_base_fee: int = 1_000_000_000  # wei per gas at genesis (1 gwei)
    min_base_fee: int = 10_000_000  # wei per gas: EIP-1559's decay stops here (Cosmos EVMs' floor)
    # The Ethereum JSON-RPC: one Serve app per network, network i at route rpc_route/i on
    # Serve's one HTTP proxy (the first Serve app of a cluster fixes its host and port).
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545  # Geth's, anvil's and Hardhat's default
    rpc_route: str = "/evm"
    rpc_num_cpus: float = 0.05  # a replica forwards each read and tx to the validators
    priority_fee: int = 1_000_000_000  # wei per gas the RPC suggests as tip (1 gwei)
    max_log_blocks: int = 10_000  # blocks one eth_getLogs may scan

    def validate(self, path: str) -> None:
        _check(f"{path}.rpc_num_cpus", self.rpc_num_cpus > 0, "must be > 0",
               self.rpc_num_cpus)
        _check(f"{path}.rpc_port", 0 < self.rpc_port <= 65_535, "must be 1..65535",
               self.rpc_port)
        _check(f"{path}.rpc_route", self.rpc_route.startswith("/"), "must start with /",
               self.rpc_route)
        _check(f"{path}.max_log_blocks", self.max_log_blocks >= 1, "must be >= 1",
               self.max_log_blocks)
        _check(f"{path}.chain_id_base", self.chain_id_base >= 1_000_000,
               "must be >= 1000000 (clear of public chain ids)", self.chain_id_base)
        _check(f"{path}.block_gas_limit", self.block_gas_limit >= 21_000,
               "must be >= 21000 (one transfer)", self.block_gas_limit)
        _check(f"{path}.min_base_fee", self.min_base_fee >= 1, "must be >= 1 wei",
               self.min_base_fee)
        _check(f"{path}.initial_base_fee", self.initial_base_fee >= self.min_base_fee,
               "must be >= min_base_fee", self.initial_base_fee)

    def chain_id(self, network_id: int) -> int:
        return self.chain_id_base + network_id


@dataclass(frozen=True)
class NetworksConfig:
    initial: int = 1  # networks launched by `zg up` / `zg demo`
    validators_per_network: int = 4
    block_interval_s: float = 0.5  # block time: heights with txs start at least this far apart
    # With no txs, the next height waits for one up to this long after the last commit
    # (CometBFT's create_empty_blocks_interval); <= block_interval_s: no waiting.
    empty_block_interval_s: float = 1.0
    max_block_txs: int = 2_000
    max_block_bytes: int = 1_048_576
    max_tx_bytes: int = 65_536
    epoch_blocks: int = 20  # validator-set refresh from the staking actor
    block_reward: int = 10 * ZG  # local reward token per block, to the proposer
    min_tx_fee: int = 0
    reward_burn_threshold: int = 50 * ZG  # a validator burns its rewards for the bridge above this
    load_accounts: int = 64  # funded local accounts for workloads, from devnet.key_seed
    load_account_balance: int = 1_000_000 * ZG
    validator_num_cpus: float = 0.1
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    txpool: TxPoolConfig = field(default_factory=TxPoolConfig)
    evm: EvmConfig = field(default_factory=EvmConfig)

    def validate(self, path: str) -> None:
        _check(f"{path}.initial", self.initial >= 0, "must be >= 0", self.initial)
        _check(f"{path}.validators_per_network", 1 <= self.validators_per_network <= 256,
               "must be 1..256", self.validators_per_network)
        _check(f"{path}.block_interval_s", self.block_interval_s >= 0, "must be >= 0",
               self.block_interval_s)
        _check(f"{path}.empty_block_interval_s", self.empty_block_interval_s >= 0,
               "must be >= 0", self.empty_block_interval_s)
        _check(f"{path}.max_block_txs", self.max_block_txs >= 1, "must be >= 1",
               self.max_block_txs)
        _check(f"{path}.max_block_bytes", self.max_block_bytes >= self.max_tx_bytes,
               "must be >= max_tx_bytes", self.max_block_bytes)
        _check(f"{path}.max_tx_bytes", self.max_tx_bytes >= 256, "must be >= 256",
               self.max_tx_bytes)
        _check(f"{path}.epoch_blocks", self.epoch_blocks >= 1, "must be >= 1",
               self.epoch_blocks)
        _check(f"{path}.txpool.global_slots", self.txpool.global_slots >= self.max_block_txs,
               "must be >= max_block_txs", self.txpool.global_slots)
        _check(f"{path}.load_accounts", self.load_accounts >= 1, "must be >= 1",
               self.load_accounts)
        self.timeouts.validate(f"{path}.timeouts")
        self.txpool.validate(f"{path}.txpool")
        self.evm.validate(f"{path}.evm")


@dataclass(frozen=True)
class RelayerConfig:
    interval_s: float = 2.0  # how often burns are collected and proven on C0
    num_cpus: float = 0.05

    def validate(self, path: str) -> None:
        _check(f"{path}.interval_s", self.interval_s > 0, "must be > 0", self.interval_s)


@dataclass(frozen=True)
class CodecConfig:
    backend: str = "fastest"  # reference | numpy | isal | cupy | fastest; ZG_EC_BACKEND overrides
    cpu_encoders: int = 1  # encoder actors on a cluster without GPUs (else one per GPU)
    max_in_flight: int = 8  # encode/decode calls an encoder pool runs at once; more callers wait
    encoder_num_cpus: float = 0.5  # Ray CPUs each encoder actor reserves

    def validate(self, path: str) -> None:
        _check(f"{path}.backend", self.backend in ("reference", "numpy", "isal", "cupy",
                                                   "fastest"),
               "must be reference, numpy, isal, cupy or fastest", self.backend)
        _check(f"{path}.cpu_encoders", self.cpu_encoders >= 1, "must be >= 1",
               self.cpu_encoders)
        _check(f"{path}.max_in_flight", self.max_in_flight >= 1, "must be >= 1",
               self.max_in_flight)
        _check(f"{path}.encoder_num_cpus", self.encoder_num_cpus > 0, "must be > 0",
               self.encoder_num_cpus)


@dataclass(frozen=True)
class ComputeConfig:
    """0G Compute Network: the `serving` module on network 0 and its providers."""

    providers: int = 2  # funded provider accounts (and ComputeProvider actors the demo starts)
    users: int = 4  # funded compute user accounts on network 0, from devnet.key_seed
    genesis_balance: int = 10_000 * ZG  # network-0 tokens each compute account starts with
    provider_stake: int = 100 * ZG  # locked on first registration, returned on removal
    min_ledger_balance: int = 1 * ZG  # a main account is created with at least this
    refund_lock_s: float = 86_400.0  # 0G default; at most 7 days (0G's 1 h floor is relaxed)
    input_price: int = 10**12  # base units per prompt token
    output_price: int = 2 * 10**12  # base units per completion token
    max_tokens: int = 16  # completion tokens per request, reserved at admission
    settle_batch_max: int = 50  # settlements (one user's requests each) per tx; 0G uses 50
    settle_threshold: int = 10**15  # unsettled fees (base units) that trigger a settlement
    settle_interval_s: float = 300.0  # 0G broker: check every 300 s
    account_cache_s: float = 2.0  # how long a provider trusts a sub-account it read
    model_threads: int = 1  # CPU threads each provider's model uses
    provider_num_cpus: float = 0.25

    def validate(self, path: str) -> None:
        _check(f"{path}.providers", self.providers >= 1, "must be >= 1", self.providers)
        _check(f"{path}.users", self.users >= 1, "must be >= 1", self.users)
        _check(f"{path}.refund_lock_s", 0 < self.refund_lock_s <= 7 * 86_400,
               "must be in (0, 604800] seconds", self.refund_lock_s)
        _check(f"{path}.max_tokens", 1 <= self.max_tokens <= 512, "must be 1..512",
               self.max_tokens)
        _check(f"{path}.settle_batch_max", 1 <= self.settle_batch_max <= 50, "must be 1..50",
               self.settle_batch_max)
        _check(f"{path}.settle_interval_s", self.settle_interval_s > 0, "must be > 0",
               self.settle_interval_s)
        _check(f"{path}.account_cache_s", self.account_cache_s >= 0, "must be >= 0",
               self.account_cache_s)
        _check(f"{path}.model_threads", self.model_threads >= 1, "must be >= 1",
               self.model_threads)
        _check(f"{path}.provider_num_cpus", self.provider_num_cpus > 0, "must be > 0",
               self.provider_num_cpus)


@dataclass(frozen=True)
class StorageConfig:
    """0G Storage log layer (docs/spec/storage.md); devnet sizes are scaled down where noted."""

    miners: int = 4  # StorageMiner actors
    data_shards: int = 2  # k: each segment is erasure-coded into k + m shards on distinct miners
    parity_shards: int = 1  # m: a segment survives the loss of any m of its miners
    # > 0: instead of erasure coding, every segment is copied whole to this many distinct
    # miners (any one copy serves it); data_shards and parity_shards are then unused.
    replication_factor: int = 0
    price_per_sector: int = 10**9  # base units per 256-byte sector (the global minimum unit price)
    service_fee_bps: int = 500  # share of every storage fee that goes to the treasury
    pricing_segment_sectors: int = 8_192  # 0G: 2^25 sectors (8 GiB); devnet: 2 MiB
    max_entry_bytes: int = 64 * 1024 * 1024  # 0G: 4 GiB per flow entry; bigger files split
    blocks_per_epoch: int = 10  # mining context refresh, in blocks of the network
    client_balance: int = 1_000_000 * ZG  # network tokens the devnet storage client starts with
    miner_num_cpus: float = 0.1
    # PoRA mining and incentives (docs/spec/storage.md); devnet values make answers cheap to find.
    max_mining_range_sectors: int = 2**20  # 0G: 2^35 sectors (8 TiB); devnet: 256 MiB
    pora_difficulty: int = 256  # initial target = 2^256 / this: expected seals checked per hit
    wanted_answers_per_epoch: int = 5  # 0G mainnet: 5
    answer_window_blocks: int = 10  # answers to an epoch's context are late after this
    # Subtasks: a miner's answers are early before context height + keccak(context, miner
    # id) mod this many blocks, so that miners do not all submit at once (0 = no spread).
    subtask_spread_blocks: int = 3
    reward_schedule: str = "linear"  # linear (0G ChunkLinearReward) | decay (ChunkDecayReward)
    reward_lifetime_blocks: int = 10_000  # linear release period; 0G: the storage period
    decay_bps_per_year: int = 400  # the seed's 4% a year
    blocks_per_year: int = 100_000  # devnet year for the decay schedule (mainnet: ~63M blocks)
    base_reward: int = 10**15  # paid per valid answer from the donated base pool while it lasts
    royalty_bps: int = 1_000  # share of a synced miner's answer reward to the first holder
    # Redundancy upkeep. An upload waits this long for every shard to be held and the
    # entry FINALIZED, re-sending to miners that Ray restarted; then it fails naming the
    # segments and miners still missing.
    upload_deadline_s: float = 120.0
    repair_interval_s: float = 2.0  # the repairer asks every miner what it keeps this often
    # A shard missing this long is rebuilt from k others: longer than a crashed miner
    # takes to restart, or an upload to deliver a segment's last shard.
    repair_grace_s: float = 10.0

    @property
    def shards(self) -> int:
        """Holders of each segment: the replication factor, or k + m."""
        return self.replication_factor or self.data_shards + self.parity_shards

    def validate(self, path: str) -> None:
        _check(f"{path}.data_shards", self.data_shards >= 1, "must be >= 1", self.data_shards)
        _check(f"{path}.parity_shards", self.parity_shards >= 0, "must be >= 0",
               self.parity_shards)
        _check(f"{path}.replication_factor", self.replication_factor >= 0,
               "must be >= 0 (0: erasure coding)", self.replication_factor)
        _check(f"{path}.miners", self.miners >= self.shards,
               "must be >= data_shards + parity_shards, or the replication factor (shards "
               "go to distinct miners)", self.miners)
        _check(f"{path}.price_per_sector", self.price_per_sector >= 0, "must be >= 0",
               self.price_per_sector)
        _check(f"{path}.service_fee_bps", 0 <= self.service_fee_bps <= 10_000,
               "must be 0..10000 basis points", self.service_fee_bps)
        _check(f"{path}.pricing_segment_sectors", self.pricing_segment_sectors >= 1024
               and self.pricing_segment_sectors & (self.pricing_segment_sectors - 1) == 0,
               "must be a power of two >= 1024 (one segment)", self.pricing_segment_sectors)
        _check(f"{path}.max_entry_bytes", self.max_entry_bytes >= 256 * 1024,
               "must be >= 262144 (one segment)", self.max_entry_bytes)
        _check(f"{path}.blocks_per_epoch", self.blocks_per_epoch >= 1, "must be >= 1",
               self.blocks_per_epoch)
        _check(f"{path}.miner_num_cpus", self.miner_num_cpus > 0, "must be > 0",
               self.miner_num_cpus)
        _check(f"{path}.pora_difficulty", self.pora_difficulty >= 1, "must be >= 1",
               self.pora_difficulty)
        _check(f"{path}.max_mining_range_sectors", self.max_mining_range_sectors >= 1024,
               "must be >= 1024 (one load)", self.max_mining_range_sectors)
        for name in ("upload_deadline_s", "repair_interval_s"):
            _check(f"{path}.{name}", getattr(self, name) > 0, "must be > 0 seconds",
                   getattr(self, name))
        _check(f"{path}.repair_grace_s", self.repair_grace_s >= 0, "must be >= 0 seconds",
               self.repair_grace_s)
        _check(f"{path}.reward_schedule", self.reward_schedule in ("linear", "decay"),
               "must be linear or decay", self.reward_schedule)
        for name in ("wanted_answers_per_epoch", "answer_window_blocks",
                     "reward_lifetime_blocks", "blocks_per_year"):
            _check(f"{path}.{name}", getattr(self, name) >= 1, "must be >= 1",
                   getattr(self, name))
        _check(f"{path}.subtask_spread_blocks",
               0 <= self.subtask_spread_blocks < self.answer_window_blocks,
               "must be 0..answer_window_blocks-1", self.subtask_spread_blocks)
        _check(f"{path}.decay_bps_per_year", 0 <= self.decay_bps_per_year <= 10_000,
               "must be 0..10000 basis points", self.decay_bps_per_year)
        _check(f"{path}.royalty_bps", 0 <= self.royalty_bps <= 10_000,
               "must be 0..10000 basis points", self.royalty_bps)


@dataclass(frozen=True)
class DAConfig:
    """0G DA (docs/spec/da.md): blob code, signers, quorums, batching, dispersers, gateway."""

    k: int = 32  # data slices per blob
    n: int = 96  # slices per blob = slots per quorum (0G: 1024 of 3072, the same 1/3 rate)
    max_blob_bytes: int = 32_505_852  # 0G's maximum blob
    nodes: int = 4  # DA signers (DANode actors), registered at C0 with stake
    node_stake_zg: int = 100_000
    tokens_per_vote_zg: int = 4_000  # votes = stake / this, capped at max_votes
    max_votes: int = 32  # per signer: keeps one signer below 1/3 of a quorum's slots
    max_quorums: int = 10  # 0G: at most 10 quorums per epoch
    # A disperser seals a batch this long after its first blob. Each batch costs a
    # certificate tx, so a block and BLS work on every validator: 1 s keeps that at about
    # a block per second under load (0G's batcher pulls every 10 s, up to 500 MiB).
    batch_interval_s: float = 1.0
    batch_max_blobs: int = 64  # ... or when it holds this many blobs
    batch_max_bytes: int = 64 * 1024 * 1024  # ... or this many blob bytes
    # Batches per (network, epoch, quorum) out for signatures at once; meanwhile the next
    # one is not sealed by the interval and keeps filling (group commit: under load,
    # batches grow with the signing time instead of queueing up behind it).
    batches_signing: int = 2
    # DA nodes that have not signed a batch by this deadline are left out when the others
    # hold the signing threshold; otherwise the batch keeps waiting for those still up (a
    # probe answers) until signature_wait_max_s, then is INSUFFICIENT_SIGNATURES.
    signature_deadline_s: float = 10.0
    signature_wait_max_s: float = 60.0
    confirm_timeout_s: float = 60.0  # a certified batch not on chain by then is FAILED
    finality_depth: int = 1  # blocks after the certificate's block until FINALIZED
    dispersers: int = 1
    # BLS backend of DA work (batch signatures, their aggregation and certificate checks,
    # also in the `da` module): py_ecc | milagro | blspy | fastest. Consensus votes use
    # crypto.bls_backend; `zg bench da` varies only this one.
    bls_backend: str = "fastest"
    # Epochs rotate on a timer (a new seed, current stakes, new tickets and quorums) every
    # this many seconds; 0 = only on request (`zg da epoch`). Disperser 0 drives it.
    epoch_interval_s: float = 0.0
    disperser_deposit: int = 1_000 * ZG  # local token each disperser deposits per network
    slash_fraction_bps: int = 5_000  # of the deposit, paid to a bad-encoding prover
    blob_fee: int = 10**15  # per certified blob into the sampling pool (local token)
    sampling_base_reward: int = 10**16  # minted per valid sampling answer
    retention_s: float = 3_600.0  # DA nodes prune slices older than this
    max_pending_blobs: int = 256  # a disperser refuses more (RESOURCE_EXHAUSTED)
    node_num_cpus: float = 0.05
    disperser_num_cpus: float = 0.1
    gateway_port: int = 50061  # gRPC Disperser service; 0 picks a free port
    gateway_num_cpus: float = 0.05

    def validate(self, path: str) -> None:
        _check(f"{path}.n", 2 <= self.n <= 256, "must be 2..256", self.n)
        _check(f"{path}.k", 1 <= self.k < self.n, "must be 1..n-1", self.k)
        _check(f"{path}.max_blob_bytes", self.max_blob_bytes >= 1, "must be >= 1",
               self.max_blob_bytes)
        _check(f"{path}.nodes", self.nodes >= 1, "must be >= 1", self.nodes)
        _check(f"{path}.tokens_per_vote_zg", self.tokens_per_vote_zg >= 1, "must be >= 1",
               self.tokens_per_vote_zg)
        _check(f"{path}.max_votes", self.max_votes >= 1, "must be >= 1", self.max_votes)
        _check(f"{path}.max_quorums", self.max_quorums >= 1, "must be >= 1", self.max_quorums)
        _check(f"{path}.batch_interval_s", self.batch_interval_s > 0, "must be > 0",
               self.batch_interval_s)
        _check(f"{path}.batch_max_blobs", self.batch_max_blobs >= 1, "must be >= 1",
               self.batch_max_blobs)
        _check(f"{path}.batches_signing", self.batches_signing >= 1, "must be >= 1",
               self.batches_signing)
        _check(f"{path}.signature_deadline_s", self.signature_deadline_s > 0, "must be > 0",
               self.signature_deadline_s)
        _check(f"{path}.signature_wait_max_s",
               self.signature_wait_max_s >= self.signature_deadline_s,
               "must be >= signature_deadline_s", self.signature_wait_max_s)
        _check(f"{path}.finality_depth", self.finality_depth >= 0, "must be >= 0",
               self.finality_depth)
        _check(f"{path}.dispersers", self.dispersers >= 1, "must be >= 1", self.dispersers)
        _check(f"{path}.bls_backend",
               self.bls_backend in ("py_ecc", "milagro", "blspy", "fastest"),
               "must be py_ecc, milagro, blspy or fastest", self.bls_backend)
        _check(f"{path}.epoch_interval_s", self.epoch_interval_s >= 0, "must be >= 0 (0: off)",
               self.epoch_interval_s)
        _check(f"{path}.slash_fraction_bps", 0 <= self.slash_fraction_bps <= 10_000,
               "must be 0..10000 basis points", self.slash_fraction_bps)
        _check(f"{path}.gateway_port", 0 <= self.gateway_port <= 65_535, "must be 0..65535",
               self.gateway_port)


@dataclass(frozen=True)
class KVConfig:
    """0G Storage's KV layer (docs/spec/kv.md): KV nodes and their kv_* JSON-RPC."""

    nodes: int = 2  # KVNode actors; each replays every followed stream on its own
    # The streams every KV node follows, comma-separated: `0x` + 64 hex digits is a stream
    # id, any other text a name (id = keccak-256 of its UTF-8 bytes). A node whose list
    # changes replays the flow from the start.
    streams: str = "default"
    network: int = -1  # the network whose flow the nodes follow; -1: the first active one
    node_num_cpus: float = 0.05  # a node mostly waits: for blocks, downloads, LMDB
    # kv_* JSON-RPC through Ray Serve: the first Serve app of a cluster fixes Serve's HTTP
    # host and port; the KV app is the route `rpc_route` on it.
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 6789  # 0G's KV node serves its RPC on 6789
    rpc_route: str = "/kv"
    rpc_num_cpus: float = 0.05  # the Serve replica forwards each call to a KV node

    def validate(self, path: str) -> None:
        _check(f"{path}.nodes", self.nodes >= 1, "must be >= 1", self.nodes)
        _check(f"{path}.node_num_cpus", self.node_num_cpus > 0, "must be > 0",
               self.node_num_cpus)
        _check(f"{path}.rpc_num_cpus", self.rpc_num_cpus > 0, "must be > 0",
               self.rpc_num_cpus)
        _check(f"{path}.rpc_port", 0 < self.rpc_port <= 65_535, "must be 1..65535",
               self.rpc_port)
        _check(f"{path}.rpc_route", self.rpc_route.startswith("/"), "must start with /",
               self.rpc_route)
        _check(f"{path}.streams", all(part.strip() for part in self.streams.split(",")),
               "must be comma-separated stream names or 0x ids, none empty", self.streams)


@dataclass(frozen=True)
class DevnetConfig:
    # Devnet keys are derived from this seed so every actor can rebuild them; a
    # production deployment would load keys from files instead.
    key_seed: str = "zg-devnet"

    def validate(self, path: str) -> None:
        _check(f"{path}.key_seed", bool(self.key_seed), "must not be empty", self.key_seed)


@dataclass(frozen=True)
class Config:
    data_dir: str = "./zg-data"
    # True: each actor keeps its stores under <data_dir>/<node name>/ (the node's zg-node
    # label, else its Ray node id), so that a data_dir shared by several nodes acts as
    # their local disks: an actor moved to another node starts there on an empty store.
    data_dir_per_node: bool = False
    lmdb_map_mb: int = 1024  # per node; LMDB maps it sparsely
    ray: RayConfig = field(default_factory=RayConfig)
    crypto: CryptoConfig = field(default_factory=CryptoConfig)
    devnet: DevnetConfig = field(default_factory=DevnetConfig)
    staking: StakingConfig = field(default_factory=StakingConfig)
    networks: NetworksConfig = field(default_factory=NetworksConfig)
    relayer: RelayerConfig = field(default_factory=RelayerConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    da: DAConfig = field(default_factory=DAConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    kv: KVConfig = field(default_factory=KVConfig)

    def validate(self, path: str = "") -> None:
        _check("data_dir", bool(self.data_dir), "must not be empty", self.data_dir)
        _check("lmdb_map_mb", self.lmdb_map_mb >= 16, "must be >= 16", self.lmdb_map_mb)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate(f.name)
        _check("staking.validators", self.staking.validators >=
               self.networks.validators_per_network,
               "must be >= networks.validators_per_network", self.staking.validators)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        """Copy with dotted-path overrides, e.g. replace(**{"networks.max_block_txs": 10})."""
        data = self.to_dict()
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            if leaf not in node:
                raise ConfigError(f"{dotted}: unknown key", key=dotted)
            node[leaf] = value
        return config_from_dict(data)


def _convert(tp: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        _check(path or "<root>", isinstance(value, dict), "must be a mapping", value)
        return _build(tp, value, path)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: no type fits {value!r}", key=path, value=value)
    if tp is bool:
        _check(path, isinstance(value, bool), "must be true or false", value)
        return value
    if tp is int:
        _check(path, isinstance(value, int) and not isinstance(value, bool),
               "must be an integer", value)
        return value
    if tp is float:
        _check(path, isinstance(value, (int, float)) and not isinstance(value, bool)
               and not math.isnan(value), "must be a number", value)
        return float(value)
    if tp is str:
        _check(path, isinstance(value, str), "must be a string", value)
        return value
    if tp is type(None):
        _check(path, value is None, "must be null", value)
        return None
    raise ConfigError(f"{path}: unsupported type {tp}", key=path)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            full = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{full}: unknown key (known: {', '.join(sorted(known))})",
                              key=full)
    kwargs = {key: _convert(hints[key], value, f"{prefix}.{key}" if prefix else key)
              for key, value in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any] | None) -> Config:
    config = _convert(Config, data or {}, "")
    config.validate()
    return config


def default_config_text() -> str:
    return resources.files("zg_actors.defaults").joinpath(DEFAULT_CONFIG).read_text()


def load_config(path: str | Path | None = None) -> Config:
    """The config at `path`, or the embedded devnet default."""
    if path is None:
        text, source = default_config_text(), f"<embedded {DEFAULT_CONFIG}>"
    else:
        try:
            text, source = Path(path).read_text(), str(path)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}",
                              key="--config", value=str(path)) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text: byte "
                              f"0x{exc.object[exc.start]:02x} at offset {exc.start}",
                              key="--config", value=str(path), offset=exc.start) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", key=source) from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping", key=source)
    return config_from_dict(data)
