"""`zg file-root`, `zg upload`, `zg download`, `zg file-info`, `zg bench storage`:
thin wrappers over the pure core and the SDK. Output goes through zg_actors.cli_common.emit()."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from zg_actors import stack
from zg_actors.cli_common import add_command, config_of, connect, console, emit, parse_hex
from zg_actors.errors import InvalidInput
from zg_actors.storage.constants import STATUS_FINALIZED


def parse_root(text: str) -> bytes:
    """A file root as typed: 64 hex digits, with or without 0x."""
    root = parse_hex(text, "root")
    if len(root) != 32:
        raise InvalidInput(f"root {text!r} has {len(root)} bytes, a file root has 32",
                           root=text)
    return root


def parse_roots(text: str) -> list[bytes]:
    """One root, or the comma-separated fragment roots of a split file (0G's --roots)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise InvalidInput(f"roots {text!r} have an empty item", root=text)
    return [parse_root(part) for part in parts]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", file=path) from exc


def check_writable(path: str) -> None:
    """InvalidInput unless `path` can be written as a file: checked before a download, so a
    bad path costs nothing and changes nothing."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a directory", out=path)
    if not folder.is_dir():
        raise InvalidInput(f"cannot write {path}: directory {folder} does not exist", out=path)
    writable = os.access(target, os.W_OK) if target.exists() else \
        os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise InvalidInput(f"cannot write {path}: permission denied", out=path)


def _bar(args: argparse.Namespace) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=console, disable=args.json, transient=True)


def _client(args: argparse.Namespace, start: bool = True) -> Any:
    """The SDK client; with `start`, the miners and the repairer are started (or found)."""
    from zg_actors.storage.sdk import StorageClient

    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    # On a cluster the miners outlive this command, like the other zg actors.
    return StorageClient(config, start=start, detached=True)


def cmd_file_root(args: argparse.Namespace) -> int:
    from zg_actors.storage.file import file_tree

    data = _read(args.file)
    tree = file_tree(data)
    result = {"file": args.file, "root": tree.root, "size": tree.size,
              "padded_size": tree.padded_size, "segments": tree.segments,
              "nodes": [{"root": r, "height": h} for r, h in tree.nodes]}
    emit(args, result, lambda: print("0x" + tree.root.hex()))
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    data = _read(args.file)
    tags = parse_hex(args.tags, "tags")
    client = _client(args)
    with _bar(args) as bar:
        task = bar.add_task(f"uploading {args.file}", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        receipt = client.upload(data, args.network, on_progress=step,
                                wait=not args.no_wait, tags=tags)
    mb_s = receipt["size"] / 1e6 / max(receipt["seconds"], 1e-9)

    def human() -> None:
        colour = "green" if receipt["status"] == STATUS_FINALIZED else "yellow"
        console.print(f"root [bold]0x{receipt['root'].hex()}[/]  tx_seq {receipt['tx_seq']}  "
                      f"network {receipt['network_id']}  {receipt['size']:,} bytes, "
                      f"{receipt['segments']} segments in {receipt['seconds']:.2f} s "
                      f"({mb_s:.1f} MB/s), [{colour}]{receipt['status']}[/]")
        if receipt["status"] != STATUS_FINALIZED:
            console.print("not every shard is held and confirmed yet: follow it with "
                          "`zg file-info ROOT`")
        if len(receipt["roots"]) > 1:
            joined = ",".join("0x" + root.hex() for root in receipt["roots"])
            console.print(f"file uploaded in {len(receipt['roots'])} fragments (over "
                          f"storage.max_entry_bytes), roots = {joined}")
            console.print("download it with: zg download ROOT1,ROOT2,... OUT")

    emit(args, {**receipt, "mb_per_s": mb_s}, human)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    import time

    roots = parse_roots(args.root)
    check_writable(args.out)
    client = _client(args, start=False)
    for root in roots:  # an unknown root fails here (UnknownFile), before any miner starts
        client.file_info(root)
    client.start()
    started = time.time()
    with _bar(args) as bar:
        task = bar.add_task("downloading", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if len(roots) == 1:
            data = client.download(roots[0], on_progress=step)
        else:
            data = client.download_fragments(roots, on_progress=step)
    seconds = time.time() - started
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:  # it changed since check_writable
        raise InvalidInput(f"cannot write {args.out}: {exc.strerror}", out=args.out) from exc
    result = {"root": roots[0], "roots": roots, "out": args.out, "size": len(data),
              "seconds": seconds, "verified": True}
    emit(args, result, lambda: console.print(
        f"wrote {len(data):,} bytes to {args.out}; every segment proof and the file root "
        f"verified ({seconds:.2f} s)"))
    return 0


def cmd_file_info(args: argparse.Namespace) -> int:
    roots = parse_roots(args.root)
    client = _client(args, start=False)  # the chain answers; no miner is needed
    if len(roots) > 1:
        info = client.fragments_info(roots)
        colour = "green" if info["status"] == STATUS_FINALIZED else "yellow"
        emit(args, info, lambda: console.print(
            f"{info['entries']} fragments: {info['size']:,} bytes, {info['segments']} "
            f"segments, [{colour}]{info['status']}[/] (tx_seqs "
            f"{[f['tx_seq'] for f in info['fragments']]})"))
        return 0
    root = roots[0]
    info = client.file_info(root)
    colour = "green" if info["status"] == STATUS_FINALIZED else "yellow"
    emit(args, info, lambda: console.print(
        f"0x{root.hex()}: {info['size']:,} bytes, {info['entries']} entry (tx_seq "
        f"{info['tx_seq']} on network {info['network_id']}), {info['segments']} segments, "
        f"[{colour}]{info['status']}[/] (miners confirmed: {info['confirmed_by']})"))
    return 0


def cmd_bench_storage(args: argparse.Namespace) -> int:
    from zg_actors.storage.bench import format_storage_bench, run_storage_bench

    result = run_storage_bench(config_of(args), size_mb=args.size_mb, quiet=args.json,
                               console=console)
    emit(args, result, lambda: console.print(format_storage_bench(result)))
    return 0


def register(sub: Any, bench_sub: Any) -> None:
    """Add the storage commands to `sub` and `zg bench storage` to `bench_sub`."""
    file_root = add_command(sub, "file-root", cmd_file_root, "print the 0G file root of FILE "
                            "(no cluster needed)")
    file_root.add_argument("file")
    upload = add_command(sub, "upload", cmd_upload, "submit FILE to the flow and store its "
                         "segments on the miners; returns once the file is FINALIZED (every "
                         "shard held and confirmed), sending again to restarted miners for up "
                         "to storage.upload_deadline_s, then fails naming the segments and "
                         "miners missing; prints root, tx sequence, network and status. A "
                         "file over storage.max_entry_bytes is split, like 0G's client, into "
                         "fragments of the largest power of two <= that limit, each its own "
                         "flow entry; the output then lists every fragment root in order "
                         "(`roots`)", cluster=True)
    upload.add_argument("file")
    upload.add_argument("--network", type=int, default=None,
                        help="consensus network id (default: the first active one)")
    upload.add_argument("--no-wait", action="store_true",
                        help="send every shard once and return: status UPLOADING (with the "
                        "shards not acknowledged) unless already FINALIZED")
    upload.add_argument("--tags", default="", metavar="HEX",
                        help="the submission's tags (0G's Submission.tags, "
                        "e.g. a KV tx's STREAM tag), on every fragment's entry; a tagged "
                        "upload always submits a new entry (default: none)")
    download = add_command(sub, "download", cmd_download, "fetch a file by root into OUT, "
                           "verifying every segment proof and the file root (OUT and the root "
                           "are checked first: nothing is fetched for a path that cannot be "
                           "written or a root no network has); for a file uploaded in "
                           "fragments give ROOT as the comma-separated fragment roots that "
                           "upload printed (like 0G's --roots): they are fetched, verified and "
                           "joined in order", cluster=True)
    download.add_argument("root", metavar="ROOT",
                          help="file root, or ROOT1,ROOT2,... for a split file")
    download.add_argument("out", metavar="OUT", help="file to write (its directory must exist)")
    info = add_command(sub, "file-info", cmd_file_info, "size, entries and status (UPLOADING "
                       "or FINALIZED) of a file root, or of a split file given as "
                       "ROOT1,ROOT2,... (FINALIZED once every fragment is)", cluster=True)
    info.add_argument("root", metavar="ROOT",
                      help="file root, or ROOT1,ROOT2,... for a split file")
    bench = add_command(bench_sub, "storage", cmd_bench_storage, "upload/download MB/s "
                        "against the single-process file root + erasure encoding (medians of "
                        "three files); PoRA iterations/s")
    bench.add_argument("--size-mb", type=float, default=32.0,
                       help="file size in MB (32; a small file's time is mostly the one "
                       "chain commit of its submission)")
