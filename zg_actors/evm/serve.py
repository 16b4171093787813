"""Each network's Ethereum JSON-RPC as its own Ray Serve app (rpc/http.py's stack): network
i answers at `networks.evm.rpc_route`/i on Serve's one HTTP proxy, so adding or retiring a
network adds or deletes one app and leaves the others serving."""

from __future__ import annotations

from zg_actors.chain.client import ChainClient
from zg_actors.config import Config, config_from_dict
from zg_actors.evm.rpc import EthApi
from zg_actors.rpc.jsonrpc import Registry

APP_PREFIX = "zg-evm-rpc-"


def app_name(network_id: int) -> str:
    return f"{APP_PREFIX}{network_id}"


def route_of(config: Config, network_id: int) -> str:
    return f"{config.networks.evm.rpc_route.rstrip('/')}/{network_id}"


def eth_registry(config_dict: dict, network_id: int) -> Registry:
    """The Serve replica's registry: built there, reading through the network's validators."""
    import ray

    config = config_from_dict(config_dict)
    namespace = config.ray.namespace  # the replica runs in Serve's own namespace

    def get_actor(name: str) -> object:
        return ray.get_actor(name, namespace=namespace)

    chain = ChainClient(network_id, get_actor=get_actor)
    return EthApi(chain, config.networks.evm, network_id).registry()


def start_evm_rpc(config: Config, network_id: int) -> str:
    """Serve network `network_id`'s Ethereum JSON-RPC (or update it); its URL."""
    from zg_actors.rpc.http import serve_jsonrpc

    evm = config.networks.evm
    return serve_jsonrpc(app_name(network_id), route_of(config, network_id),
                         "zg_actors.evm.serve:eth_registry", (config.to_dict(), network_id),
                         evm.rpc_host, evm.rpc_port, evm.rpc_num_cpus)


def evm_rpc_url(config: Config, network_id: int) -> str:
    from zg_actors.rpc.http import url_of

    evm = config.networks.evm
    return url_of(evm.rpc_host, evm.rpc_port, route_of(config, network_id))


def stop_evm_rpc(network_id: int) -> list[str]:
    """Delete one network's app; [its name] if it ran."""
    from zg_actors.rpc.http import stop_jsonrpc

    return [app_name(network_id)] if stop_jsonrpc(app_name(network_id)) else []


def stop_all_evm_rpc() -> list[str]:
    """Delete every network's app (`zg down`)."""
    from ray import serve

    from zg_actors.rpc.http import stop_jsonrpc

    try:
        names = [n for n in serve.status().applications if n.startswith(APP_PREFIX)]
    except Exception:  # noqa: BLE001 - Serve never started in this cluster: nothing to stop
        return []
    return [n for n in names if stop_jsonrpc(n)]
