"""Scale consensus networks live on a running zg-actors deployment and measure it.

Connects to the deployment made by `zg up` (namespace from the config, default
`zg`), keeps a token-transfer load on every active network, and adds networks
one at a time; after each step it prints the committed tx/s of every network
and in total, so you see whether capacity grows with the number of networks.

    ray job submit --working-dir . -- python jobs/scale_networks.py --add 3 --pillars storage,da

With --pillars storage,da it also keeps a storage upload load and a DA blob load on
through every step (each step then reports their MB/s too), so you see that adding
networks does not stall the other pillars. Networks it added stay up unless --retire
is given.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.table import Table

from zg_actors import runtime
from zg_actors.cli_common import print_json
from zg_actors.errors import Unavailable
from zg_actors.workload import (
    Background,
    Progress,
    gateway_address,
    job_parser,
    seeded_bytes,
    session,
)

LOAD_PILLARS = ("storage", "da")  # the pillars --pillars can keep loaded
STORAGE_FILE_BYTES = 256 * 1024  # each upload of the storage load
DA_BLOB_BYTES = 128 * 1024  # each blob of the DA load
DA_FINAL_TIMEOUT_S = 120.0
LOAD_STOP_TIMEOUT_S = 150.0
# Logical CPUs of the embedded Ray: the added networks' validators and the loaded pillars
# reserve more than the devnet's 2.
EMBEDDED_CPUS = 4  # the loads finish the operation in hand when they stop


def parse_pillars(text: str) -> list[str]:
    """--pillars 'storage,da' -> ["storage", "da"]."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [p for p in chosen if p not in LOAD_PILLARS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown pillar {unknown[0]!r} (loads: "
                                         f"{', '.join(LOAD_PILLARS)})")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = job_parser(__doc__)
    parser.add_argument("--add", type=int, default=2, help="networks to add, one per step (2)")
    parser.add_argument("--validators", type=int, default=None,
                        help="validators per added network (default from config)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="offered tx/s per network (200)")
    parser.add_argument("--step-seconds", type=float, default=15.0,
                        help="load seconds measured after each step (15)")
    parser.add_argument("--retire", action="store_true",
                        help="retire the networks this job added when done")
    parser.add_argument("--pillars", type=parse_pillars, default=[],
                        help="comma-separated pillars kept under load meanwhile: storage, da")
    return parser.parse_args(argv)


def start_loads(config, pillars: list[str]) -> list[Background]:
    """A storage uploader and/or a DA poster, each one operation after another."""
    loads = []
    if "storage" in pillars:
        from zg_actors.storage.sdk import StorageClient

        storage = StorageClient(config, start=False)

        def upload(i: int) -> int:
            storage.upload(seeded_bytes(2, i, STORAGE_FILE_BYTES))
            return STORAGE_FILE_BYTES

        loads.append(Background("storage", upload))
    if "da" in pillars:
        from zg_actors.rpc.client import DisperserClient

        disperser = DisperserClient(gateway_address(None))

        def post(i: int) -> int:
            _, request_id = disperser.disperse_blob(seeded_bytes(3, i, DA_BLOB_BYTES))
            runtime.wait_for(lambda: disperser.get_blob_status(request_id)["status"] in (
                "FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES"), DA_FINAL_TIMEOUT_S, 0.3)
            status = disperser.get_blob_status(request_id)["status"]
            if status != "FINALIZED":
                raise Unavailable(f"blob 0x{request_id.hex()} is {status}")
            return DA_BLOB_BYTES

        loads.append(Background("da", post))
    return [load.start() for load in loads]


def measure(deployment: runtime.Deployment, config, networks: list[int], rate: float,
            seconds: float, loads: list[Background]) -> dict:
    drivers = [runtime.LoadDriver(deployment, config, n) for n in networks]
    start, since = time.time(), time.monotonic()
    runtime.drive(drivers, rate, seconds)
    end, until = time.time(), time.monotonic()
    time.sleep(2.0)  # txs admitted at the end commit within a block or two
    per_network = {}
    for driver in drivers:
        per_network[driver.network_id] = runtime.network_report(driver.handles, start, end)
    total = sum(r.get("tx_per_s") or 0.0 for r in per_network.values())
    return {"networks": networks, "total_tx_per_s": total, "per_network": per_network,
            "offered_tx_per_s": rate * len(networks),
            "pillars": {load.name: load.window(since, until) for load in loads}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.quiet)
    with session(args, ["chain", *args.pillars], progress, EMBEDDED_CPUS) as config:
        steps = scale(config, args, progress)
    if args.json:
        print_json(steps)
    else:
        print_steps(steps)
    errors = sum(p["errors"] for entry in steps for p in entry["pillars"].values())
    return 1 if errors else 0


def scale(config, args: argparse.Namespace, progress: Progress) -> list[dict]:
    """Step 0 on the active networks, then one network added per step, the load on."""
    deployment = runtime.find_deployment()
    active = runtime.call(deployment.manager.active_networks.remote())
    if not active:
        active = [runtime.call(deployment.manager.launch_network.remote(args.validators), 300)
                  ["network_id"]]
    loads = start_loads(config, args.pillars)
    added: list[int] = []
    steps = []
    try:
        progress.say(f"step 0: {len(active)} network(s) {active}, {args.rate:.0f} tx/s "
                     f"offered to each" + (f"; {', '.join(args.pillars)} loaded"
                                           if args.pillars else ""))
        steps.append(measure(deployment, config, list(active), args.rate, args.step_seconds,
                             loads))
        for step in range(1, args.add + 1):
            progress.say(f"step {step}: launching a network while the load runs")
            launch = deployment.manager.launch_network.remote(args.validators)
            drivers = [runtime.LoadDriver(deployment, config, n) for n in active]
            while not runtime.is_ready(launch):  # keep the existing networks loaded meanwhile
                runtime.drive(drivers, args.rate, 0.5)
            network_id = runtime.call(launch)["network_id"]
            added.append(network_id)
            active.append(network_id)
            steps.append(measure(deployment, config, list(active), args.rate,
                                 args.step_seconds, loads))
            progress.say(f"  {len(active)} networks: {steps[-1]['total_tx_per_s']:.0f} tx/s "
                         "committed in total")
    finally:
        for load in loads:
            load.stop(LOAD_STOP_TIMEOUT_S)
    if args.retire:
        for network_id in added:
            runtime.call(deployment.manager.retire_network.remote(network_id), 120)
    base = steps[0]["total_tx_per_s"] or 1e-9
    for entry in steps:
        entry["ratio_to_first"] = entry["total_tx_per_s"] / base
    return steps


def print_steps(steps: list[dict]) -> None:
    table = Table(title="committed tx/s as networks are added live")
    pillars = sorted(steps[0]["pillars"]) if steps else []
    for column in ("networks", "offered tx/s", "committed tx/s", "per network",
                   "ratio to step 0", *(f"{p} MB/s (p50 s, errors)" for p in pillars)):
        table.add_column(column, justify="right")
    for entry in steps:
        figures = []
        for pillar in pillars:
            load = entry["pillars"][pillar]
            p50 = load["latency_p50_s"]
            figures.append(f"{load.get('mb_per_s', 0.0):.2f} "
                           f"({'-' if p50 is None else f'{p50:.2f}'}, {load['errors']})")
        table.add_row(str(len(entry["networks"])), f"{entry['offered_tx_per_s']:.0f}",
                      f"{entry['total_tx_per_s']:.0f}",
                      ", ".join(f"{n}: {r.get('tx_per_s') or 0:.0f}"
                                for n, r in entry["per_network"].items()),
                      f"{entry['ratio_to_first']:.2f}x", *figures)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
