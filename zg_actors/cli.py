"""The `zg` command: run a demo, deploy into a Ray cluster, manage networks, benchmark.

Every command takes --json (strict JSON on stdout: NaN and infinities are null);
human output goes through rich, with progress bars on long steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zg_actors.config import ZG, Config, load_config
from zg_actors.errors import InvalidInput, ZgError

console = Console(stderr=True)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; strict parsers refuse Python's spelling
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Strict JSON on stdout: the one way the CLI prints JSON."""
    print(json.dumps(_plain(data), indent=2, default=str, allow_nan=False))


def emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if args.json:
        print_json(data)
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


def cmd_bench_gpu(args: argparse.Namespace) -> int:
    from zg_actors.gpu_check import format_report, run_gpu_check

    result = run_gpu_check(args.payload_mib, args.tree_mib, cpu_only=args.cpu_only)
    emit(args, result, lambda: console.print(format_report(result), highlight=False,
                                             markup=False))
    return 1 if result.get("failures") else 0


# ---- data availability (zg_actors/da, rpc) ---------------------------------------------
def _gateway(args: argparse.Namespace, config: Config) -> str:
    return args.gateway or f"127.0.0.1:{config.da.gateway_port}"


def cmd_da_up(args: argparse.Namespace) -> int:
    from zg_actors.da.actors import deploy_da
    from zg_actors.rpc.gateway import deploy_gateway

    config = _config(args)
    _connect(args, config)
    with progress(args) as bar:
        bar.add_task("registering DA signers, starting DA nodes, dispersers, gateway",
                     total=None)
        deploy_da(config, detached=True)
        _, where = deploy_gateway(config, detached=True)
    data = {"nodes": config.da.nodes, "dispersers": config.da.dispersers, **where}
    emit(args, data, lambda: console.print(
        f"[green]DA is up[/]: {config.da.nodes} DA nodes, {config.da.dispersers} disperser(s), "
        f"gRPC Disperser service on {where['host']}:{where['port']}"))
    return 0


def cmd_da_down(args: argparse.Namespace) -> int:
    import ray

    from zg_actors.da.actors import teardown_da
    from zg_actors.rpc.gateway import GATEWAY_NAME

    config = _config(args)
    _connect(args, config)
    removed = teardown_da(config)
    try:
        ray.kill(ray.get_actor(GATEWAY_NAME), no_restart=True)
        removed.append(GATEWAY_NAME)
    except ValueError:
        pass
    emit(args, {"removed": removed}, lambda: console.print(
        f"removed {', '.join(removed) or 'nothing'}; DA data stays under {config.data_dir}"))
    return 0


def cmd_da_epoch(args: argparse.Namespace) -> int:
    from zg_actors.da.actors import advance_epoch, find_da

    config = _config(args)
    _connect(args, config)
    handles = find_da(config)
    with progress(args) as bar:
        bar.add_task("opening the next DA epoch", total=None)
        epoch = advance_epoch(config, handles["nodes"], handles["dispersers"])
    emit(args, {"epoch": epoch}, lambda: console.print(
        f"DA epoch [bold]{epoch}[/] is open: new tickets and quorums; new blobs use it"))
    return 0


