"""The whole 0G stack in one Ray namespace: its pillars, which of them are up, bringing them
up in order with each pillar's own deploy functions (each resumes from its data), and the
error a command gives when a pillar it needs is not up.

`PILLARS`, `parse_pillars` and `not_up` are pure; the rest talks to Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zg_actors.config import Config
from zg_actors.errors import InvalidInput, NotUp

# In the order `zg up` starts them: every other pillar registers on, or pays through, the
# chain; the KV layer replays what the storage miners hold.
PILLARS = ("chain", "storage", "kv", "da", "compute")
TITLES = {"chain": "The chain", "storage": "Storage", "kv": "KV", "da": "DA",
          "compute": "Compute"}
START_COMMANDS = {"chain": "`zg up`", "storage": "`zg up` or `zg up --only storage`",
                  "kv": "`zg up` or `zg kv up`", "da": "`zg up` or `zg da up`",
                  "compute": "`zg up` or `zg compute up`"}


def parse_pillars(only: str | None, without: str | None) -> list[str]:
    """The pillars `zg up --only A,B` / `--without C` names, in start order."""
    def names(text: str, option: str) -> set[str]:
        chosen = {part.strip() for part in text.split(",")}
        unknown = sorted(chosen - set(PILLARS))
        if unknown:
            raise InvalidInput(f"{option} {text!r}: unknown pillar {unknown[0]!r} (pillars: "
                               f"{', '.join(PILLARS)})", value=text)
        return chosen

    if only is not None and without is not None:
        raise InvalidInput("give --only or --without, not both", only=only, without=without)
    chosen = names(only, "--only") if only is not None else set(PILLARS)
    if without is not None:
        chosen -= names(without, "--without")
    return [p for p in PILLARS if p in chosen]


def not_up(pillar: str, namespace: str, why: str = "") -> NotUp:
    """The error of a command that needs `pillar`: names it and the command that starts it."""
    return NotUp(f"{TITLES[pillar]} is not up in namespace {namespace}: run "
                 f"{START_COMMANDS[pillar]}" + (f" ({why})" if why else ""),
                 pillar=pillar, namespace=namespace, start=START_COMMANDS[pillar])


# ---- Ray ---------------------------------------------------------------------------------
def namespace() -> str:
    import ray

    return ray.get_runtime_context().namespace


def actor_names(pillar: str, config: Config) -> list[str]:
    """The named actors that make `pillar` up under `config`."""
    if pillar == "chain":
        from zg_actors.runtime import NETWORK_MANAGER_NAME, RELAYER_NAME, STAKING_ACTOR_NAME

        return [STAKING_ACTOR_NAME, NETWORK_MANAGER_NAME, RELAYER_NAME]
    if pillar == "storage":
        from zg_actors.storage.actors import REPAIRER_NAME, miner_name

        return [miner_name(i) for i in range(config.storage.miners)] + [REPAIRER_NAME]
    if pillar == "kv":
        from zg_actors.storage.kv.actors import kv_node_name

        return [kv_node_name(i) for i in range(config.kv.nodes)]
    if pillar == "da":
        from zg_actors.da.disperser_actor import disperser_name
        from zg_actors.da.node_actor import da_node_name
        from zg_actors.rpc.gateway import GATEWAY_NAME

        return ([da_node_name(i) for i in range(config.da.nodes)]
                + [disperser_name(i) for i in range(config.da.dispersers)] + [GATEWAY_NAME])
    from zg_actors.compute.actors import provider_name

    return [provider_name(i) for i in range(config.compute.providers)]


def pillar_states(config: Config) -> dict[str, dict[str, Any]]:
    """Per pillar: "up" (every actor named), "partial" or "down", with the actors missing."""
    import ray

    running = set(ray.util.list_named_actors())
    states = {}
    for pillar in PILLARS:
        names = actor_names(pillar, config)
        missing = [n for n in names if n not in running]
        state = "down" if len(missing) == len(names) else "partial" if missing else "up"
        states[pillar] = {"state": state, "running": len(names) - len(missing),
                          "expected": len(names), "missing": missing}
    return states


def require(pillar: str, config: Config) -> None:
    """NotUp if no actor of `pillar` runs in the namespace. A partial pillar passes: a
    missing miner or provider is that pillar's own error to report (or repair)."""
    if pillar_states(config)[pillar]["state"] == "down":
        raise not_up(pillar, namespace())


