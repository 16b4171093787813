"""KVNode: the Ray shell around the KV core, and the kv_* JSON-RPC app on Ray Serve.

A KV node owns an LMDB store (the replayed state: values by version, ACL rows, results,
progress), follows one network's flow through the chain client (a long poll per block),
downloads and verifies each entry it must judge from the storage miners, and replays it
(`follow.Follower` over `replay.Replayer`). Every entry is committed to LMDB, with the
progress past it, before the next is read, so a restarted node resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import ray

from zg_actors import runtime
from zg_actors.chain.client import SyncChainClient
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.config import Config, config_from_dict
from zg_actors.errors import InvalidInput, Unavailable, ZgError, unwrap
from zg_actors.metrics import KV_METRICS, Metrics
from zg_actors.placement import KV_RESOURCE, node_data_dir, role_options
from zg_actors.rpc.jsonrpc import Registry, RpcError
from zg_actors.storage.flow import MODULE as FLOW
from zg_actors.storage.kv.encoding import parse_stream_id
from zg_actors.storage.kv.follow import Follower
from zg_actors.storage.kv.replay import FlowEntry, Replayer, result_kind
from zg_actors.storage.kv.rpc import KV_METHODS, KvApi
from zg_actors.storage.kv.state import KVState
from zg_actors.storage.kv.store import LmdbStore
from zg_actors.store import Store

log = logging.getLogger(__name__)
KV_RPC_APP = "zg-kv-rpc"  # the Serve application of the kv_* JSON-RPC
BLOCK_WAIT_S = 10.0  # one long poll for the next block; then the flow is read again
RETRY_WAIT_S = 1.0  # after a failed round (a validator or miner restarting)
NODE_CONCURRENCY = 8  # RPC reads and status answer while the follow thread replays
NODE_START_TIMEOUT_S = 120.0  # every KV node answers its first status call within this
NODE_RESTART_POLL_S = 0.5  # between asks of a node Ray is restarting
STATE_DB, META_DB = "kv", "kv-meta"
FOLLOWING = b"following"  # meta: network id and the followed stream ids of the state


def kv_node_name(index: int) -> str:
    return f"zg-kv-node-{index}"


def followed_streams(config: Config) -> list[bytes]:
    """config.kv.streams as stream ids, in the order given."""
    return list(dict.fromkeys(parse_stream_id(part.strip())
                              for part in config.kv.streams.split(",")))


def kv_network(config: Config) -> int:
    """The network whose flow KV nodes follow (and KV clients write to)."""
    if config.kv.network >= 0:
        return config.kv.network
    try:
        manager = ray.get_actor(NETWORK_MANAGER_NAME)
    except ValueError as exc:
        raise Unavailable("no zg-actors deployment in this Ray namespace: run `zg up`",
                          namespace=config.ray.namespace) from exc
    networks = runtime.call(manager.active_networks.remote())
    if not networks:
        raise Unavailable("no active consensus network for the KV layer to follow")
    return networks[0]


class _ChainFlow:
    """The FlowSource of a KV node: the flow module through the chain client, entry data
    through the storage SDK's download (every segment proof and the root checked)."""

    def __init__(self, config: Config, network_id: int, chain: SyncChainClient) -> None:
        self.config, self.network_id, self.chain = config, network_id, chain
        self._storage: Any = None

    def entry_count(self) -> int:
        return self.chain.query(FLOW, "flow")["entries"]

    def entry(self, tx_seq: int) -> dict:
        return self.chain.query(FLOW, "entry", tx_seq)

    def fetch(self, info: dict) -> bytes:
        if self._storage is None:
            from zg_actors.storage.sdk import StorageClient

            self._storage = StorageClient(self.config, start=False)
        return self._storage.download(info["root"])


