"""`zg chaos` (and jobs/chaos.py): its options, where it runs, and its report table."""

from __future__ import annotations

import argparse
from typing import Any

from zg_actors.cli_common import add_command, console, print_json

# The pillars an embedded run brings up (the chain's brings each network's EVM JSON-RPC).
EMBEDDED_PILLARS = ["chain", "storage", "kv", "da", "compute"]
EMBEDDED_CPUS = 4  # logical CPUs: every pillar's actors at once on the embedded Ray
# A pillar with some of its configured actors missing gets no load nor faults of its own
# (storage, DA, compute): most often the job was given another config than the
# deployment's (e.g. none, on a cluster), and then it should say so, not skip silently.
PARTIAL_HINT = (" (if the deployment runs them under other names or counts, pass its "
                "--config to the job)")


def add_options(parser: argparse.ArgumentParser) -> None:
    from zg_actors.chaos.run import DRAIN_TIMEOUT_S

    parser.add_argument("--seed", type=int, default=1,
                        help="fault schedule and data seed: the same seed gives the same "
                        "schedule on the same deployment (1)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds of load and faults; faults stop at 80%% of it (120)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="token transfers per second per network (20)")
    parser.add_argument("--settle", type=float, default=DRAIN_TIMEOUT_S,
                        help=f"seconds the txpools get to drain before the audit "
                        f"({DRAIN_TIMEOUT_S:.0f})")


def check_options(args: argparse.Namespace) -> None:
    """Refuse bad numbers before any cluster is contacted."""
    from zg_actors.chaos.schedule import check_duration
    from zg_actors.errors import InvalidInput

    check_duration(args.duration)
    if not 0 < args.rate < float("inf"):
        raise InvalidInput(f"--rate {args.rate}: transfers per second must be positive",
                           rate=args.rate)
    if not 0 <= args.settle < float("inf"):
        raise InvalidInput(f"--settle {args.settle}: seconds must be 0 or more",
                           settle=args.settle)


def partial_pillars(states: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """{pillar: its missing actors} for the pillars `stack.pillar_states` finds partial,
    which the run names in its progress and report."""
    return {pillar: state["missing"] for pillar, state in states.items()
            if state["state"] == "partial"}


def run_command(args: argparse.Namespace) -> int:
    """Run chaos where the args say; print the report; 1 if the audit found anything."""
    from zg_actors import stack
    from zg_actors.chaos.run import ChaosOptions, run_chaos
    from zg_actors.workload import Progress, embedded, session

    check_options(args)
    progress = Progress(getattr(args, "quiet", False))
    options = ChaosOptions(seed=args.seed, duration_s=args.duration, rate_tps=args.rate,
                           settle_s=args.settle)
    # A running deployment needs only its chain: the load and the faults cover the
    # pillars that are up.
    pillars = EMBEDDED_PILLARS if embedded(args) else ["chain"]
    with session(args, pillars, progress, EMBEDDED_CPUS) as config:
        partial = partial_pillars(stack.pillar_states(config))
        for pillar, missing in partial.items():
            progress.say(f"{pillar} is only partly up: {', '.join(missing)} not "
                         f"running{PARTIAL_HINT}")
        report = run_chaos(config, options, progress)
    report["pillars_partial"] = partial
    if args.json:
        print_json(report)
    else:
        print_report(report)
    return 0 if report["ok"] else 1


def print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    faults = Table(title=f"chaos, seed {report['seed']}, {report['duration_s']:.0f} s: "
                   "faults injected")
    for column in ("kind/action", "scheduled", "injected"):
        faults.add_column(column, justify="right" if column != "kind/action" else "left")
    for key in sorted(set(report["faults_scheduled"]) | set(report["faults_injected"])):
        faults.add_row(key, str(report["faults_scheduled"].get(key, 0)),
                       str(report["faults_injected"].get(key, 0)))
    console.print(faults)
    console.print(f"{report['faults_beyond_rule']} faults beyond a group's rule (phase 2); "
                  f"{report['faults_failed']} could not be applied")
    acks = Table(title="acknowledgements")
    for column in ("kind", "acknowledged", "lost", "duplicated", "unreadable"):
        acks.add_column(column, justify="right" if column != "kind" else "left")
    for kind, count in report["acknowledged"].items():
        acks.add_row(kind, str(count), str(report["lost"][kind]),
                     str(report["duplicated"][kind]), str(report["unreadable"][kind]))
    console.print(acks)
    checks = Table(title="invariants")
    checks.add_column("invariant")
    checks.add_column("holds")
    checks.add_column("detail")
    for name, finding in report["invariants"].items():
        checks.add_row(name, "[green]yes[/]" if finding["ok"] else "[red]NO[/]",
                       finding["detail"])
    console.print(checks)
    for name, load in report["load"].items():
        ops = next(iter(load.values()))
        console.print(f"load {name}: {ops} done, {load['errors']} errors while faults ran")
    for pillar, missing in report.get("pillars_partial", {}).items():
        console.print(f"[yellow]{pillar} only partly up[/]: {', '.join(missing)} not "
                      f"running{PARTIAL_HINT}")
    console.print("[green]audit: nothing lost[/]" if report["ok"] else
                  f"[red]audit: FAILED[/] {report['examples']}")


def cmd_chaos(args: argparse.Namespace) -> int:
    return run_command(args)


def register(sub: Any) -> None:
    chaos = add_command(sub, "chaos", cmd_chaos, "run a mixed load (transfers, uploads, "
                        "blobs, KV writes, EVM txs, inference) while injecting seeded faults "
                        "(kill and pause validators, storage miners, KV nodes, DA nodes, "
                        "compute providers: within each group's fault tolerance, then beyond "
                        "it and back), then audit that nothing acknowledged was lost; exit 1 "
                        "if anything was. Without --address (or RAY_ADDRESS) it brings the "
                        "stack up on an embedded Ray")
    chaos.add_argument("--address", metavar="A", help="Ray cluster address of a running "
                       "deployment (default: RAY_ADDRESS, else an embedded Ray)")
    chaos.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_options(chaos)
