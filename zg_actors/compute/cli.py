"""`zg compute ...` and `zg bench compute`: thin wrappers over the SDK.

`register` adds them to the `zg` parser; output goes through zg_actors.cli_common.emit().
Each command parses its arguments before it connects to the cluster: bad input fails at
once and changes nothing.
"""

from __future__ import annotations

import argparse
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from rich.table import Table

from zg_actors import stack
from zg_actors.cli_common import add_command, config_of, connect, console, emit
from zg_actors.compute.params import AMOUNT_MAX, as_tokens
from zg_actors.config import ZG
from zg_actors.errors import InvalidInput

# Amounts are converted exactly: 100 digits hold any amount up to AMOUNT_MAX (78 digits)
# with 18 decimals, and a product that would lose a digit is refused, never rounded.
_EXACT = Context(prec=100, traps=[Inexact])
_TOKENS_MAX = _EXACT.divide(Decimal(AMOUNT_MAX), ZG)


def parse_amount(text: str) -> int:
    """Tokens as typed by people ("1.5") -> base units (18 decimals), exactly."""
    try:
        tokens = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"amount {text!r} is not a number of tokens", amount=text) from exc
    if not tokens.is_finite():
        raise InvalidInput(f"amount {text!r} is not a number of tokens", amount=text)
    if tokens > _TOKENS_MAX:
        raise InvalidInput(f"amount {text!r} is above the largest amount, "
                           f"{as_tokens(AMOUNT_MAX)} tokens", amount=text, maximum=AMOUNT_MAX)
    try:
        value = _EXACT.multiply(tokens, ZG)
    except Inexact:  # digits beyond the 18th decimal
        value = None
    if value is None or value <= 0 or value != value.to_integral_value():
        raise InvalidInput(f"amount {text!r} must be positive with at most 18 decimals",
                           amount=text)
    return int(value)


def _client(args: argparse.Namespace, needs_providers: bool = False) -> Any:
    from zg_actors.compute.accounts import user_account
    from zg_actors.compute.sdk import ComputeClient

    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    if needs_providers:
        stack.require("compute", config)
    if not 0 <= args.user < config.compute.users:
        raise InvalidInput(f"--user {args.user}: devnet compute users are 0.."
                           f"{config.compute.users - 1}", user=args.user)
    return ComputeClient(user_account(config.devnet.key_seed, args.user))


def _provider(args: argparse.Namespace) -> bytes:
    from zg_actors.compute.sdk import resolve_provider

    return resolve_provider(args.provider, config_of(args).devnet.key_seed)


def _print_account(data: dict) -> None:
    for line in data["explanation"]:
        console.print(line)


def cmd_compute_up(args: argparse.Namespace) -> int:
    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    statuses = stack.up_compute(config, args.providers)
    emit(args, statuses, lambda: [console.print(
        f"provider {s['index']} [bold]{s['endpoint']}[/] serves {s['model']} as "
        f"0x{s['address'].hex()} ({s['recovered_receipts']} receipts recovered)")
        for s in statuses])
    return 0


def cmd_compute_services(args: argparse.Namespace) -> int:
    from zg_actors.compute.sdk import ServingChain, tokens

    config = config_of(args)
    connect(args, config)
    stack.require("chain", config)
    services = ServingChain().query("services")

    def human() -> None:
        table = Table(title="compute services on network 0")
        for column in ("provider", "model", "endpoint", "input / token", "output / token",
                       "verifiability", "stake"):
            table.add_column(column)
        for s in services:
            table.add_row("0x" + s["provider"].hex(), s["model"], s["endpoint"],
                          tokens(s["input_price"]), tokens(s["output_price"]),
                          s["verifiability"], tokens(s["stake"]))
        console.print(table)

    emit(args, services, human)
    return 0


def cmd_compute_deposit(args: argparse.Namespace) -> int:
    amount = parse_amount(args.amount)
    data = _client(args).deposit(amount)
    emit(args, data, lambda: _print_account(data))
    return 0


def cmd_compute_fund(args: argparse.Namespace) -> int:
    provider, amount = _provider(args), parse_amount(args.amount)
    data = _client(args).fund(provider, amount)
    emit(args, data, lambda: _print_account(data))
    return 0


def cmd_compute_retrieve(args: argparse.Namespace) -> int:
    data = _client(args).retrieve(_provider(args))
    emit(args, data, lambda: _print_account(data))
    return 0


