"""`zg demo`: the whole backbone on an embedded local Ray, with a report.

Deploys C0 and one 4-validator network, drives token transfers, launches a
second network live (load follows it), retires it while the first keeps
committing, lets the relayer bridge rewards to C0, then reports per network
height, committed tx/s, commit latency p50/p99 and voting power, the bridge
mints and the supply checks.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zg_actors import runtime
from zg_actors.config import ZG, Config
from zg_actors.stack import start_networks_rpc


def _fmt(value: float | None, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}{unit}"


def run_demo(config: Config, duration_s: float = 20.0, rate_tps: float = 400.0,
             quiet: bool = False, console: Console | None = None,
             keep_data: bool = False) -> dict[str, Any]:
    console = console or Console(stderr=True)
    data_dir = tempfile.mkdtemp(prefix="zg-demo-")
    config = config.replace(data_dir=data_dir)
    say = (lambda *_: None) if quiet else console.print
    say(f"[bold]zg demo[/]: embedded Ray, data in {data_dir}")
    runtime.connect(config, None)
    try:
        return _run(config, duration_s, rate_tps, quiet, console, say)
    finally:
        runtime.shutdown()
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


def _run(config: Config, duration_s: float, rate_tps: float, quiet: bool, console: Console,
         say: Any) -> dict[str, Any]:
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                   console=console, disable=quiet, transient=True)
    with bar:
        step = bar.add_task("deploying C0 staking, network manager, relayer", total=None)
        deployment = runtime.deploy(config, detached=False)
        bar.update(step, description="launching network 0 (4 validators)")
        first = runtime.call(deployment.manager.launch_network.remote(4), 300)
        net0 = first["network_id"]
        bar.update(step, description=f"starting network {net0}'s Ethereum JSON-RPC")
        rpc = start_networks_rpc(config, [net0])
        for endpoint in rpc:
            say(f"  network {endpoint['network_id']}: Ethereum JSON-RPC {endpoint['rpc']} "
                f"chain id {endpoint['chain_id']}")
        drivers = {net0: runtime.LoadDriver(deployment, config, net0)}
        windows: dict[int, list[float]] = {net0: [time.time(), 0.0]}
        drivers_handles: dict[int, list[Any]] = {}
        live: dict[int, dict] = {}
        launch_ref = retire_ref = None
        second: int | None = None
        bar.update(step, description=f"token transfers at {rate_tps:.0f} tx/s per network",
                   total=duration_s, completed=0)

        def on_tick(elapsed: float) -> None:
            nonlocal launch_ref, retire_ref, second
            bar.update(step, completed=min(elapsed, duration_s))
            if launch_ref is None and elapsed >= duration_s * 0.1:
                launch_ref = deployment.manager.launch_network.remote(4)
                say(f"  t={elapsed:4.1f}s  launching a second network live")
            if second is None and launch_ref is not None and runtime.is_ready(launch_ref):
                second = runtime.call(launch_ref)["network_id"]
                drivers[second] = runtime.LoadDriver(deployment, config, second)
                drivers_handles[second] = drivers[second].handles
                windows[second] = [time.time(), 0.0]
                say(f"  t={elapsed:4.1f}s  network {second} is up; load follows it")
            if second is not None and retire_ref is None and elapsed >= duration_s * 0.85:
                windows[second][1] = time.time()
                drivers.pop(second)
                # Its figures are read now: retiring stops its validators.
                live[second] = runtime.network_report(drivers_handles[second],
                                                      *windows[second])
                retire_ref = deployment.manager.retire_network.remote(second)
                say(f"  t={elapsed:4.1f}s  retiring network {second}")

        start = time.time()
        while time.time() - start < duration_s:
            runtime.drive(list(drivers.values()), rate_tps, 0.5, None)
            on_tick(time.time() - start)
        windows[net0][1] = time.time()
        bar.update(step, description="draining mempools, retiring, bridging rewards",
                   total=None)
        reports = {}
        handles0 = list(runtime.call(deployment.manager.validator_handles.remote(net0)).values())
        runtime.wait_for(
            lambda: runtime.call(handles0[0].status.remote())["mempool_pending"] == 0, 20)
        reports[net0] = runtime.network_report(handles0, *windows[net0])
        if retire_ref is not None:
            retired = runtime.call(retire_ref, 120)
            reports[second] = {**live.get(second, {}), "network_id": second,
                               "retired_at_height": retired.get("final_height"),
                               **second_report(windows[second], retired)}
        elif launch_ref is not None:
            # A slow machine: the second network came up only after the load phase.
            second = runtime.call(launch_ref, 300)["network_id"]
            retired = runtime.call(deployment.manager.retire_network.remote(second), 120)
            reports[second] = {"network_id": second, "retired_at_height":
                               retired.get("final_height"), "active_s": 0.0,
                               "status": retired.get("status"),
                               "note": "came up after the load phase; retired without load"}
        runtime.wait_for(lambda: runtime.call(
            deployment.staking.supply_report.remote())["bridge_mints"] > 0, 30, 1.0)
        bar.update(step, description="pillars: storage, DA, compute", total=None)
        pillars = run_pillars(deployment, config, say)
        supply = runtime.call(deployment.staking.supply_report.remote())
        local, height0 = _supply_at_one_height(handles0[0])
    # Block rewards are not the only mint (storage and DA rewards mint too), so the
    # check is the supply identity plus: at least every block's reward was minted.
    local_ok = (local["supply"] == local["genesis"] + local["minted"] - local["burned"]
                and local["minted"] >= config.networks.block_reward * height0)
    report = {"networks": reports, "drivers": {n: {"sent": d.sent, "rejected": len(d.rejected)}
                                               for n, d in drivers.items()},
              "staking": supply, "network0_token": local,
              "supply_checks": {"c0_invariants": supply["invariants_ok"],
                                "network0_token": local_ok},
              "bridge_mints": supply["bridge_mints"], "rpc": rpc, **pillars}
    report["ok"] = bool(supply["invariants_ok"] and local_ok and height0
                        and all(p.get("ok", True) for p in pillars.values()))
    if not quiet:
        print_report(console, report, config)
    return report


def _supply_at_one_height(handle: Any) -> tuple[dict, int]:
    """The reward token's supply and the height it belongs to (the chain keeps moving)."""
    for _ in range(20):
        before = runtime.call(handle.committed_height.remote())
        supply = runtime.call(handle.query.remote("token", "supply", ()))
        if runtime.call(handle.committed_height.remote()) == before:
            return supply, before
    return supply, before


