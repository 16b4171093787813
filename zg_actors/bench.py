"""`zg bench consensus`: what the consensus networks commit, beside what one process could.

1. Per BLS backend: 4 validators on one network under a transfer load;
   committed tx/s and commit latency p50/p99 (tx admitted -> block committed).
2. The limit: the same kind of txs applied straight to the state machine in
   this process (signature checks included), as tx/s; each figure above is
   shown as a ratio to it.
3. Capacity with 1, 2 and 3 networks when block limits bind (small blocks,
   load offered above capacity), as a ratio to 1 network.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from zg_actors import runtime
from zg_actors.chain.load import TransferLoad
from zg_actors.chain.modules.base import BlockInfo
from zg_actors.chain.network import build_state_machine
from zg_actors.config import Config
from zg_actors.crypto import bls

LIMIT_TXS = 20_000
CAPACITY_BLOCK_TXS = 50  # small blocks and a 1 s interval: the block limit binds, not the CPUs
CAPACITY_BLOCK_INTERVAL_S = 1.0
CAPACITY_OFFERED_TPS = 100  # per network, twice what 50-tx blocks at 1 s can commit
# py_ecc verifies a BLS signature in about 0.3 s, so a height costs each validator
# seconds of CPU: its run gets longer timeouts, a longer window and a lower offer.
SLOW_BACKEND_TIMEOUT_SCALE = 6.0
SLOW_BACKEND_DURATION_SCALE = 3.0
SLOW_BACKEND_OFFERED_TPS = 200.0


def single_process_limit(config: Config, txs: int = LIMIT_TXS) -> dict[str, float]:
    """Apply `txs` signed transfers to the state machine in blocks, in this process."""
    machine = build_state_machine(config, 0)
    state: dict[bytes, bytes] = dict(machine.genesis({}.get).writes())
    load = TransferLoad(config.devnet.key_seed, 0, config.networks.load_accounts,
                        [0] * config.networks.load_accounts)
    batch = load.next_batch(txs)
    size = config.networks.max_block_txs
    start = time.perf_counter()
    root = b"\x00" * 32
    for height, offset in enumerate(range(0, len(batch), size), start=1):
        included, rejected, result = machine.build_block(
            state.get, BlockInfo(0, height, height, bytes(20)), batch[offset:offset + size],
            root)
        assert not rejected, rejected[:1]
        for key, value in result.overlay.writes():
            state[key] = value
        root = result.state_root
    elapsed = time.perf_counter() - start
    return {"txs": txs, "seconds": elapsed, "tx_per_s": txs / elapsed}


def _measure_network(config: Config, networks: int, rate_tps: float, duration_s: float,
                     say: Any) -> list[dict]:
    data_dir = tempfile.mkdtemp(prefix="zg-bench-")
    config = config.replace(data_dir=data_dir)
    try:
        deployment = runtime.deploy(config, detached=False)
        ids = []
        for _ in range(networks):
            ids.append(runtime.call(deployment.manager.launch_network.remote(4), 300)
                       ["network_id"])
        drivers = [runtime.LoadDriver(deployment, config, n) for n in ids]
        time.sleep(1.0)
        start = time.time()
        runtime.drive(drivers, rate_tps, duration_s)
        end = time.time()
        time.sleep(2.0)  # let the last admitted txs commit before reading latencies
        reports = []
        for n in ids:
            handles = list(runtime.call(deployment.manager.validator_handles.remote(n)).values())
            reports.append(runtime.network_report(handles, start, end))
        return reports
    finally:
        runtime.teardown()
        time.sleep(1.0)
        shutil.rmtree(data_dir, ignore_errors=True)


def scaled_timeouts(config: Config, scale: float) -> Config:
    t = config.networks.timeouts
    return config.replace(**{f"networks.timeouts.{name}": getattr(t, name) * scale
                             for name in ("propose_s", "propose_delta_s", "prevote_s",
                                          "prevote_delta_s", "precommit_s",
                                          "precommit_delta_s")})


def run_consensus_bench(config: Config, duration_s: float = 12.0, quiet: bool = False,
                        console: Console | None = None,
                        backends: list[str] | None = None, rate_tps: float = 1500.0
                        ) -> dict[str, Any]:
    console = console or Console(stderr=True)
    say = (lambda *_: None) if quiet else console.print
    backends = backends or bls.available_backends()
    say("[bold]single-process limit[/]: state machine alone, signature checks included")
    limit = single_process_limit(config)
    runtime.connect(config, None)
    result: dict[str, Any] = {"limit": limit, "backends": {}, "capacity": {},
                              "offered_tps": rate_tps, "duration_s": duration_s}
    try:
        for backend in backends:
            cfg = config.replace(**{"crypto.bls_backend": backend})
            offered, duration = rate_tps, duration_s
            if backend == "py_ecc":
                cfg = scaled_timeouts(cfg, SLOW_BACKEND_TIMEOUT_SCALE)
                offered = min(rate_tps, SLOW_BACKEND_OFFERED_TPS)
                duration = duration_s * SLOW_BACKEND_DURATION_SCALE
            say(f"[bold]4 validators, BLS backend {backend}[/]: {offered:.0f} tx/s offered "
                f"for {duration:.0f} s")
            [report] = _measure_network(cfg, 1, offered, duration, say)
            report["ratio_to_limit"] = report["tx_per_s"] / limit["tx_per_s"]
            report["offered_tps"] = offered
            report["duration_s"] = duration
            result["backends"][backend] = report
        capacity_cfg = config.replace(**{
            "networks.max_block_txs": CAPACITY_BLOCK_TXS,
            "networks.block_interval_s": CAPACITY_BLOCK_INTERVAL_S})
        for networks in (1, 2, 3):
            say(f"[bold]capacity, {networks} network(s)[/], blocks of {CAPACITY_BLOCK_TXS} txs, "
                f"{CAPACITY_OFFERED_TPS} tx/s offered to each")
            reports = _measure_network(capacity_cfg, networks, CAPACITY_OFFERED_TPS, duration_s,
                                       say)
            total = sum(r["tx_per_s"] for r in reports)
            result["capacity"][networks] = {"tx_per_s": total,
                                            "per_network": [r["tx_per_s"] for r in reports]}
        base = result["capacity"][1]["tx_per_s"] or 1e-9
        for entry in result["capacity"].values():
            entry["ratio_to_1"] = entry["tx_per_s"] / base
    finally:
        runtime.shutdown()
    if not quiet:
        print_bench(console, result)
    return result


def print_bench(console: Console, result: dict[str, Any]) -> None:
    limit = result["limit"]["tx_per_s"]
    table = Table(title="consensus: 4 validators, one network")
    for column in ("BLS backend", "offered tx/s", "committed tx/s", "limit tx/s (1 process)",
                   "ratio",
                   "p50 latency", "p99 latency", "blocks", "rounds"):
        table.add_column(column, justify="right")
    for backend, r in result["backends"].items():
        table.add_row(backend, f"{r['offered_tps']:.0f}", f"{r['tx_per_s']:.0f}", f"{limit:.0f}",
                      f"{r['ratio_to_limit']:.2f}x",
                      f"{r['latency_p50_s']:.2f} s" if r["latency_p50_s"] is not None else "-",
                      f"{r['latency_p99_s']:.2f} s" if r["latency_p99_s"] is not None else "-",
                      str(r["blocks"]), str(r["rounds"]))
    console.print(table)
    console.print("limit: the same signed transfers applied to the state machine in one process "
                  "(signature, nonce and network checks included), no consensus, no network.")
    if "py_ecc" in result["backends"]:
        console.print(f"py_ecc run: Tendermint timeouts x{SLOW_BACKEND_TIMEOUT_SCALE:.0f} and a "
                      f"{result['backends']['py_ecc']['duration_s']:.0f} s window, because "
                      "py_ecc needs ~0.3 s per BLS verification.")
    capacity = Table(title=f"capacity when block limits bind ({CAPACITY_BLOCK_TXS} txs per block, "
                           f"{CAPACITY_BLOCK_INTERVAL_S:.0f} s interval, "
                           f"{CAPACITY_OFFERED_TPS} tx/s offered per network)")
    for column in ("networks", "committed tx/s", "per network", "ratio to 1 network"):
        capacity.add_column(column, justify="right")
    for networks, entry in result["capacity"].items():
        capacity.add_row(str(networks), f"{entry['tx_per_s']:.0f}",
                         ", ".join(f"{x:.0f}" for x in entry["per_network"]),
                         f"{entry['ratio_to_1']:.2f}x")
    console.print(capacity)
    console.print("Each network is its own 4-validator actor group; all share the one C0 "
                  "staking actor and the machine's CPUs.")
