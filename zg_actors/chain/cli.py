"""`zg network list|add|remove`: consensus networks, listed, launched and retired live
through the network manager of a running deployment."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from zg_actors.cli_common import add_command, config_of, connect, console, emit, progress


def print_networks(networks: list[dict]) -> None:
    """The networks as `zg status` and `zg network list` show them."""
    table = Table(title="consensus networks")
    for column in ("id", "status", "height", "mempool", "validators", "voting power"):
        table.add_column(column)
    for n in networks:
        validators = n.get("validators") or []
        table.add_row(str(n["network_id"]), n["status"], str(n.get("height", "-")),
                      str(n.get("mempool", "-")), str(len(validators) or len(n["members"])),
                      ", ".join(str(v["power"]) for v in validators) or "-")
    console.print(table)


def print_rpc(endpoints: list[dict]) -> None:
    """Each network's Ethereum JSON-RPC URL and chain id (`zg up`, `zg demo`)."""
    for e in endpoints:
        console.print(f"network {e['network_id']}: Ethereum JSON-RPC [bold]{e['rpc']}[/] "
                      f"chain id {e['chain_id']}")


def cmd_network_list(args: argparse.Namespace) -> int:
    from zg_actors.runtime import call, find_deployment

    connect(args, config_of(args))
    networks = call(find_deployment().manager.list_networks.remote())
    emit(args, networks, lambda: print_networks(networks))
    return 0


def cmd_network_add(args: argparse.Namespace) -> int:
    from zg_actors.evm.serve import start_evm_rpc
    from zg_actors.runtime import call, find_deployment

    config = config_of(args)
    connect(args, config)
    with progress(args) as bar:
        task = bar.add_task("launching a consensus network", total=None)
        info = call(find_deployment().manager.launch_network.remote(args.validators), 300)
        bar.update(task, description="starting its Ethereum JSON-RPC")
        network_id = info["network_id"]
        info = {**info, "chain_id": config.networks.evm.chain_id(network_id),
                "rpc": start_evm_rpc(config, network_id)}
    emit(args, info, lambda: console.print(
        f"[green]network {network_id}[/] is up with validators {info['members']}; "
        f"Ethereum JSON-RPC [bold]{info['rpc']}[/] chain id {info['chain_id']}"))
    return 0


def cmd_network_remove(args: argparse.Namespace) -> int:
    from zg_actors.evm.serve import stop_evm_rpc
    from zg_actors.runtime import call, find_deployment

    connect(args, config_of(args))
    with progress(args) as bar:
        bar.add_task(f"retiring network {args.id} (draining its mempool)", total=None)
        info = call(find_deployment().manager.retire_network.remote(args.id), 120)
        info = {**info, "rpc_removed": stop_evm_rpc(args.id)}
    emit(args, info, lambda: console.print(
        f"network {args.id} retired at height {info.get('final_height')}; its data stays"))
    return 0


def register(sub: Any) -> None:
    """Add the `zg network ...` commands to `sub`."""
    network = sub.add_parser("network", help="list, add or remove consensus networks live")
    network_sub = network.add_subparsers(dest="network_command", required=True)
    add_command(network_sub, "list", cmd_network_list, "list consensus networks", cluster=True)
    add = add_command(network_sub, "add", cmd_network_add, "launch a consensus network while "
                      "the others run", cluster=True)
    add.add_argument("--validators", type=int, default=None,
                     help="validators (default networks.validators_per_network)")
    remove = add_command(network_sub, "remove", cmd_network_remove, "retire a network: stop "
                         "routing, drain, stop its validators", cluster=True)
    remove.add_argument("id", type=int, help="network id")
