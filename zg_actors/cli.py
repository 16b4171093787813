"""The `zg` command: run a demo, deploy into a Ray cluster, manage networks, benchmark.

Every command takes --json (strict JSON on stdout: NaN and infinities are null);
human output goes through rich, with progress bars on long steps.
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml

from zg_actors import stack
from zg_actors.chain import cli as chain_cli
from zg_actors.chaos import cli as chaos_cli
from zg_actors.cli_common import (
    add_command,
    config_of,
    connect,
    console,
    emit,
    print_error,
    print_json,
    progress,
    reports_only_on_stdout,
)
from zg_actors.compute import cli as compute_cli
from zg_actors.config import Config
from zg_actors.da import cli as da_cli
from zg_actors.errors import InvalidInput, ZgError
from zg_actors.evm import cli as evm_cli
from zg_actors.storage import cli as storage_cli
from zg_actors.storage.kv import cli as kv_cli

__all__ = ["build_parser", "main", "print_json"]

WATCH_MIN_INTERVAL_S = 0.5  # a look asks every actor; more often would load the cluster


# ---- commands --------------------------------------------------------------------------
def cmd_config_show(args: argparse.Namespace) -> int:
    config = config_of(args)
    emit(args, config.to_dict(), lambda: print(yaml.safe_dump(config.to_dict(),
                                                              sort_keys=False), end=""))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    config = config_of(args)
    pillars = stack.parse_pillars(args.only, args.without)
    connect(args, config)
    with progress(args) as bar:
        task = bar.add_task("starting", total=None)
        started = stack.bring_up(config, pillars,
                                 lambda step: bar.update(task, description=step))
    chain = started.get("chain", {})
    data = {"namespace": config.ray.namespace, **chain, "pillars": pillars,
            "started": started}

    def human() -> None:
        for network_id, validators in chain.get("resumed", {}).items():
            console.print(f"resumed network {network_id} from its LMDB stores "
                          f"(restarted validators {validators})")
        if chain:
            networks = chain["existing_networks"] + [n["network_id"] for n in chain["launched"]]
            console.print(f"chain: networks {networks}")
            chain_cli.print_rpc(chain["rpc"])
        if "storage" in started:
            console.print(f"storage: {started['storage']['miners']} miners and the repairer")
        if "da" in started:
            da = started["da"]
            console.print(f"DA: {da['nodes']} DA nodes, {da['dispersers']} disperser(s), "
                          f"gRPC Disperser service on {da['host']}:{da['port']}")
        if "compute" in started:
            console.print(f"compute: {len(started['compute'])} provider(s) serving "
                          f"{', '.join(sorted({s['model'] for s in started['compute']}))}")
        console.print(f"[green]zg-actors is up[/] in namespace [bold]{config.ray.namespace}[/]: "
                      f"{', '.join(pillars)}")

    emit(args, data, human)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from zg_actors.evm.serve import stop_all_evm_rpc
    from zg_actors.runtime import teardown
    from zg_actors.storage.kv.actors import stop_kv_rpc

    config = config_of(args)
    connect(args, config)
    removed = teardown() + stop_kv_rpc() + stop_all_evm_rpc()
    emit(args, {"removed": removed}, lambda: console.print(
        f"removed {', '.join(removed) or 'nothing'}; data stays under {config.data_dir}"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from zg_actors import glance

    if args.interval < 0:
        raise InvalidInput(f"--interval {args.interval}: seconds must be >= 0",
                           interval=args.interval)
    config = config_of(args)
    connect(args, config)
    data = glance.look(config)
    if args.watch:
        return _watch_status(args, config, data)
    if args.interval:
        time.sleep(args.interval)
        before, data = data, glance.look(config)
        data["rates"] = glance.rates(before, data)
    emit(args, data, lambda: console.print(glance.render(data, data.get("rates"))))
    return 0


def _watch_status(args: argparse.Namespace, config: Config, before: dict) -> int:
    """Redraw the status in place (with --json: print it) every --interval seconds, with
    rates since the look before, until Ctrl-C."""
    from rich.live import Live

    from zg_actors import glance

    live = None if args.json else Live(glance.render(before), console=console,
                                       auto_refresh=False)
    try:
        if live is not None:
            live.start(refresh=True)
        while True:
            time.sleep(max(args.interval, WATCH_MIN_INTERVAL_S))
            now = glance.look(config)
            now["rates"] = glance.rates(before, now)
            before = now
            if live is None:
                print_json(now)
            else:
                live.update(glance.render(now, now["rates"]), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        if live is not None:
            live.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    from zg_actors.demo import run_demo

    report = run_demo(config_of(args), duration_s=args.duration, rate_tps=args.rate,
                      quiet=args.json, console=console)
    emit(args, report, lambda: None)
    return 0 if report["ok"] else 1


def cmd_bench_consensus(args: argparse.Namespace) -> int:
    from zg_actors.bench import run_consensus_bench

    report = run_consensus_bench(config_of(args), duration_s=args.duration, quiet=args.json,
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


# ---- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zg", description="zg-actors: the 0G decentralized AI operating system as Ray "
        "actors (shared staking, BFT consensus networks scaled live).")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = add_command(sub, "demo", cmd_demo, "start an embedded local Ray, deploy staking and "
                       "a 4-validator network, drive a token-transfer load, launch and retire "
                       "a second network live, print a report")
    demo.add_argument("--duration", type=float, default=20.0, help="load seconds (20)")
    demo.add_argument("--rate", type=float, default=400.0,
                      help="offered tx/s per network (400)")
    up = add_command(sub, "up", cmd_up, "deploy the whole stack as detached named actors into "
                     "a running Ray cluster (namespace from config, default zg): the chain "
                     "(staking, networks, relayer, each network's Ethereum JSON-RPC), storage "
                     "miners and repairer, KV nodes and the kv_* JSON-RPC, DA nodes, "
                     "dispersers and gRPC gateway, compute providers; each resumes from its "
                     "data under data_dir", cluster=True)
    choose = up.add_mutually_exclusive_group()
    choose.add_argument("--only", metavar="P,...", help="start only these pillars "
                        f"({','.join(stack.PILLARS)}); without chain it must be up already")
    choose.add_argument("--without", metavar="P,...", help="start every pillar but these")
    add_command(sub, "down", cmd_down, "remove every zg actor of the namespace: C0, networks, "
                "relayer, JSON-RPC apps, storage miners, KV nodes, DA nodes and gateway, "
                "compute providers (data stays)", cluster=True)
    status = add_command(sub, "status", cmd_status, "every pillar up, partial or down "
                         "(actors running of those the config names) with its live figures: "
                         "per network height and tx/s, C0 supply and invariants; files, bytes "
                         "stored and shards per miner; DA epoch, blobs per status and "
                         "certified MB/s; requests/s and unsettled fees per provider; the "
                         "gRPC endpoint", cluster=True)
    status.add_argument("--interval", type=float, default=1.0, help="seconds between the two "
                        "looks that rates come from, and between redraws with --watch (1; "
                        "0: one look, no rates)")
    status.add_argument("--watch", action="store_true", help="redraw in place every "
                        "--interval seconds (at least 0.5) until Ctrl-C; with --json, print "
                        "each look")
    chain_cli.register(sub)
    chaos_cli.register(sub)
    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    add_command(config_sub, "show", cmd_config_show, "print the effective configuration")
    bench = sub.add_parser("bench", help="benchmarks (figures beside their anchors)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    consensus = add_command(bench_sub, "consensus", cmd_bench_consensus, "committed tx/s and "
                            "commit latency with 4 validators per BLS backend, against the "
                            "single-process state machine; capacity with 1, 2, 3 networks")
    consensus.add_argument("--duration", type=float, default=12.0,
                           help="load seconds per measurement (12)")
    consensus.add_argument("--backend", action="append", choices=["py_ecc", "milagro", "blspy"],
                           help="BLS backend(s) to measure (default: every installed one)")
    codec = add_command(bench_sub, "codec", cmd_bench_codec, "erasure-code encode/decode MB/s "
                        "per backend beside zfec and pyeclib")
    codec.add_argument("--backend", help="only this backend")
    gpu = add_command(bench_sub, "gpu", cmd_bench_gpu, "the GPU paths on this machine's GPU: "
                      "the cupy codec checked against reference and numpy and timed (10+4 "
                      "device-resident and host to host), GPU sector-tree roots checked "
                      "against the CPU's and timed beside one CPU core; exit 1 if any result "
                      "differs")
    gpu.add_argument("--payload-mib", type=int, default=256,
                     help="10+4 timing payload in MiB (256)")
    gpu.add_argument("--tree-mib", type=int, default=64, help="sector-tree timing MiB (64)")
    gpu.add_argument("--cpu-only", action="store_true",
                     help="only the CPU anchor (machines without a GPU)")
    for pillar in (evm_cli, da_cli, compute_cli, storage_cli, kv_cli):
        pillar.register(sub, bench_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with reports_only_on_stdout(getattr(args, "json", False)):
        try:
            return args.func(args)
        except ZgError as exc:
            print_error(args, exc)
            return 2
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