def up_chain(config: Config, on_step: Callable[[str], None]) -> dict[str, Any]:
    """Staking, the network manager and the relayer (resuming recorded networks), then
    networks until there are networks.initial."""
    from zg_actors.runtime import call, deploy

    deployment = deploy(config, detached=True)
    existing = call(deployment.manager.active_networks.remote())
    launched = []
    for i in range(max(0, config.networks.initial - len(existing))):
        on_step(f"launching network {i + 1}/{config.networks.initial}")
        launched.append(call(deployment.manager.launch_network.remote(), timeout=300))
    on_step("starting each network's Ethereum JSON-RPC")
    networks = existing + [info["network_id"] for info in launched]
    return {"existing_networks": existing, "resumed": deployment.resumed,
            "launched": launched, "rpc": start_networks_rpc(config, networks)}


def start_networks_rpc(config: Config, networks: list[int]) -> list[dict[str, Any]]:
    """Each network's Ethereum JSON-RPC on Serve: [{"network_id", "chain_id", "rpc"}]."""
    from zg_actors.evm.serve import start_evm_rpc

    return [{"network_id": n, "chain_id": config.networks.evm.chain_id(n),
             "rpc": start_evm_rpc(config, n)} for n in networks]


def up_storage(config: Config) -> dict[str, Any]:
    """The storage miners and the repairer (each resumes from its LMDB store)."""
    from zg_actors.storage.actors import REPAIRER_NAME, start_miners, start_repairer

    miners = start_miners(config, detached=True)
    start_repairer(config, detached=True)
    return {"miners": len(miners), "repairer": REPAIRER_NAME}


def up_kv(config: Config) -> dict[str, Any]:
    """The KV nodes (each resumes from its LMDB store) and their kv_* JSON-RPC on Serve;
    the storage miners must be up (KV nodes download entries from them)."""
    from zg_actors.storage.kv.actors import followed_streams, start_kv_nodes, start_kv_rpc

    require("storage", config)
    start_kv_nodes(config, detached=True)
    return {"nodes": config.kv.nodes, "streams": followed_streams(config),
            "rpc": start_kv_rpc(config)}


def up_da(config: Config) -> dict[str, Any]:
    """DA signers registered, DA nodes and dispersers, the gRPC gateway."""
    from zg_actors.da.deploy import deploy_da
    from zg_actors.rpc.gateway import deploy_gateway

    deploy_da(config, detached=True)
    _, where = deploy_gateway(config, detached=True)
    return {"nodes": config.da.nodes, "dispersers": config.da.dispersers, **where}


def up_compute(config: Config, providers: int | None = None) -> list[dict]:
    """Providers 0..providers-1 (default compute.providers), services registered; their
    statuses."""
    from zg_actors.compute.actors import launch_providers
    from zg_actors.runtime import call

    handles = launch_providers(config.to_dict(), str(Path(config.data_dir).resolve()),
                               providers or config.compute.providers,
                               config.compute.provider_num_cpus, detached=True)
    return [call(h.status.remote()) for h in handles]


def bring_up(config: Config, pillars: list[str],
             on_step: Callable[[str], None]) -> dict[str, Any]:
    """Start `pillars` in order; without "chain" the chain must already be up (checked
    before anything starts)."""
    if "chain" not in pillars:
        require("chain", config)
    started: dict[str, Any] = {}
    for pillar in pillars:
        on_step(f"starting {TITLES[pillar]}")
        if pillar == "chain":
            started[pillar] = up_chain(config, on_step)
        elif pillar == "storage":
            started[pillar] = up_storage(config)
        elif pillar == "kv":
            started[pillar] = up_kv(config)
        elif pillar == "da":
            started[pillar] = up_da(config)
        else:
            started[pillar] = up_compute(config)
    return started
