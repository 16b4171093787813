"""Scale consensus networks live on a running zg-actors deployment and measure it.

Connects to the deployment made by `zg up` (namespace from the config, default
`zg`), keeps a token-transfer load on every active network, and adds networks
one at a time; after each step it prints the committed tx/s of every network
and in total, so you see whether capacity grows with the number of networks.

    ray job submit --working-dir . -- python jobs/scale_networks.py --add 3

Networks it added stay up unless --retire is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import ray
from rich.console import Console
from rich.table import Table

from zg_actors import runtime
from zg_actors.config import load_config

console = Console(stderr=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", metavar="F", help="deployment YAML (default: devnet)")
    parser.add_argument("--address", default="auto",
                        help="Ray cluster address (default auto; `ray job submit` sets it)")
    parser.add_argument("--add", type=int, default=2, help="networks to add, one per step (2)")
    parser.add_argument("--validators", type=int, default=None,
                        help="validators per added network (default from config)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="offered tx/s per network (200)")
    parser.add_argument("--step-seconds", type=float, default=15.0,
                        help="load seconds measured after each step (15)")
    parser.add_argument("--retire", action="store_true",
                        help="retire the networks this job added when done")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def measure(deployment: runtime.Deployment, config, networks: list[int], rate: float,
            seconds: float) -> dict:
    drivers = [runtime.LoadDriver(deployment, config, n) for n in networks]
    start = time.time()
    runtime.drive(drivers, rate, seconds)
    end = time.time()
    time.sleep(2.0)  # txs admitted at the end commit within a block or two
    per_network = {}
    for driver in drivers:
        per_network[driver.network_id] = runtime.network_report(driver.handles, start, end)
    total = sum(r.get("tx_per_s") or 0.0 for r in per_network.values())
    return {"networks": networks, "total_tx_per_s": total, "per_network": per_network,
            "offered_tx_per_s": rate * len(networks)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config)
    runtime.connect(config, args.address)
    deployment = runtime.find_deployment()
    active = runtime.call(deployment.manager.active_networks.remote())
    if not active:
        active = [runtime.call(deployment.manager.launch_network.remote(args.validators), 300)
                  ["network_id"]]
    added: list[int] = []
    steps = []
    console.print(f"[bold]step 0[/]: {len(active)} network(s) {active}, "
                  f"{args.rate:.0f} tx/s offered to each")
    steps.append(measure(deployment, config, list(active), args.rate, args.step_seconds))
    for step in range(1, args.add + 1):
        console.print(f"[bold]step {step}[/]: launching a network while the load runs")
        launch = deployment.manager.launch_network.remote(args.validators)
        drivers = [runtime.LoadDriver(deployment, config, n) for n in active]
        while not runtime.is_ready(launch):  # keep the existing networks loaded meanwhile
            runtime.drive(drivers, args.rate, 0.5)
        network_id = runtime.call(launch)["network_id"]
        added.append(network_id)
        active.append(network_id)
        steps.append(measure(deployment, config, list(active), args.rate, args.step_seconds))
        console.print(f"  {len(active)} networks: {steps[-1]['total_tx_per_s']:.0f} tx/s "
                      "committed in total")
    if args.retire:
        for network_id in added:
            runtime.call(deployment.manager.retire_network.remote(network_id), 120)
    base = steps[0]["total_tx_per_s"] or 1e-9
    for entry in steps:
        entry["ratio_to_first"] = entry["total_tx_per_s"] / base
    if args.json:
        print(json.dumps(steps, indent=2, default=str))
    else:
        table = Table(title="committed tx/s as networks are added live")
        for column in ("networks", "offered tx/s", "committed tx/s", "per network",
                       "ratio to step 0"):
            table.add_column(column, justify="right")
        for entry in steps:
            table.add_row(str(len(entry["networks"])), f"{entry['offered_tx_per_s']:.0f}",
                          f"{entry['total_tx_per_s']:.0f}",
                          ", ".join(f"{n}: {r.get('tx_per_s') or 0:.0f}"
                                    for n, r in entry["per_network"].items()),
                          f"{entry['ratio_to_first']:.2f}x")
        Console().print(table)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
