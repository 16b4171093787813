"""`zg bench evm`'s core on the shared Ray session: a few signed native and ERC-20
transfers through a 4-validator network's JSON-RPC, all committed and successful, beside
the anchor of the same txs."""

from __future__ import annotations

import pytest
import ray

from zg_actors.evm import bench
from zg_actors.evm.serve import start_evm_rpc

from .test_chain import handles_of, wait_height
from .test_evm_rpc import evm  # noqa: F401 - the deployment with its JSON-RPC on a free port

pytestmark = pytest.mark.integration

TXS_PER_KIND = 24


def test_bench_core_commits_every_signed_tx_of_both_kinds(evm) -> None:  # noqa: F811
    d, config, _ = evm
    net = ray.get(d.manager.launch_network.remote(4))["network_id"]
    wait_height(list(handles_of(d, net).values()), 1)
    init = bytes.fromhex(bench.compile_erc20()["bytecode"].removeprefix("0x"))
    signed = bench.make_txs(config.devnet.key_seed, config.networks.evm.chain_id(net),
                            config.networks.load_accounts,
                            dict.fromkeys(bench.KINDS, TXS_PER_KIND), init)
    anchor = bench.anchor_rates(config, net, signed)
    said: list[str] = []
    windows = bench.window_txs(anchor)
    # Each kind's 24 txs fill one anchor block: two such blocks may be in flight.
    assert windows == {kind: 2 * TXS_PER_KIND for kind in bench.KINDS}, windows
    network = bench.measure_network(start_evm_rpc(config, net), signed, 60.0, windows,
                                    said.append)
    for kind in bench.KINDS:
        report = network[kind]
        assert (report["sent"], report["committed"], report["refused"]) == (
            TXS_PER_KIND, TXS_PER_KIND, 0), (kind, report)
        assert report["tx_per_s"] > 0 and report["latency_p50_s"] is not None
        assert report["latency_p50_s"] <= report["latency_p99_s"]
    report = bench.assemble_report(network, anchor, {})
    assert set(report["kinds"]) == set(bench.KINDS)
    assert any("erc20" in line for line in said)