def cmd_compute_refund(args: argparse.Namespace) -> int:
    amount = parse_amount(args.amount)
    data = _client(args).refund(amount)
    emit(args, data, lambda: _print_account(data))
    return 0


def cmd_compute_account(args: argparse.Namespace) -> int:
    data = _client(args).account_state()
    emit(args, data, lambda: _print_account(data))
    return 0


def cmd_compute_infer(args: argparse.Namespace) -> int:
    from zg_actors.compute.request import check_max_tokens
    from zg_actors.compute.sdk import tokens

    provider = _provider(args)
    max_tokens = (config_of(args).compute.max_tokens if args.max_tokens is None
                  else args.max_tokens)
    check_max_tokens(max_tokens)
    data = _client(args, needs_providers=True).infer(provider, args.text, max_tokens)

    def human() -> None:
        console.print(data["output"])
        console.print(f"[dim]{data['model']}: {data['prompt_tokens']} prompt + "
                      f"{data['completion_tokens']} completion tokens, fee "
                      f"{tokens(data['fee'])} tokens (signed cap {tokens(data['max_fee'])}); "
                      f"provider signature checked[/]")

    emit(args, {k: v for k, v in data.items() if k != "receipt"}, human)
    return 0


def cmd_bench_compute(args: argparse.Namespace) -> int:
    from zg_actors.compute.bench import run_compute_bench

    report = run_compute_bench(config_of(args), duration_s=args.duration, quiet=args.json,
                               console=console)
    emit(args, report, lambda: None)
    return 0


_PROVIDER_HELP = "provider address or devnet provider index"
_ARGUMENTS: dict[str, list[tuple[str, dict]]] = {
    "deposit": [("amount", {"help": "tokens to move from the wallet to the main account"})],
    "fund": [("provider", {"help": _PROVIDER_HELP}),
             ("amount", {"help": "tokens to move from the main account to the provider"})],
    "retrieve": [("provider", {"help": _PROVIDER_HELP})],
    "refund": [("amount", {"help": "tokens to return from the main account to the wallet"})],
    "account": [],
    "infer": [("provider", {"help": _PROVIDER_HELP}), ("text", {"help": "the prompt"})]}
_HELP = {
    "deposit": "wallet -> main compute account (the first deposit opens it)",
    "fund": "main account -> a provider's sub-account (pending refunds reused first)",
    "retrieve": "start taking a sub-account's unused funds back (unlocks after the lock)",
    "refund": "main account -> wallet, collecting unlocked refunds",
    "account": "main and sub-account balances and pending refunds, explained",
    "infer": "send a signed request; prints the answer, tokens and fee, checks the "
             "provider's signature"}
_COMMANDS = {"deposit": cmd_compute_deposit, "fund": cmd_compute_fund,
             "retrieve": cmd_compute_retrieve, "refund": cmd_compute_refund,
             "account": cmd_compute_account, "infer": cmd_compute_infer}


def register(sub: Any, bench_sub: Any) -> None:
    """Add the `zg compute ...` commands to `sub` and `zg bench compute` to `bench_sub`."""
    compute = sub.add_parser("compute", help="0G Compute Network: services, accounts, "
                             "signed inference")
    compute_sub = compute.add_subparsers(dest="compute_command", required=True)
    add_command(compute_sub, "up", cmd_compute_up, "start the provider actors (detached) and "
                "register their services on network 0", cluster=True).add_argument(
        "--providers", type=int, default=None, help="how many (default compute.providers)")
    add_command(compute_sub, "services", cmd_compute_services, "list registered services "
                "with model and prices per token", cluster=True)
    for name, positional in _ARGUMENTS.items():
        p = add_command(compute_sub, name, _COMMANDS[name], _HELP[name], cluster=True)
        for arg, options in positional:
            p.add_argument(arg, **options)
        p.add_argument("--user", type=int, default=0, help="devnet compute user index (0)")
        if name == "infer":
            p.add_argument("--max-tokens", type=int, default=None,
                           help="completion tokens at most, 1 or more (default "
                           "compute.max_tokens); the signed fee cap reserves them")
    bench = add_command(bench_sub, "compute", cmd_bench_compute, "inference requests served "
                        "and settled per second against the model alone in one process; "
                        "settlement txs per request")
    bench.add_argument("--duration", type=float, default=20.0, help="load seconds (20)")