@ray.remote(max_restarts=-1, max_task_retries=0)
class KVNode:
    """KV node `index`: replays the followed streams of one network's flow."""

    def __init__(self, config_dict: dict, index: int, data_dir: str, network_id: int) -> None:
        self.config = config_from_dict(config_dict)
        self.index, self.network_id = index, network_id
        self.streams = followed_streams(self.config)
        self.store = Store(node_data_dir(data_dir, self.config.data_dir_per_node) / "kv"
                           / f"node-{index}", [STATE_DB, META_DB],
                           self.config.lmdb_map_mb)
        self._start_over_if_following_changed()
        self.state = KVState(LmdbStore(self.store, STATE_DB))
        self.api = KvApi(self.state, self.streams)
        self.registry = self.api.registry()
        self.chain = SyncChainClient(network_id, prefer=index)
        self.metrics = Metrics(KV_METRICS, node=index, network_id=network_id)
        self.follower = Follower(Replayer(self.state, self.streams),
                                 _ChainFlow(self.config, network_id, self.chain),
                                 self._replayed)
        self.last_error: str | None = None
        self._stop = threading.Event()
        threading.Thread(target=self._follow, name=f"kv-node-{index}", daemon=True).start()

    def _start_over_if_following_changed(self) -> None:
        """A state replayed for other streams (or another network) is not this node's:
        drop it and replay the flow from the start."""
        following = self.network_id.to_bytes(8, "big") + b"".join(sorted(self.streams))
        if self.store.get(META_DB, FOLLOWING) == following:
            return
        self.store.write([(STATE_DB, key, None) for key in self.store.keys(STATE_DB)]
                         + [(META_DB, FOLLOWING, following)])

    def _replayed(self, entry: FlowEntry, result: str | None, lag_entries: int) -> None:
        self.metrics.inc("zg_kv_flow_entries_replayed")
        if result is not None:
            self.metrics.inc("zg_kv_stream_txs", result=result_kind(result))
        self.metrics.set("zg_kv_next_tx_seq", entry.tx_seq + 1)
        self.metrics.set("zg_kv_replay_lag_entries", lag_entries)

    def _progress(self) -> None:
        """Where replay stands after a look at the flow (also when nothing was new)."""
        self.metrics.set("zg_kv_next_tx_seq", self.state.next_tx_seq)
        self.metrics.set("zg_kv_replay_lag_entries", self.follower.lag_entries)

    def _follow(self) -> None:
        """Catch up with the flow, then wait for the next block (one long-poll call to a
        validator per block), and again."""
        height = 0
        while not self._stop.is_set():
            try:
                self.follower.catch_up()
                self._progress()
                height = self.chain.wait_height(height + 1, BLOCK_WAIT_S)
                self.last_error = None
            except Exception as exc:  # a validator or miner restarting: try again
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("KV node %d: %s", self.index, self.last_error)
                self._progress()  # the lag as of the latest look at the flow
                self._stop.wait(RETRY_WAIT_S)

    def status(self) -> dict:
        """Progress and the digest of the replayed state (equal on nodes that replayed the
        same entries of the same streams)."""
        return {"index": self.index, "network_id": self.network_id,
                "next_tx_seq": self.state.next_tx_seq,
                "applied_seq": self.api.get_replay_progress()["appliedSeq"],
                "waiting_for": self.follower.waiting_for,
                "digest": self.state.digest(self.streams), "streams": self.streams,
                "last_error": self.last_error}

    def rpc(self, method: str, params: list | dict) -> Any:
        """One kv_* call (jsonrpc.RpcError or a typed error if it fails)."""
        return asyncio.run(self.registry.call(method, params))


