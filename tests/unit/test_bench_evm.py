"""`zg bench evm`'s pure parts: the signed txs (valid, the right senders, nonces, chain id
and token addresses), the anchor on real py-evm (no Ray), the report's ratio and aim."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount
from eth_utils import keccak
from rich.console import Console

from zg_actors.chain.tx import decode_tx
from zg_actors.config import load_config
from zg_actors.crypto.devkeys import load_account
from zg_actors.evm import bench

ACCOUNTS = 4  # two native senders, two ERC-20 senders


@pytest.fixture(scope="module")
def signed() -> bench.BenchTxs:
    config = load_config()
    init = bytes.fromhex(bench.compile_erc20()["bytecode"].removeprefix("0x"))
    return bench.make_txs(config.devnet.key_seed, config.networks.evm.chain_id(0), ACCOUNTS,
                          {"native": 6, "erc20": 5}, init)


def test_make_txs_signs_valid_txs_for_each_kind_from_its_own_senders(signed) -> None:
    seed = load_config().devnet.key_seed
    address = {i: load_account(seed, i).address for i in range(ACCOUNTS)}
    deploys = [decode_tx(raw) for raw in signed.deploys]
    assert [(tx.sender, tx.nonce, tx.eth.to) for tx in deploys] == [
        (address[2], 0, b""), (address[3], 0, b"")]
    native = [decode_tx(raw) for raw in signed.transfers["native"]]
    erc20 = [decode_tx(raw) for raw in signed.transfers["erc20"]]
    assert all(tx.network_id == signed.chain_id for tx in deploys + native + erc20)
    # round-robin over the kind's senders; each sender's nonces follow on
    assert [(tx.sender, tx.nonce) for tx in native] == [
        (address[i % 2], i // 2) for i in range(6)]
    assert [(tx.sender, tx.nonce) for tx in erc20] == [
        (address[2 + i % 2], 1 + i // 2) for i in range(5)]
    assert all(tx.eth.value == bench.TRANSFER_VALUE and tx.eth.gas == bench.TRANSFER_GAS
               for tx in native)
    assert len({tx.eth.to for tx in native}) == 6  # fresh receivers
    for tx in erc20:  # a transfer(to, 1) call on the sender's own token
        assert tx.eth.to == bench.contract_address(tx.sender, 0)
        assert tx.eth.data[:4] == keccak(b"transfer(address,uint256)")[:4]
        assert int.from_bytes(tx.eth.data[36:], "big") == bench.TOKEN_AMOUNT
    assert bench.tx_hash_of(signed.transfers["native"][0]) == "0x" + native[0].hash.hex()


def test_the_anchor_applies_every_tx_on_py_evm_and_refuses_a_failing_one(signed) -> None:
    rates = bench.anchor_rates(load_config(), 0, signed)
    assert {k: (r["txs"], r["blocks"]) for k, r in rates.items()} == {
        "native": (6, 1), "erc20": (5, 1)}
    assert all(r["tx_per_s"] > 0 for r in rates.values())
    # A transfer by an account that holds none of the token reverts: the anchor says so
    # instead of timing failed work.
    seed = load_config().devnet.key_seed
    token = bench.contract_address(load_account(seed, 2).address, 0)
    reverting = bench.sign(EthAccount.from_key(load_account(seed, 0).secret),
                           signed.chain_id, 0, token, bench.ERC20_TRANSFER_GAS,
                           data=bench.erc20_transfer_data(bytes(20), 1))
    with pytest.raises(bench.EvmBenchError, match="failed in the anchor"):
        bench.anchor_rates(load_config(), 0, bench.BenchTxs(
            signed.chain_id, signed.deploys, {"native": [reverting], "erc20": []}))
    # Transfers whose deploys never ran leave a nonce gap: nothing can be included.
    with pytest.raises(bench.EvmBenchError, match="could include none"):
        bench.anchor_rates(load_config(), 0, bench.BenchTxs(signed.chain_id, [],
                                                            signed.transfers))
    # Txs for another chain id are refused, not counted.
    with pytest.raises(bench.EvmBenchError, match="refused"):
        bench.anchor_rates(load_config(), 1, signed)


def test_the_default_run_fits_under_the_fee_cap_and_bad_counts_are_refused() -> None:
    evm = load_config().networks.evm
    # Every block of the default run full, as in the anchor (both kinds on one chain, no
    # empty block between): the base fee, +12.5% a full block, stays under the txs' cap.
    erc20_per_block = evm.block_gas_limit // 60_000  # the Vyper transfer uses <= ~52k gas
    full_blocks = (1 + -(-bench.DEFAULT_TXS["native"] // (evm.block_gas_limit // 21_000))
                   + -(-bench.DEFAULT_TXS["erc20"] // erc20_per_block))
    assert evm.initial_base_fee * (9 / 8) ** full_blocks < bench.MAX_FEE_PER_GAS
    # Refused before anything starts (no Ray here).
    with pytest.raises(bench.EvmBenchError, match="--txs must be >= 1") as refused:
        bench.run_evm_bench(load_config(), txs={"native": 10, "erc20": 0})
    assert refused.value.details == {"kind": "erc20", "value": 0}
    with pytest.raises(bench.EvmBenchError, match="--duration must be > 0"):
        bench.run_evm_bench(load_config(), duration_s=0.0, txs={"native": 1, "erc20": 1})


def test_split_senders_needs_two_accounts() -> None:
    assert bench.split_senders(5) == {"native": [0, 1], "erc20": [2, 3]}
    with pytest.raises(bench.EvmBenchError, match="load_accounts is 1"):
        bench.split_senders(1)


def test_stream_report_counts_commits_over_first_send_to_last_commit() -> None:
    sent = {"a": 10.0, "b": 10.5, "c": 11.0, "d": 11.0}
    seen = {"a": 11.0, "b": 11.0, "c": 12.0, "x": 12.0}  # d never committed; x not ours
    report = bench.stream_report(sent, seen, {"nonce too low": 1}, offered_s=1.0)
    assert (report["sent"], report["committed"], report["uncommitted"]) == (4, 3, 1)
    assert report["seconds"] == 2.0 and report["tx_per_s"] == 1.5
    assert (report["latency_p50_s"], report["latency_p99_s"]) == (1.0, 1.0)
    assert report["refused"] == 1
    # Sustained: the first poll's block (a, b) is the start; c came 1 s later.
    assert (report["sustained_txs"], report["sustained_seconds"]) == (1, 1.0)
    assert report["sustained_tx_per_s"] == 1.0
    empty = bench.stream_report({}, {}, {}, offered_s=0.0)
    assert empty["tx_per_s"] == 0.0 and empty["latency_p50_s"] is None
    assert empty["sustained_tx_per_s"] == 0.0
    one_block = bench.stream_report({"a": 1.0}, {"a": 2.0}, {}, offered_s=1.0)
    assert one_block["sustained_tx_per_s"] == 0.0  # one block: no span to count over


def _network(tx_per_s: float) -> dict:
    return {"tx_per_s": tx_per_s, "sustained_tx_per_s": 1.25 * tx_per_s, "committed": 100,
            "latency_p50_s": 0.5, "latency_p99_s": 1.2}


def test_report_ratio_aim_and_published_figures() -> None:
    anchor = {"native": {"tx_per_s": 1000.0}, "erc20": {"tx_per_s": 500.0}}
    report = bench.assemble_report({"native": _network(400.0), "erc20": _network(100.0)},
                                   anchor, {"txs_per_kind": 100})
    native, erc20 = report["kinds"]["native"], report["kinds"]["erc20"]
    assert native["ratio"] == pytest.approx(0.4) and native["aim_met"]
    assert native["sustained_ratio"] == pytest.approx(0.5)
    assert erc20["ratio"] == pytest.approx(0.2) and not erc20["aim_met"]
    assert (native["published_0g_tx_per_s"], erc20["published_0g_tx_per_s"]) == (769, 369)
    assert native["aim"] == bench.RATIO_AIM == 0.3
    assert not report["ok"]
    met = bench.assemble_report({"native": _network(300.0), "erc20": _network(150.0)},
                                anchor, {})
    assert met["ok"]
    console = Console(record=True, width=200)
    console.print(bench.format_report(report))
    text = console.export_text()
    assert "0.40x (0.50x)" in text and "not met" in text and "769" in text


def test_the_block_watcher_waits_half_the_last_gap_then_polls() -> None:
    assert bench.poll_delay(5.0, None, 0.0) == bench.POLL_S  # no block seen yet
    # Blocks seen 1.2 s apart, the last at t=10: nothing is asked before t=10.6.
    assert bench.poll_delay(10.0, 10.0, 1.2) == pytest.approx(0.6)
    assert bench.poll_delay(10.4, 10.0, 1.2) == pytest.approx(0.2)
    assert bench.poll_delay(10.6, 10.0, 1.2) == bench.POLL_S
    assert bench.poll_delay(12.0, 10.0, 1.2) == bench.POLL_S
