"""`zg evm ...`: the devnet's funded EVM accounts, as anvil and Hardhat list theirs."""

from __future__ import annotations

import argparse
from typing import Any

from eth_utils import to_checksum_address

from zg_actors.cli_common import add_command, config_of, console, emit
from zg_actors.config import ZG, Config
from zg_actors.crypto.devkeys import load_account

DEVNET_ONLY = ("devnet-only: these keys derive from devnet.key_seed, which is public; never "
               "send real funds to them")


def devnet_accounts(config: Config) -> list[dict[str, Any]]:
    """The accounts every network funds at genesis (networks.load_accounts, each
    networks.load_account_balance wei), with their private keys."""
    out = []
    for i in range(config.networks.load_accounts):
        account = load_account(config.devnet.key_seed, i)
        out.append({"index": i, "address": to_checksum_address(account.address),
                    "private_key": "0x" + account.secret.hex(),
                    "balance_wei": str(config.networks.load_account_balance)})
    return out


def cmd_evm_accounts(args: argparse.Namespace) -> int:
    config = config_of(args)
    accounts = devnet_accounts(config)
    chain_ids = {n: config.networks.evm.chain_id(n) for n in range(config.networks.initial)}

    def human() -> None:  # anvil's layout: addresses, then their keys, one a line
        zg = config.networks.load_account_balance / ZG
        console.print(f"Available accounts (funded on every network, {zg:,.0f} ZG each)",
                      highlight=False)
        for a in accounts:
            console.print(f"({a['index']}) {a['address']}", highlight=False, soft_wrap=True)
        console.print("\nPrivate keys", highlight=False)
        for a in accounts:
            console.print(f"({a['index']}) {a['private_key']}", highlight=False,
                          soft_wrap=True)
        console.print(f"chain ids: network i has {config.networks.evm.chain_id_base} + i "
                      f"({', '.join(f'{n}: {c}' for n, c in chain_ids.items())})")
        console.print(f"[bold red]{DEVNET_ONLY}[/]")

    emit(args, {"warning": DEVNET_ONLY, "chain_id_base": config.networks.evm.chain_id_base,
                "accounts": accounts}, human)
    return 0


def cmd_bench_evm(args: argparse.Namespace) -> int:
    from zg_actors.evm.bench import DEFAULT_TXS, KINDS, run_evm_bench

    # Progress goes to stderr even with --json (stdout carries only the JSON report).
    txs = DEFAULT_TXS if args.txs is None else dict.fromkeys(KINDS, args.txs)
    report = run_evm_bench(config_of(args), duration_s=args.duration, txs=txs,
                           table=not args.json, console=console)
    emit(args, report, lambda: None)
    return 0 if report["ok"] else 1


def register(sub: Any, bench_sub: Any) -> None:
    """Add `zg bench evm` to `bench_sub` and the `zg evm ...` commands to `sub`."""
    from zg_actors.evm.bench import DEFAULT_DURATION_S, DEFAULT_TXS, RATIO_AIM

    bench_evm = add_command(bench_sub, "evm", cmd_bench_evm, "committed tx/s (whole run and "
                            "sustained) and commit latency p50/p99 of native and ERC-20 "
                            "transfers sent as signed raw txs through the JSON-RPC to 4 "
                            "validators, beside the same txs applied to py-evm in one process "
                            f"(aim: {RATIO_AIM}x over the whole run) and 0G's published figures")
    bench_evm.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                           help="longest a kind is offered to the network, in seconds "
                           f"({DEFAULT_DURATION_S:.0f}); a kind ends sooner when its txs run "
                           "out")
    defaults = ", ".join(f"{n:,} {kind}" for kind, n in DEFAULT_TXS.items())
    bench_evm.add_argument("--txs", type=int, default=None,
                           help=f"signed txs of each kind (default: {defaults}, about 40 s of "
                           "each on 2 cores); the anchor applies all of them; fewer make the "
                           "pipeline's ~2 s fill weigh more in the whole-run rate")
    evm = sub.add_parser("evm", help="the EVM on every network: devnet accounts")
    evm_sub = evm.add_subparsers(dest="evm_command", required=True)
    add_command(evm_sub, "accounts", cmd_evm_accounts, "print the funded devnet accounts "
                "with their private keys (derived from devnet.key_seed; devnet-only)")
