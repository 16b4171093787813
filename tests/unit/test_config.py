from pathlib import Path

import pytest

from zg_actors.config import ConfigError, config_from_dict, load_config


def test_embedded_devnet_loads_and_fits_two_cores() -> None:
    config = load_config()
    assert config.ray.num_cpus == 2
    assert config.networks.validators_per_network == 4
    total_validator_cpus = 3 * 4 * config.networks.validator_num_cpus
    assert total_validator_cpus + config.staking.num_cpus < config.ray.num_cpus


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == config_from_dict({})


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"networks\.block_intervl_s: unknown key"):
        config_from_dict({"networks": {"block_intervl_s": 1}})


@pytest.mark.parametrize(("data", "needle"), [
    ({"networks": {"block_interval_s": -1}}, "networks.block_interval_s"),
    ({"networks": {"empty_block_interval_s": -0.5}}, "networks.empty_block_interval_s"),
    ({"da": {"batches_signing": 0}}, "da.batches_signing: must be >= 1"),
    ({"networks": {"max_block_txs": "many"}}, "networks.max_block_txs: must be an integer"),
    ({"crypto": {"bls_backend": "blst"}}, "crypto.bls_backend"),
    ({"networks": {"timeouts": {"propose_s": 0}}}, "networks.timeouts.propose_s"),
    ({"staking": {"slash_fraction_bps": 20000}}, "staking.slash_fraction_bps"),
    ({"staking": {"validators": 2}}, "staking.validators: must be >= networks."),
    ({"ray": "big"}, "ray: must be a mapping"),
])
def test_bad_values_are_named(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config_from_dict(data)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("networks: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("ray:\n  namespace: zg-caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.yaml is not UTF-8 text: byte 0xe9 at offset"):
        load_config(latin1)


def test_nan_is_not_a_number_setting(tmp_path: Path) -> None:
    nan = tmp_path / "nan.yaml"
    nan.write_text("da:\n  retention_s: .nan\n")
    with pytest.raises(ConfigError, match="da.retention_s: must be a number, got nan"):
        load_config(nan)


def test_config_is_frozen_and_replace_checks_keys() -> None:
    config = load_config()
    with pytest.raises(AttributeError):
        config.networks.max_block_txs = 1  # type: ignore[misc]
    changed = config.replace(**{"networks.max_block_txs": 10})
    assert changed.networks.max_block_txs == 10
    with pytest.raises(ConfigError, match="networks.nope"):
        config.replace(**{"networks.nope": 1})
