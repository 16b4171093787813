"""`zg kv ...`: the KV layer's commands, thin wrappers over the KV client (reads through
the kv_* JSON-RPC, writes as tagged flow entries) and the KV node actors.

Streams are `0x` + 64 hex digits, or a name (its id is keccak-256 of the name's UTF-8
bytes). Keys and text values are UTF-8; a value `@FILE` is the file's bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zg_actors import stack
from zg_actors.cli_common import add_command, config_of, connect, console, emit, progress
from zg_actors.config import Config
from zg_actors.errors import InvalidInput
from zg_actors.storage.kv.encoding import ADDRESS_BYTES, parse_stream_id
from zg_actors.storage.kv.state import KeyValue

ROLES = ("admin", "writer", "special-writer")
LIST_LIMIT = 100  # `zg kv list` without --limit


def parse_account(text: str) -> bytes:
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise InvalidInput(f"account {text!r} is not hex", account=text) from None
    if len(raw) != ADDRESS_BYTES:
        raise InvalidInput(f"account {text!r} has {len(raw)} bytes, an address has "
                           f"{ADDRESS_BYTES}", account=text)
    return raw


def parse_value(text: str) -> bytes:
    """VALUE as UTF-8, or @FILE's bytes."""
    if not text.startswith("@"):
        return text.encode()
    try:
        return Path(text[1:]).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {text[1:]}: {exc.strerror}", file=text[1:]) from None


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "0x" + raw.hex()


def _pair(found: KeyValue) -> dict:
    return {"key": _text(found.key), "version": found.version, "value": _text(found.data),
            "size": len(found.data)}


# ---- wiring ----------------------------------------------------------------------------------
def _kv(args: argparse.Namespace) -> tuple[Config, Any]:
    """The config and a KvClient of the running KV layer (NotUp naming `zg kv up`)."""
    from zg_actors.storage.kv.actors import kv_rpc_url
    from zg_actors.storage.kv.client import KvClient

    config = config_of(args)
    connect(args, config)
    stack.require("kv", config)
    return config, KvClient(kv_rpc_url(config))


def _exec(args: argparse.Namespace, fill: Any) -> int:
    """Build one tx with `fill(batcher)`, upload it, wait for its result."""
    from zg_actors.storage.kv.actors import kv_network
    from zg_actors.storage.kv.client import Batcher
    from zg_actors.storage.sdk import StorageClient

    config, kv = _kv(args)
    batcher = Batcher(kv, StorageClient(config, start=False), kv_network(config),
                      args.version)
    fill(batcher)
    with progress(args) as bar:
        bar.add_task("uploading the KV tx and waiting for its result", total=None)
        receipt = batcher.exec(wait=not args.no_wait)
    emit(args, receipt, lambda: console.print(
        f"tx {receipt['tx_seq']}: {receipt['result'] or 'uploaded (result pending)'}"))
    return 0 if receipt["result"] in (None, "Commit") else 1


def cmd_kv_write(args: argparse.Namespace) -> int:
    stream, value = parse_stream_id(args.stream), parse_value(args.value)
    return _exec(args, lambda b: b.set(stream, args.key.encode(), value))


def _role_op(args: argparse.Namespace, action: str) -> Any:
    stream = parse_stream_id(args.stream)
    key = args.key.encode() if args.key is not None else None
    if args.role == "special-writer" and key is None:
        raise InvalidInput("the special-writer role is per key: give --key", role=args.role)
    if args.role == "admin" and action == "revoke":
        raise InvalidInput("an admin role cannot be revoked, only renounced", role=args.role)
    account = parse_account(args.account) if action != "renounce" else None

    def fill(batcher: Any) -> None:
        if args.role == "special-writer":
            getattr(batcher, f"{action}_special_writer_role")(stream, key, *(
                [account] if account else []))
        else:
            role = "admin" if args.role == "admin" else "writer"
            getattr(batcher, f"{action}_{role}_role")(stream, *([account] if account else []))
    return fill


def cmd_kv_grant(args: argparse.Namespace) -> int:
    return _exec(args, _role_op(args, "grant"))