# ---- starting, finding, stopping ------------------------------------------------------
def start_kv_nodes(config: Config, detached: bool = False) -> list[Any]:
    """Start (or find) the named KVNode actors of the config; each resumes from its LMDB."""
    network_id = kv_network(config)
    data_dir = str(Path(config.data_dir).resolve())
    options: dict[str, Any] = {"lifetime": "detached"} if detached else {}
    options.update(role_options(KV_RESOURCE, spread=True))
    config_dict = config.to_dict()
    nodes = [KVNode.options(name=kv_node_name(i), num_cpus=config.kv.node_num_cpus,
                            max_concurrency=NODE_CONCURRENCY, get_if_exists=True,
                            **options).remote(config_dict, i, data_dir, network_id)
             for i in range(config.kv.nodes)]
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    for node in nodes:
        while True:
            try:
                ray.get(node.status.remote(), timeout=max(1.0, deadline - time.monotonic()))
                break
            except ray.exceptions.ActorUnavailableError:  # Ray is restarting a found node
                if time.monotonic() > deadline:
                    raise
                time.sleep(NODE_RESTART_POLL_S)
    return nodes


def find_kv_nodes(config: Config) -> dict[int, Any]:
    """The KV nodes alive now, by index (looked up in the deployment's namespace: the
    Serve replica that asks runs in Serve's own)."""
    found = {}
    for i in range(config.kv.nodes):
        try:
            found[i] = ray.get_actor(kv_node_name(i), namespace=config.ray.namespace)
        except ValueError:
            continue
    return found


def kv_statuses(config: Config) -> list[dict]:
    """Each KV node's status; a node that does not answer is listed as down."""
    out = []
    for i in range(config.kv.nodes):
        try:
            out.append(runtime.call(ray.get_actor(kv_node_name(i)).status.remote(),
                                    timeout=30))
        except Exception as exc:  # not started, or dead: status says so, others still show
            out.append({"index": i, "down": f"{type(unwrap(exc)).__name__}"})
    return out


class KVNodes:
    """The Serve replica's way to the KV nodes: node 0 first, the others if it is down."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def call(self, method: str, *params: Any, **named: Any) -> Any:
        if params and named:
            raise InvalidInput("params are either positional or named", method=method)
        errors = []
        for index, node in sorted(find_kv_nodes(self.config).items()):
            try:
                return await node.rpc.remote(method, dict(named) if named else list(params))
            except Exception as exc:
                inner = unwrap(exc)
                if isinstance(inner, (ZgError, RpcError)):  # the call itself failed
                    raise inner from None
                errors.append(f"node {index}: {type(exc).__name__}")
        raise Unavailable(f"no KV node answered {method}: "
                          f"{errors or 'none is up in namespace ' + self.config.ray.namespace}",
                          method=method)


def kv_registry(config_dict: dict) -> Registry:
    """The Serve app's registry: every kv_* method, forwarded to a KV node."""
    nodes = KVNodes(config_from_dict(config_dict))
    registry = Registry()
    for name in KV_METHODS:
        async def forward(*params: Any, _name: str = name, **named: Any) -> Any:
            return await nodes.call(_name, *params, **named)

        registry.add(name, forward)
    return registry


def start_kv_rpc(config: Config) -> str:
    """The kv_* JSON-RPC on Ray Serve; returns its URL."""
    from zg_actors.rpc.http import serve_jsonrpc

    kv = config.kv
    return serve_jsonrpc(KV_RPC_APP, kv.rpc_route, "zg_actors.storage.kv.actors:kv_registry",
                         (config.to_dict(),), kv.rpc_host, kv.rpc_port, kv.rpc_num_cpus)


def kv_rpc_url(config: Config) -> str:
    from zg_actors.rpc.http import url_of

    return url_of(config.kv.rpc_host, config.kv.rpc_port, config.kv.rpc_route)


def stop_kv_rpc() -> list[str]:
    """Delete the kv_* Serve app; [its name] if it ran."""
    from zg_actors.rpc.http import stop_jsonrpc

    return [KV_RPC_APP] if stop_jsonrpc(KV_RPC_APP) else []


def stop_kv(config: Config) -> list[str]:
    """Kill the KV nodes (their data stays) and delete the RPC app; the names stopped."""
    return runtime.kill_named([kv_node_name(i) for i in range(config.kv.nodes)]) + stop_kv_rpc()
