"""One shared local Ray cluster for the whole integration session.

It declares one logical GPU so that GPU placement can be tested on a machine
without one; no test may assume CUDA is really there.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import ray

from zg_actors import runtime
from zg_actors.config import Config, load_config

TEST_NAMESPACE = "zg-test"


def integration_config(**changes: object) -> Config:
    """Fast blocks, short epochs and timeouts: a devnet that shows behaviour in seconds."""
    base = {"networks.block_interval_s": 0.2, "networks.empty_block_interval_s": 0.6,
            "networks.epoch_blocks": 5,
            "networks.load_accounts": 8, "networks.reward_burn_threshold": 30 * 10**18,
            "networks.timeouts.propose_s": 0.6, "networks.timeouts.propose_delta_s": 0.3,
            "networks.timeouts.prevote_s": 0.3, "networks.timeouts.prevote_delta_s": 0.2,
            "networks.timeouts.precommit_s": 0.3, "networks.timeouts.precommit_delta_s": 0.2,
            "staking.tick_interval_s": 0.5, "relayer.interval_s": 0.5,
            "ray.namespace": TEST_NAMESPACE}
    base.update(changes)
    return load_config().replace(**base)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False,
             namespace=TEST_NAMESPACE, object_store_memory=200 * 1024 * 1024, logging_level="ERROR",
             log_to_driver=False, _system_config=runtime.system_config(load_config()))
    yield
    ray.shutdown()


@pytest.fixture
def deployment(ray_session: None) -> Iterator[tuple[runtime.Deployment, Config]]:
    data_dir = tempfile.mkdtemp(prefix="zg-it-")
    config = integration_config(data_dir=data_dir)
    deployed = runtime.deploy(config, detached=False)
    yield deployed, config
    runtime.teardown()
    shutil.rmtree(data_dir, ignore_errors=True)


def cli_json(capsys: pytest.CaptureFixture[str]) -> dict:
    """The JSON a `zg ... --json` call printed. Ray's driver may print its own warnings
    (e.g. "(raylet) WARNING: 8 PYTHON worker processes have been started") into the
    same stdout, so lines around the document are skipped."""
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    document, _end = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
    return document
