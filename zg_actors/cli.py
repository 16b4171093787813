"""The `zg` command: run a demo, deploy into a Ray cluster, manage networks, benchmark.

Every command takes --json (machine-readable output on stdout); human output
goes through rich, with progress bars on long steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zg_actors.config import ZG, Config, load_config
from zg_actors.errors import ZgError

console = Console(stderr=True)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(_plain(data), indent=2, default=str))
    else:
        human()


def progress(args: argparse.Namespace) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, disable=args.json, transient=True)


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def _connect(args: argparse.Namespace, config: Config) -> None:
    from zg_actors.runtime import connect

    connect(config, getattr(args, "address", None) or "auto")


# ---- commands --------------------------------------------------------------------------
def cmd_config_show(args: argparse.Namespace) -> int:
    config = _config(args)
    emit(args, config.to_dict(), lambda: print(yaml.safe_dump(config.to_dict(),
                                                              sort_keys=False), end=""))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, connect, deploy

    config = _config(args)
    connect(config, args.address or "auto")
    with progress(args) as bar:
        task = bar.add_task("deploying staking, network manager, relayer", total=None)
        deployment = deploy(config, detached=True)
        existing = call(deployment.manager.active_networks.remote())
        launched = []
        for i in range(max(0, config.networks.initial - len(existing))):
            bar.update(task, description=f"launching network {i + 1}/{config.networks.initial}")
            launched.append(call(deployment.manager.launch_network.remote(), timeout=300))
    data = {"namespace": config.ray.namespace, "existing_networks": existing,
            "resumed": deployment.resumed, "launched": launched}

    def human() -> None:
        for network_id, validators in deployment.resumed.items():
            console.print(f"resumed network {network_id} from its LMDB stores "
                          f"(restarted validators {validators})")
        console.print(f"[green]zg-actors is up[/] in namespace [bold]{config.ray.namespace}[/]: "
                      f"networks {existing + [n['network_id'] for n in launched]}")

    emit(args, data, human)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from zg_actors.runtime import teardown

    config = _config(args)
    _connect(args, config)
    removed = teardown()
    emit(args, {"removed": removed}, lambda: console.print(
        f"removed {', '.join(removed) or 'nothing'}; data stays under {config.data_dir}"))
    return 0


def _print_networks(networks: list[dict]) -> None:
    table = Table(title="consensus networks")
    for column in ("id", "status", "height", "mempool", "validators", "voting power"):
        table.add_column(column)
    for n in networks:
        validators = n.get("validators") or []
        table.add_row(str(n["network_id"]), n["status"], str(n.get("height", "-")),
                      str(n.get("mempool", "-")), str(len(validators) or len(n["members"])),
                      ", ".join(str(v["power"]) for v in validators) or "-")
    console.print(table)


def cmd_status(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, find_deployment

    config = _config(args)
    _connect(args, config)
    d = find_deployment()
    networks = call(d.manager.list_networks.remote())
    supply = call(d.staking.supply_report.remote())
    relayer = call(d.relayer.status.remote())
    data = {"networks": networks, "staking": supply, "relayer": relayer}

    def human() -> None:
        _print_networks(networks)
        console.print(f"C0 tick {supply['tick']}: ZG supply {supply['supply'] / ZG:,.2f}, "
                      f"staked {supply['total_staked'] / ZG:,.0f}, bridge mints "
                      f"{supply['bridge_mints']}, slashings {supply['slashings']}, "
                      f"invariants {'ok' if supply['invariants_ok'] else supply['problems']}")

    emit(args, data, human)
    return 0


def cmd_network_list(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, find_deployment

    _connect(args, _config(args))
    networks = call(find_deployment().manager.list_networks.remote())
    emit(args, networks, lambda: _print_networks(networks))
    return 0


def cmd_network_add(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, find_deployment

    _connect(args, _config(args))
    with progress(args) as bar:
        bar.add_task("launching a consensus network", total=None)
        info = call(find_deployment().manager.launch_network.remote(args.validators), 300)
    emit(args, info, lambda: console.print(
        f"[green]network {info['network_id']}[/] is up with validators {info['members']}"))
    return 0


def cmd_network_remove(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, find_deployment

    _connect(args, _config(args))
    with progress(args) as bar:
        bar.add_task(f"retiring network {args.id} (draining its mempool)", total=None)
        info = call(find_deployment().manager.retire_network.remote(args.id), 120)
    emit(args, info, lambda: console.print(
        f"network {args.id} retired at height {info.get('final_height')}; its data stays"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zg_actors.demo import run_demo

    report = run_demo(_config(args), duration_s=args.duration, rate_tps=args.rate,
                      quiet=args.json, console=console)
    emit(args, report, lambda: None)
    return 0 if report["ok"] else 1


def cmd_bench_consensus(args: argparse.Namespace) -> int:
    from zg_actors.bench import run_consensus_bench

    report = run_consensus_bench(_config(args), duration_s=args.duration, quiet=args.json,
                                 console=console, backends=args.backend)
    emit(args, report, lambda: None)
    return 0


def cmd_bench_codec(args: argparse.Namespace) -> int:
    from zg_actors.erasure.bench import format_codec_bench, run_codec_bench

    result = run_codec_bench(backends=[args.backend] if args.backend else None)
    emit(args, result, lambda: console.print(format_codec_bench(result)))
    return 0


# ---- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zg", description="zg-actors: the 0G decentralized AI operating system as Ray "
        "actors (shared staking, BFT consensus networks scaled live).")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable, help_text: str, parent: Any = sub,
                cluster: bool = False) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--config", metavar="F", help="deployment YAML (default: the "
                       "embedded devnet.yaml)")
        if cluster:
            p.add_argument("--address", metavar="A", help="Ray cluster address "
                           "(default: auto, the cluster this machine belongs to)")
        p.set_defaults(func=func)
        return p

    demo = command("demo", cmd_demo, "start an embedded local Ray, deploy staking and a "
                   "4-validator network, drive a token-transfer load, launch and retire a "
                   "second network live, print a report")
    demo.add_argument("--duration", type=float, default=20.0, help="load seconds (20)")
    demo.add_argument("--rate", type=float, default=400.0,
                      help="offered tx/s per network (400)")
    command("up", cmd_up, "deploy detached named actors into a running Ray cluster "
            "(namespace from config, default zg)", cluster=True)
    command("down", cmd_down, "remove every zg actor from the cluster (data stays)",
            cluster=True)
    command("status", cmd_status, "networks, heights, C0 supply and invariants",
            cluster=True)
    network = sub.add_parser("network", help="list, add or remove consensus networks live")
    network_sub = network.add_subparsers(dest="network_command", required=True)
    command("list", cmd_network_list, "list consensus networks", network_sub, cluster=True)
    add = command("add", cmd_network_add, "launch a consensus network while the others run",
                  network_sub, cluster=True)
    add.add_argument("--validators", type=int, default=None,
                     help="validators (default networks.validators_per_network)")
    remove = command("remove", cmd_network_remove, "retire a network: stop routing, drain, "
                     "stop its validators", network_sub, cluster=True)
    remove.add_argument("id", type=int, help="network id")
    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    command("show", cmd_config_show, "print the effective configuration", config_sub)
    bench = sub.add_parser("bench", help="benchmarks (figures beside their anchors)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    consensus = command("consensus", cmd_bench_consensus, "committed tx/s and commit latency "
                        "with 4 validators per BLS backend, against the single-process state "
                        "machine; capacity with 1, 2, 3 networks", bench_sub)
    consensus.add_argument("--duration", type=float, default=12.0,
                           help="load seconds per measurement (12)")
    consensus.add_argument("--backend", action="append", choices=["py_ecc", "milagro"],
                           help="BLS backend(s) to measure (default: every installed one)")
    codec = command("codec", cmd_bench_codec, "erasure-code encode/decode MB/s per backend "
                    "beside zfec and pyeclib", bench_sub)
    codec.add_argument("--backend", help="only this backend")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZgError as exc:
        if getattr(args, "json", False):
            print(json.dumps(exc.to_dict(), indent=2))
        else:
            console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
