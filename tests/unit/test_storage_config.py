"""The `storage:` section: defaults load, bad values name their key."""

from __future__ import annotations

import pytest

from zg_actors.config import ConfigError, load_config


def test_devnet_storage_defaults() -> None:
    storage = load_config().storage
    assert storage.miners >= storage.data_shards + storage.parity_shards
    assert storage.reward_schedule in ("linear", "decay")


@pytest.mark.parametrize("key, value, message", [
    ("storage.miners", 2, "storage.miners"),
    ("storage.pricing_segment_sectors", 3000, "power of two"),
    ("storage.reward_schedule", "forever", "linear or decay"),
    ("storage.service_fee_bps", 10_001, "basis points"),
])
def test_bad_storage_values_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config().replace(**{key: value})
