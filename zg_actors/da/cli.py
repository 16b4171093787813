"""`zg da up|down|epoch|disperse|status|retrieve` and `zg bench da`: thin wrappers over
the DA deployment (zg_actors.da.deploy) and the gRPC gateway's client (zg_actors.rpc)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zg_actors import stack
from zg_actors.cli_common import (
    add_command,
    config_of,
    connect,
    console,
    emit,
    parse_hex,
    progress,
)
from zg_actors.config import Config
from zg_actors.errors import InvalidInput

if TYPE_CHECKING:
    from zg_actors.rpc.client import DisperserClient

# A gateway accepts connections within milliseconds once up; longer means it is not there.
GATEWAY_CONNECT_TIMEOUT_S = 5.0


def _disperser(args: argparse.Namespace, config: Config) -> DisperserClient:
    """A client of the gateway at --gateway (default: this host's); DA not up, naming the
    command that starts it, if no gateway answers there."""
    from zg_actors.rpc.client import DisperserClient

    address = args.gateway or f"127.0.0.1:{config.da.gateway_port}"
    client = DisperserClient(address)
    if not client.wait_ready(GATEWAY_CONNECT_TIMEOUT_S):
        client.close()
        raise stack.not_up("da", config.ray.namespace, f"no gRPC gateway answers at {address}")
    return client


def parse_byte_sizes(text: str) -> list[int]:
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


def cmd_da_up(args: argparse.Namespace) -> int:
    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    with progress(args) as bar:
        bar.add_task("registering DA signers, starting DA nodes, dispersers, gateway",
                     total=None)
        data = stack.up_da(config)
    emit(args, data, lambda: console.print(
        f"[green]DA is up[/]: {config.da.nodes} DA nodes, {config.da.dispersers} disperser(s), "
        f"gRPC Disperser service on {data['host']}:{data['port']}"))
    return 0


def cmd_da_down(args: argparse.Namespace) -> int:
    import ray

    from zg_actors.da.deploy import teardown_da
    from zg_actors.rpc.gateway import GATEWAY_NAME

    config = config_of(args)
    connect(args, config)
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
    from zg_actors.da.deploy import advance_epoch, find_da

    config = config_of(args)
    connect(args, config)
    stack.require("da", config)
    handles = find_da(config)
    with progress(args) as bar:
        bar.add_task("opening the next DA epoch", total=None)
        epoch = advance_epoch(handles["nodes"], handles["dispersers"])
    emit(args, {"epoch": epoch}, lambda: console.print(
        f"DA epoch [bold]{epoch}[/] is open: new tickets and quorums; new blobs use it"))
    return 0


def cmd_da_disperse(args: argparse.Namespace) -> int:
    from zg_actors.runtime import wait_for

    config = config_of(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror}", file=args.file) from exc
    with _disperser(args, config) as client:
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
    config, request_id = config_of(args), parse_hex(args.id, "ID")
    with _disperser(args, config) as client:
        info = client.get_blob_status(request_id)
    emit(args, info, lambda: console.print(
        f"{info['status']}: data root 0x{info['storage_root'].hex()}, epoch {info['epoch']}, "
        f"quorum {info['quorum_id']}, network {info['network_id']}, {info['size']:,} bytes"
        + (f" ({info['error']})" if info["error"] else "")))
    return 0


def cmd_da_retrieve(args: argparse.Namespace) -> int:
    config, request_id = config_of(args), parse_hex(args.id, "ID")
    with _disperser(args, config) as client:
        info = client.get_blob_status(request_id)
        data = client.retrieve_blob(info["storage_root"], info["epoch"], info["quorum_id"])
    Path(args.out).write_bytes(data)
    result = {"request_id": info["request_id"], "out": args.out, "size": len(data)}
    emit(args, result, lambda: console.print(f"wrote {len(data):,} bytes to {args.out}"))
    return 0


def cmd_bench_da(args: argparse.Namespace) -> int:
    from zg_actors.da.bench import run_da_bench

    # A full run takes about 20 minutes: progress goes to stderr even with --json (stdout
    # carries only the JSON report).
    report = run_da_bench(config_of(args), duration_s=args.duration, sizes=args.sizes,
                          backends=args.backend, console=console, table=not args.json)
    emit(args, report, lambda: None)
    return 0


def register(sub: Any, bench_sub: Any) -> None:
    """Add `zg bench da` to `bench_sub` and the `zg da ...` commands to `sub`."""
    bench_da = add_command(bench_sub, "da", cmd_bench_da, "sustained and whole-run MB/s and "
                           "latency of DA dispersal through the gateway for each blob size "
                           "and BLS backend, beside encode + roots of the same bytes in one "
                           "process (timed just before and after each run; about 20 min in "
                           "all)")
    bench_da.add_argument("--duration", type=float, default=80.0,
                          help="seconds of offered blobs per run, one run per backend and "
                          "size, each on a fresh deployment (80: the 128 MiB batches of "
                          "big blobs take up to 20 s to fill)")
    bench_da.add_argument("--sizes", type=parse_byte_sizes,
                          default=[128 * 1024, 2 << 20, 16 << 20],
                          help="comma-separated blob sizes, bytes or with KiB/MiB "
                          "(128KiB,2MiB,16MiB)")
    bench_da.add_argument("--backend", action="append", choices=["py_ecc", "milagro", "blspy"],
                          help="BLS backend to measure, repeatable (default: py_ecc and the "
                          "fastest installed one)")
    da = sub.add_parser("da", help="data availability: deploy, disperse, status, retrieve")
    da_sub = da.add_subparsers(dest="da_command", required=True)
    add_command(da_sub, "up", cmd_da_up, "register DA signers, start DA nodes, dispersers "
                "and the gRPC gateway in a running deployment", cluster=True)
    add_command(da_sub, "down", cmd_da_down, "remove DA actors and the gateway (data stays)",
                cluster=True)
    add_command(da_sub, "epoch", cmd_da_epoch, "open the next DA epoch (new seed, stakes, "
                "tickets, quorums) and move the dispersers to it", cluster=True)
    for name, func, help_text in (
            ("disperse", cmd_da_disperse, "disperse FILE as a blob through the gateway"),
            ("status", cmd_da_status, "status of a blob request"),
            ("retrieve", cmd_da_retrieve, "retrieve a blob and write it to OUT")):
        p = add_command(da_sub, name, func, help_text)
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