def run_pillars(deployment: runtime.Deployment, config: Config, say: Any) -> dict[str, Any]:
    """Storage, DA and compute on the running networks; each returns its report figures."""
    from zg_actors.compute.demo import run_compute_demo
    from zg_actors.da.demo import run_da_demo
    from zg_actors.storage.actors import stop_miners
    from zg_actors.storage.demo import run_storage_demo

    storage = run_storage_demo(deployment, config, say)
    # Each pillar hands its CPUs back before the next: the embedded Ray has only
    # `ray.num_cpus` (2), and DA launches a network of its own while it disperses.
    stop_miners(config)
    return {"storage": storage, "da": run_da_demo(deployment, config, say),
            "compute": run_compute_demo(deployment, config, say)}


PILLAR_FIGURES = {
    "storage": [("file bytes", "size"), ("upload MB/s", "upload_mb_s"),
                ("download MB/s", "download_mb_s"), ("intact after a miner was killed", "intact"),
                ("PoRA answers submitted and paid", "answers_submitted"),
                ("rewards paid (tokens)", "rewards_paid")],
    "da": [("blobs FINALIZED", "blobs_finalized"), ("confirmed MB/s", "confirmed_mb_per_s"),
           ("latency p50 s", "latency_p50_s"), ("p99 s", "latency_p99_s"),
           ("certificates per network", "certificates_per_network")],
    "compute": [("requests served", "requests_served"), ("tokens", "tokens"),
                ("fees settled (tokens)", "fees_settled"), ("settlement txs", "settlement_txs")],
}


def second_report(window: list[float], retired: dict) -> dict:
    return {"active_s": round(window[1] - window[0], 1), "status": retired.get("status")}


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and value >= 10**12:  # base units of a token
        return f"{value / ZG:,.6f}"
    return str(value)


def power_summary(powers: list[int]) -> str:
    """'4 x 100000' for equal powers, else the list."""
    if powers and len(set(powers)) == 1:
        return f"{len(powers)} x {powers[0]}"
    return ", ".join(str(p) for p in powers)


def print_report(console: Console, report: dict, config: Config) -> None:
    table = Table(title="consensus networks")
    for column in ("network", "height", "committed tx/s", "p50 latency", "p99 latency",
                   "rounds", "validators x power"):
        table.add_column(column, justify="right")
    notes: list[str] = []
    for network_id, r in sorted(report["networks"].items()):
        if "tx_per_s" not in r:
            table.add_row(str(network_id), str(r.get("retired_at_height", "-")), "-", "-", "-",
                          "-", "retired")
            notes.append(f"network {network_id}: " + r.get(
                "note", f"retired after {r.get('active_s', '?')} s live"))
            continue
        if "retired_at_height" in r:
            notes.append(f"network {network_id} was launched live, then retired at height "
                         f"{r['retired_at_height']} after {r['active_s']} s under load")
        table.add_row(str(network_id), str(r.get("retired_at_height") or r["height"]),
                      f"{r['tx_per_s']:.0f}", _fmt(r["latency_p50_s"], " s"),
                      _fmt(r["latency_p99_s"], " s"), str(r["rounds"]),
                      power_summary([v["power"] for v in r["validators"]]))
    console.print(table)
    for note in notes:
        console.print(note)
    for pillar, figures in PILLAR_FIGURES.items():
        if pillar in report:
            values = report[pillar]
            console.print(f"[bold]{pillar}[/]: " + "; ".join(
                f"{label} {_figure(values.get(key))}" for label, key in figures))
    s = report["staking"]
    console.print(f"C0: ZG supply {s['supply'] / ZG:,.2f} = genesis {s['genesis_supply'] / ZG:,.0f}"
                  f" + minted {s['minted'] / ZG:,.2f} - burned {s['burned'] / ZG:,.2f}; "
                  f"bridge mints {s['bridge_mints']}; balances + stakes + pending = supply: "
                  f"{'[green]ok[/]' if s['invariants_ok'] else '[red]' + str(s['problems'])}")
    t = report["network0_token"]
    console.print(f"network 0 reward token: supply {t['supply'] / ZG:,.2f} = genesis "
                  f"{t['genesis'] / ZG:,.0f} + minted {t['minted'] / ZG:,.2f} - burned "
                  f"{t['burned'] / ZG:,.2f}: "
                  f"{'[green]ok[/]' if report['supply_checks']['network0_token'] else '[red]NO'}")