def cmd_kv_revoke(args: argparse.Namespace) -> int:
    return _exec(args, _role_op(args, "revoke"))


def cmd_kv_renounce(args: argparse.Namespace) -> int:
    return _exec(args, _role_op(args, "renounce"))


def cmd_kv_read(args: argparse.Namespace) -> int:
    stream = parse_stream_id(args.stream)
    _, kv = _kv(args)
    found = kv.get_value(stream, args.key.encode(), args.version)
    data = {**_pair(found), "key": args.key, "stream": stream, "found": bool(found.data)}
    emit(args, data, lambda: console.print(
        f"{args.key} = {data['value']!r} (version {found.version})" if data["found"]
        else f"{args.key}: not set (or deleted)"))
    return 0


def cmd_kv_list(args: argparse.Namespace) -> int:
    stream = parse_stream_id(args.stream)
    _, kv = _kv(args)
    it = kv.iterator(stream, args.version)
    if args.start is None:
        it.seek_to_first()
    else:
        it.seek_after(args.start.encode())
    pairs = []
    while it.valid() and len(pairs) < args.limit:
        pairs.append(_pair(it.current))
        it.next()
    data = {"stream": stream, "version": it.version, "pairs": pairs, "more": it.valid()}

    def human() -> None:
        for p in pairs:
            console.print(f"{p['key']} = {p['value']!r} (version {p['version']})")
        console.print(f"{len(pairs)} keys at version {it.version}"
                      + (" (more: --from the last key)" if data["more"] else ""))
    emit(args, data, human)
    return 0


def cmd_kv_result(args: argparse.Namespace) -> int:
    _, kv = _kv(args)
    result = kv.transaction_result(args.tx_seq)
    emit(args, {"tx_seq": args.tx_seq, "result": result}, lambda: console.print(
        f"tx {args.tx_seq}: {result or 'no result (pending, or not a KV tx of these streams)'}"))
    return 0


def cmd_kv_status(args: argparse.Namespace) -> int:
    from zg_actors.storage.kv.actors import kv_rpc_url, kv_statuses

    config = config_of(args)
    connect(args, config)
    stack.require("kv", config)
    nodes = kv_statuses(config)
    data = {"rpc": kv_rpc_url(config), "nodes": nodes}

    def human() -> None:
        for n in nodes:
            if "down" in n:
                console.print(f"node {n['index']}: down ({n['down']})")
            else:
                console.print(f"node {n['index']}: applied {n['applied_seq']}, digest "
                              f"0x{n['digest'].hex()}"
                              + (f", waiting for entry {n['waiting_for']}"
                                 if n["waiting_for"] is not None else ""))
        console.print(f"kv_* JSON-RPC at {data['rpc']}")
    emit(args, data, human)
    return 0


def cmd_kv_up(args: argparse.Namespace) -> int:
    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    with progress(args) as bar:
        bar.add_task("starting KV nodes and the kv_* JSON-RPC", total=None)
        data = stack.up_kv(config)
    emit(args, data, lambda: console.print(
        f"[green]KV is up[/]: {data['nodes']} KV node(s), kv_* JSON-RPC at {data['rpc']}"))
    return 0


def cmd_kv_down(args: argparse.Namespace) -> int:
    from zg_actors.storage.kv.actors import stop_kv

    config = config_of(args)
    connect(args, config)
    removed = stop_kv(config)
    emit(args, {"removed": removed}, lambda: console.print(
        f"removed {', '.join(removed) or 'nothing'}; data stays under {config.data_dir}"))
    return 0


def cmd_bench_kv(args: argparse.Namespace) -> int:
    from zg_actors.storage.kv.bench import format_kv_bench, run_kv_bench
    from zg_actors.workload import Progress

    # Progress goes to stderr even with --json: stdout keeps only the report.
    report = run_kv_bench(config_of(args), duration_s=args.duration, progress=Progress())
    emit(args, report, lambda: console.print(format_kv_bench(report)))
    return 1 if report["errors"] else 0