def cmd_da_disperse(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zg_actors.rpc.client import DisperserClient
    from zg_actors.runtime import wait_for

    config = _config(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror}", file=args.file) from exc
    with DisperserClient(_gateway(args, config)) as client:
        status, request_id = client.disperse_blob(data)
        info = {"request_id": request_id, "status": status.name, "size": len(data)}
        if args.wait:
            with progress(args) as bar:
                bar.add_task("waiting for FINALIZED", total=None)
                wait_for(lambda: client.get_blob_status(request_id)["status"] in (
                    "FINALIZED", "FAILED", "INSUFFICIENT_SIGNATURES"), args.wait, 0.3)
            info = client.get_blob_status(request_id)
    emit(args, info, lambda: console.print(
        f"blob [bold]0x{request_id.hex()}[/] ({len(data):,} bytes): {info['status']}"))
    return 0


def cmd_da_status(args: argparse.Namespace) -> int:
    from zg_actors.rpc.client import DisperserClient

    config = _config(args)
    with DisperserClient(_gateway(args, config)) as client:
        info = client.get_blob_status(_hex_arg(args.id, "ID"))
    emit(args, info, lambda: console.print(
        f"{info['status']}: data root 0x{info['storage_root'].hex()}, epoch {info['epoch']}, "
        f"quorum {info['quorum_id']}, network {info['network_id']}, {info['size']:,} bytes"
        + (f" ({info['error']})" if info["error"] else "")))
    return 0


def cmd_da_retrieve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zg_actors.rpc.client import DisperserClient

    config = _config(args)
    with DisperserClient(_gateway(args, config)) as client:
        info = client.get_blob_status(_hex_arg(args.id, "ID"))
        data = client.retrieve_blob(info["storage_root"], info["epoch"], info["quorum_id"])
    Path(args.out).write_bytes(data)
    result = {"request_id": info["request_id"], "out": args.out, "size": len(data)}
    emit(args, result, lambda: console.print(f"wrote {len(data):,} bytes to {args.out}"))
    return 0


def _hex_arg(text: str, name: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as exc:
        raise InvalidInput(f"{name} {text!r} is not hex", value=text) from exc


def _byte_sizes(text: str) -> list[int]:
    """'128KiB,2MiB,16777216' -> [131072, 2097152, 16777216]."""
    units = {"kib": 1024, "mib": 1024 * 1024, "b": 1}
    sizes = []
    for part in text.split(","):
        raw = part.strip().lower()
        unit = next((u for u in units if raw.endswith(u) and raw[:-len(u)].isdigit()), "")
        number = raw[:-len(unit)] if unit else raw
        if not number.isdigit() or int(number) < 1:
            raise argparse.ArgumentTypeError(f"not a size: {part!r} (bytes, KiB or MiB)")
        sizes.append(int(number) * units.get(unit, 1))
    return sizes


def cmd_bench_da(args: argparse.Namespace) -> int:
    from zg_actors.da.bench import run_da_bench

    # A full run takes about 20 minutes: progress goes to stderr even with --json (stdout
    # carries only the JSON report).
    report = run_da_bench(_config(args), duration_s=args.duration, sizes=args.sizes,
                          backends=args.backend, console=console, table=not args.json)
    emit(args, report, lambda: None)
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
    command("down", cmd_down, "remove every zg actor of the namespace: C0, networks, relayer, "
            "storage miners, DA nodes and gateway, compute providers (data stays)",
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
    consensus.add_argument("--backend", action="append", choices=["py_ecc", "milagro", "blspy"],
                           help="BLS backend(s) to measure (default: every installed one)")
    codec = command("codec", cmd_bench_codec, "erasure-code encode/decode MB/s per backend "
                    "beside zfec and pyeclib", bench_sub)
    codec.add_argument("--backend", help="only this backend")
    gpu = command("gpu", cmd_bench_gpu, "the GPU paths on this machine's GPU: the cupy codec "
                  "checked against reference and numpy and timed (10+4 device-resident and "
                  "host to host), GPU sector-tree roots checked against the CPU's and timed "
                  "beside one CPU core; exit 1 if any result differs", bench_sub)
    gpu.add_argument("--payload-mib", type=int, default=256,
                     help="10+4 timing payload in MiB (256)")
    gpu.add_argument("--tree-mib", type=int, default=64, help="sector-tree timing MiB (64)")
    gpu.add_argument("--cpu-only", action="store_true",
                     help="only the CPU anchor (machines without a GPU)")
    bench_da = command("da", cmd_bench_da, "sustained and whole-run MB/s and latency of "
                       "DA dispersal through the gateway for each blob size and BLS "
                       "backend, beside encode + roots of the same bytes in one process "
                       "(timed just before and after each run; about 20 min in all)",
                       bench_sub)
    bench_da.add_argument("--duration", type=float, default=80.0,
                          help="seconds of offered blobs per run, one run per backend and "
                          "size, each on a fresh deployment (80: the 128 MiB batches of "
                          "big blobs take up to 20 s to fill)")
    bench_da.add_argument("--sizes", type=_byte_sizes, default=[128 * 1024, 2 << 20, 16 << 20],
                          help="comma-separated blob sizes, bytes or with KiB/MiB "
                          "(128KiB,2MiB,16MiB)")
    bench_da.add_argument("--backend", action="append", choices=["py_ecc", "milagro", "blspy"],
                          help="BLS backend to measure, repeatable (default: py_ecc and the "
                          "fastest installed one)")
    da = sub.add_parser("da", help="data availability: deploy, disperse, status, retrieve")
    da_sub = da.add_subparsers(dest="da_command", required=True)
    command("up", cmd_da_up, "register DA signers, start DA nodes, dispersers and the gRPC "
            "gateway in a running deployment", da_sub, cluster=True)
    command("down", cmd_da_down, "remove DA actors and the gateway (data stays)", da_sub,
            cluster=True)
    command("epoch", cmd_da_epoch, "open the next DA epoch (new seed, stakes, tickets, "
            "quorums) and move the dispersers to it", da_sub, cluster=True)
    for name, func, help_text in (
            ("disperse", cmd_da_disperse, "disperse FILE as a blob through the gateway"),
            ("status", cmd_da_status, "status of a blob request"),
            ("retrieve", cmd_da_retrieve, "retrieve a blob and write it to OUT")):
        p = command(name, func, help_text, da_sub)
        p.add_argument("--gateway", metavar="HOST:PORT",
                       help="gRPC gateway (default 127.0.0.1:da.gateway_port)")
        if name == "disperse":
            p.add_argument("file", help="file to disperse")
            p.add_argument("--wait", type=float, default=0.0, metavar="S",
                           help="wait up to S seconds for a final status")
        else:
            p.add_argument("id", help="request id (hex)")
        if name == "retrieve":
            p.add_argument("out", help="output file")
    from zg_actors.compute import cli as compute_cli

    compute = sub.add_parser("compute", help="0G Compute Network: services, accounts, "
                             "signed inference")
    compute_sub = compute.add_subparsers(dest="compute_command", required=True)
    command("up", compute_cli.cmd_compute_up, "start the provider actors (detached) and "
            "register their services on network 0", compute_sub, cluster=True).add_argument(
        "--providers", type=int, default=None, help="how many (default compute.providers)")
    command("services", compute_cli.cmd_compute_services, "list registered services with "
            "model and prices per token", compute_sub, cluster=True)
    compute_args: dict[str, list[tuple[str, dict]]] = {
        "deposit": [("amount", {"help": "tokens to move from the wallet to the main account"})],
        "fund": [("provider", {"help": "provider address or devnet provider index"}),
                 ("amount", {"help": "tokens to move from the main account to the provider"})],
        "retrieve": [("provider", {"help": "provider address or devnet provider index"})],
        "refund": [("amount", {"help": "tokens to return from the main account to the "
                               "wallet"})],
        "account": [],
        "infer": [("provider", {"help": "provider address or devnet provider index"}),
                  ("text", {"help": "the prompt"})]}
    compute_help = {
        "deposit": "wallet -> main compute account (the first deposit opens it)",
        "fund": "main account -> a provider's sub-account (pending refunds reused first)",
        "retrieve": "start taking a sub-account's unused funds back (unlocks after the lock)",
        "refund": "main account -> wallet, collecting unlocked refunds",
        "account": "main and sub-account balances and pending refunds, explained",
        "infer": "send a signed request; prints the answer, tokens and fee, checks the "
                 "provider's signature"}
    for name, positional in compute_args.items():
        p = command(name, getattr(compute_cli, f"cmd_compute_{name}"), compute_help[name],
                    compute_sub, cluster=True)
        for arg, options in positional:
            p.add_argument(arg, **options)
        p.add_argument("--user", type=int, default=0, help="devnet compute user index (0)")
        if name == "infer":
            p.add_argument("--max-tokens", type=int, default=16,
                           help="completion tokens at most, 1 or more (16); the signed fee "
                           "cap reserves them")
    bench_compute = command("compute", compute_cli.cmd_bench_compute, "inference requests "
                            "served and settled per second against the model alone in one "
                            "process; settlement txs per request", bench_sub)
    bench_compute.add_argument("--duration", type=float, default=20.0,
                               help="load seconds (20)")
    from zg_actors.storage import cli as storage_cli

    storage_cli.register(command, sub, bench_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZgError as exc:
        if getattr(args, "json", False):
            print_json(exc.to_dict())
        else:
            console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
