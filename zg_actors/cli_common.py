"""What every `zg` command shares: its common options, the configuration, the connection to
the cluster, output (strict JSON with --json, rich on stderr otherwise) and error printing.

Each pillar's `<pillar>/cli.py` adds its commands with `register(...)`; zg_actors/cli.py
holds the top-level commands and builds the parser from them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from zg_actors.config import Config, load_config
from zg_actors.errors import InvalidInput, ZgError

console = Console(stderr=True)


def plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; strict parsers refuse Python's spelling
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


_report_stream: TextIO | None = None  # the real stdout while reports_only_on_stdout holds


@contextmanager
def reports_only_on_stdout(enabled: bool) -> Iterator[None]:
    """With --json, stdout carries the JSON document alone: while a command runs, anything
    else printed to stdout (Ray's log lines from workers and the raylet, which the driver
    prints there) goes to stderr; print_json still writes to the real stdout."""
    global _report_stream
    if not enabled or _report_stream is not None:
        yield
        return
    _report_stream, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout, _report_stream = _report_stream, None


def print_json(data: Any) -> None:
    """Strict JSON on stdout: the one way the CLI prints JSON."""
    print(json.dumps(plain(data), indent=2, default=str, allow_nan=False),
          file=_report_stream or sys.stdout)


def emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    """`data` as JSON with --json, else what `human` prints."""
    if args.json:
        print_json(data)
    else:
        human()


def print_error(args: argparse.Namespace, exc: ZgError) -> None:
    """A product error: its typed dict as JSON with --json, else one red line."""
    if getattr(args, "json", False):
        print_json(exc.to_dict())
    else:
        console.print(f"[red]error:[/] {exc}")


def progress(args: argparse.Namespace) -> Progress:
    """A transient progress display on stderr, off with --json."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, disable=args.json, transient=True)


def config_of(args: argparse.Namespace) -> Config:
    """The configuration named by --config (the embedded devnet.yaml without it)."""
    return load_config(getattr(args, "config", None))


def connect(args: argparse.Namespace, config: Config) -> None:
    """Join the Ray cluster at --address (default: the one this machine belongs to)."""
    from zg_actors.runtime import connect as connect_ray

    connect_ray(config, getattr(args, "address", None) or "auto")


def add_command(parent: Any, name: str, func: Callable[[argparse.Namespace], int],
                help_text: str, cluster: bool = False) -> argparse.ArgumentParser:
    """A `zg` subcommand under `parent` (a subparsers action) with the common options:
    --json and --config, and --address for commands that reach a cluster."""
    p = parent.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--config", metavar="F", help="deployment YAML (default: the "
                   "embedded devnet.yaml)")
    if cluster:
        p.add_argument("--address", metavar="A", help="Ray cluster address "
                       "(default: auto, the cluster this machine belongs to)")
    p.set_defaults(func=func)
    return p


def parse_hex(text: str, name: str) -> bytes:
    """Bytes typed as hex, with or without 0x ("0x" alone is empty)."""
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        return bytes.fromhex(digits)
    except ValueError as exc:
        raise InvalidInput(f"{name} {text!r} is not hex", value=text, **{name: text}) from exc