def register(sub: Any, bench_sub: Any) -> None:
    """Add the `zg kv ...` commands to `sub` and `zg bench kv` to `bench_sub`."""
    kv = sub.add_parser("kv", help="KV layer: streams of keys on the log (docs/spec/kv.md)")
    kv_sub = kv.add_subparsers(dest="kv_command", required=True)
    stream_help = "stream: 0x + 64 hex digits, or a name (id = keccak-256 of the name)"
    add_command(kv_sub, "up", cmd_kv_up, "start the KV nodes and their kv_* JSON-RPC on Ray "
                "Serve in a running deployment (storage must be up)", cluster=True)
    add_command(kv_sub, "down", cmd_kv_down, "stop the KV nodes and the kv_* JSON-RPC (data "
                "stays)", cluster=True)
    add_command(kv_sub, "status", cmd_kv_status, "each KV node's replay progress and state "
                "digest (equal digests: equal states)", cluster=True)

    def tx_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--version", type=int, metavar="V", help="the version the tx read at "
                       "(default: the KV node's latest; 18446744073709551615 skips the "
                       "conflict check)")
        p.add_argument("--no-wait", action="store_true", help="return once the tx is "
                       "uploaded, without waiting for its result")

    write = add_command(kv_sub, "write", cmd_kv_write, "write KEY = VALUE (or @FILE's bytes) "
                        "in STREAM as one KV tx; exit 1 unless it commits", cluster=True)
    write.add_argument("stream", help=stream_help)
    write.add_argument("key", help="key (UTF-8)")
    write.add_argument("value", help="value (UTF-8), or @FILE; empty deletes the key")
    tx_options(write)
    for name, func, what in (("grant", cmd_kv_grant, "grant ROLE on STREAM to ACCOUNT"),
                             ("revoke", cmd_kv_revoke, "revoke ROLE on STREAM from ACCOUNT"),
                             ("renounce", cmd_kv_renounce, "give up one's own ROLE on STREAM")):
        p = add_command(kv_sub, name, func, f"{what} as one KV tx; exit 1 unless it commits",
                        cluster=True)
        p.add_argument("stream", help=stream_help)
        p.add_argument("role", choices=ROLES, help="admin, writer (of the stream) or "
                       "special-writer (of --key)")
        if name != "renounce":
            p.add_argument("account", help="account address (40 hex digits)")
        p.add_argument("--key", help="the key of a special-writer role (UTF-8)")
        tx_options(p)
    read = add_command(kv_sub, "read", cmd_kv_read, "read KEY of STREAM through the kv_* "
                       "JSON-RPC", cluster=True)
    read.add_argument("stream", help=stream_help)
    read.add_argument("key", help="key (UTF-8)")
    read.add_argument("--version", type=int, metavar="V", help="as of version V (a tx_seq; "
                      "default the latest)")
    listing = add_command(kv_sub, "list", cmd_kv_list, "keys and values of STREAM in key "
                          "order, at one version", cluster=True)
    listing.add_argument("stream", help=stream_help)
    listing.add_argument("--from", dest="start", metavar="KEY", help="start at the first "
                         "key >= KEY")
    listing.add_argument("--limit", type=int, default=LIST_LIMIT, metavar="N",
                         help=f"at most N keys ({LIST_LIMIT})")
    listing.add_argument("--version", type=int, metavar="V", help="as of version V "
                         "(default: the node's latest)")
    result = add_command(kv_sub, "result", cmd_kv_result, "the recorded result of KV tx "
                         "TX_SEQ (Commit, VersionConfliction, ...)", cluster=True)
    result.add_argument("tx_seq", type=int, help="the tx's flow sequence number")
    bench = add_command(bench_sub, "kv", cmd_bench_kv, "KV writes committed/s (many per flow "
                        "entry, one per entry), write-to-readable latency p50/p99 and "
                        "kv_getValue reads/s through the JSON-RPC, on an embedded Ray, each "
                        "beside the same puts and gets on one LMDB in this process; exit 1 "
                        "if any failed")
    bench.add_argument("--duration", type=float, default=20.0,
                       help="seconds of each of the three measurements (20)")
