"""`zg up` / `zg status` / `zg down` over the whole stack on the local test cluster, and the
error of each command whose pillar is not up (the command that starts it, exit status 2)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ray import serve

from zg_actors import runtime
from zg_actors.cli import main
from zg_actors.rpc.jsonrpc import JsonRpcClient
from zg_actors.stack import PILLARS

from .conftest import TEST_NAMESPACE, cli_json, integration_config

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config_file(ray_session: None) -> Iterator[str]:
    """A small whole stack for the 2 CPUs of the test cluster: one network, one compute
    provider, smaller CPU reservations (the defaults add up to more than 2)."""
    data_dir = tempfile.mkdtemp(prefix="zg-it-stack-")
    config = integration_config(**{
        "data_dir": data_dir, "networks.initial": 1, "compute.providers": 1,
        "compute.provider_num_cpus": 0.1, "codec.encoder_num_cpus": 0.1,
        "storage.miner_num_cpus": 0.05, "da.gateway_port": free_port(),
        "kv.nodes": 1, "kv.rpc_port": free_port(), "networks.evm.rpc_port": free_port()})
    path = Path(data_dir) / "zg.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    yield str(path)
    runtime.teardown()
    serve.shutdown()  # the networks' Ethereum JSON-RPC apps `zg up` started
    shutil.rmtree(data_dir, ignore_errors=True)


def zg(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, cli_json(capsys)


def assert_not_up(capsys: pytest.CaptureFixture[str], pillar: str, start: str,
                  *argv: str) -> None:
    status, out = zg(capsys, *argv)
    assert (status, out["error"], out["pillar"]) == (2, "NotUp", pillar), out
    assert f"is not up in namespace {TEST_NAMESPACE}: run {start}" in out["message"]


def states(capsys: pytest.CaptureFixture[str], config: str) -> dict[str, str]:
    status, out = zg(capsys, "status", "--config", config)
    assert status == 0
    return {name: p["state"] for name, p in out["pillars"].items()}


def test_up_status_down_and_each_pillar_not_up(capsys: pytest.CaptureFixture[str],
                                               config_file: str, tmp_path: Path) -> None:
    cfg = ("--config", config_file)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 40)
    assert states(capsys, config_file) == dict.fromkeys(PILLARS, "down")
    # Nothing up: chain, storage and compute commands name the chain.
    assert_not_up(capsys, "chain", "`zg up`", "network", "list", *cfg)
    assert_not_up(capsys, "chain", "`zg up`", "file-info", "0x" + "11" * 32, *cfg)
    assert_not_up(capsys, "chain", "`zg up`", "compute", "account", *cfg)
    assert_not_up(capsys, "chain", "`zg up`", "up", "--only", "da", *cfg)

    status, out = zg(capsys, "up", "--only", "chain", *cfg)
    assert status == 0 and out["pillars"] == ["chain"] and len(out["launched"]) == 1
    [endpoint] = out["rpc"]  # each network's Ethereum JSON-RPC URL and chain id
    assert endpoint["chain_id"] == integration_config().networks.evm.chain_id(0)
    assert JsonRpcClient(endpoint["rpc"]).call("eth_chainId") == hex(endpoint["chain_id"])
    assert states(capsys, config_file) == {"chain": "up", "storage": "down", "kv": "down",
                                           "da": "down", "compute": "down"}
    # The chain alone: DA and compute commands name their pillar; storage commands start
    # their miners themselves, as they always have.
    assert_not_up(capsys, "da", "`zg up` or `zg da up`", "da", "disperse", str(blob), *cfg)
    assert_not_up(capsys, "da", "`zg up` or `zg da up`", "da", "epoch", *cfg)
    assert_not_up(capsys, "kv", "`zg up` or `zg kv up`", "kv", "status", *cfg)
    assert_not_up(capsys, "storage", "`zg up` or `zg up --only storage`", "kv", "up", *cfg)
    assert_not_up(capsys, "compute", "`zg up` or `zg compute up`",
                  "compute", "infer", "0", "hi", *cfg)

    status, out = zg(capsys, "up", "--without", "chain", *cfg)
    assert status == 0 and out["pillars"] == ["storage", "kv", "da", "compute"]
    assert out["started"]["kv"]["rpc"].startswith("http://")
    kv_rpc = out["started"]["kv"]["rpc"]
    assert out["started"]["storage"]["miners"] == 4 and len(out["started"]["compute"]) == 1
    status, out = zg(capsys, "status", *cfg)
    assert {name: p["state"] for name, p in out["pillars"].items()} == dict.fromkeys(
        PILLARS, "up")
    assert [n["network_id"] for n in out["networks"]] == [0] and out["staking"]["invariants_ok"]
    assert out["pillars"]["da"]["epoch"] >= 0
    # Every pillar's live figures, and rates from two looks --interval seconds apart.
    assert set(out["storage"]["flows"]) == {"0"} and len(out["storage"]["miners"]) == 4
    assert isinstance(out["da"]["statuses"], dict) and out["da"]["confirmed_bytes"] >= 0
    assert [p["index"] for p in out["compute"]["providers"]] == [0]
    assert out["endpoints"]["DA Disperser (gRPC)"].endswith(":" + str(yaml.safe_load(
        Path(config_file).read_text())["da"]["gateway_port"]))
    assert out["rates"]["seconds"] >= 1.0 and set(out["rates"]["tx_per_s"]) == {"0"}
    # KV nodes with their replay lag (flow entries not replayed), the JSON-RPC endpoints.
    assert [n["network_id"] for n in out["kv"]["nodes"]] == [0] * len(out["kv"]["nodes"])
    assert all(0 <= n["lag"] <= n["entries"] for n in out["kv"]["nodes"])
    assert out["endpoints"]["KV (JSON-RPC)"] == kv_rpc
    assert out["endpoints"]["network 0 Ethereum (JSON-RPC)"].startswith("http://")
    status, out = zg(capsys, "da", "disperse", str(blob), *cfg)
    assert status == 0 and out["status"] == "PROCESSING"

    status, out = zg(capsys, "down", *cfg)
    assert status == 0 and "gateway" in out["removed"] and "staking" in out["removed"]
    assert "zg-kv-node-0" in out["removed"] and "zg-kv-rpc" in out["removed"]
    assert "zg-evm-rpc-0" in out["removed"]
    assert states(capsys, config_file) == dict.fromkeys(PILLARS, "down")
    # The next `zg up` resumes the chain from its data.
    status, out = zg(capsys, "up", "--only", "chain", *cfg)
    assert status == 0 and 0 in {int(n) for n in out["resumed"]} and out["launched"] == []
