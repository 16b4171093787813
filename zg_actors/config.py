"""The deployment's YAML file, loaded into frozen dataclasses.

Every value has a default (the dataclass field), so an empty file is a valid
devnet.  Unknown keys and bad values fail with a ConfigError naming the key
path, e.g. `networks.block_interval_s: must be > 0, got -1`.
"""

from __future__ import annotations

import dataclasses
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

    def validate(self, path: str) -> None:
        _check(f"{path}.num_cpus", self.num_cpus >= 1, "must be >= 1", self.num_cpus)
        _check(f"{path}.object_store_mb", self.object_store_mb >= 78,
               "must be >= 78 (Ray's minimum)", self.object_store_mb)
        _check(f"{path}.namespace", bool(self.namespace), "must not be empty", self.namespace)


@dataclass(frozen=True)
class CryptoConfig:
    bls_backend: str = "fastest"  # py_ecc | milagro | fastest

    def validate(self, path: str) -> None:
        _check(f"{path}.bls_backend", self.bls_backend in ("py_ecc", "milagro", "fastest"),
               "must be py_ecc, milagro or fastest", self.bls_backend)


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
class NetworksConfig:
    initial: int = 1  # networks launched by `zg up` / `zg demo`
    validators_per_network: int = 4
    block_interval_s: float = 0.5  # wait after a commit before the next height
    max_block_txs: int = 2_000
    max_block_bytes: int = 1_048_576
    max_tx_bytes: int = 65_536
    mempool_max_txs: int = 100_000
    epoch_blocks: int = 20  # validator-set refresh from the staking actor
    block_reward: int = 10 * ZG  # local reward token per block, to the proposer
    min_tx_fee: int = 0
    reward_burn_threshold: int = 50 * ZG  # a validator burns its rewards for the bridge above this
    load_accounts: int = 64  # funded local accounts for workloads, from devnet.key_seed
    load_account_balance: int = 1_000_000 * ZG
    validator_num_cpus: float = 0.1
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)

    def validate(self, path: str) -> None:
        _check(f"{path}.initial", self.initial >= 0, "must be >= 0", self.initial)
        _check(f"{path}.validators_per_network", 1 <= self.validators_per_network <= 256,
               "must be 1..256", self.validators_per_network)
        _check(f"{path}.block_interval_s", self.block_interval_s >= 0, "must be >= 0",
               self.block_interval_s)
        _check(f"{path}.max_block_txs", self.max_block_txs >= 1, "must be >= 1",
               self.max_block_txs)
        _check(f"{path}.max_block_bytes", self.max_block_bytes >= self.max_tx_bytes,
               "must be >= max_tx_bytes", self.max_block_bytes)
        _check(f"{path}.max_tx_bytes", self.max_tx_bytes >= 256, "must be >= 256",
               self.max_tx_bytes)
        _check(f"{path}.epoch_blocks", self.epoch_blocks >= 1, "must be >= 1",
               self.epoch_blocks)
        _check(f"{path}.mempool_max_txs", self.mempool_max_txs >= self.max_block_txs,
               "must be >= max_block_txs", self.mempool_max_txs)
        _check(f"{path}.load_accounts", self.load_accounts >= 1, "must be >= 1",
               self.load_accounts)
        self.timeouts.validate(f"{path}.timeouts")


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
class DevnetConfig:
    # Devnet keys are derived from this seed so every actor can rebuild them; a
    # production deployment would load keys from files instead.
    key_seed: str = "zg-devnet"

    def validate(self, path: str) -> None:
        _check(f"{path}.key_seed", bool(self.key_seed), "must not be empty", self.key_seed)


@dataclass(frozen=True)
class Config:
    data_dir: str = "./zg-data"
    lmdb_map_mb: int = 1024  # per node; LMDB maps it sparsely
    ray: RayConfig = field(default_factory=RayConfig)
    crypto: CryptoConfig = field(default_factory=CryptoConfig)
    devnet: DevnetConfig = field(default_factory=DevnetConfig)
    staking: StakingConfig = field(default_factory=StakingConfig)
    networks: NetworksConfig = field(default_factory=NetworksConfig)
    relayer: RelayerConfig = field(default_factory=RelayerConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)

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
        _check(path, isinstance(value, (int, float)) and not isinstance(value, bool),
               "must be a number", value)
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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", key=source) from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping", key=source)
    return config_from_dict(data)
