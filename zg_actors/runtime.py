"""Connect to a Ray cluster (or start the embedded one), deploy and tear down zg-actors,
and drive workloads against a deployment.  Used by the CLI, jobs and tests."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from zg_actors.chain.load import TransferLoad
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME, NetworkManager
from zg_actors.chain.relayer import RELAYER_NAME, Relayer
from zg_actors.config import Config
from zg_actors.errors import Unavailable, ZgError, unwrap
from zg_actors.placement import control_options
from zg_actors.stack import not_up
from zg_actors.staking.actors import STAKING_ACTOR_NAME, StakingActor
from zg_actors.workload import percentile

MIB = 1024 * 1024
CLUSTER_PROBE_TIMEOUT_S = 5.0  # a head that accepts no TCP connection in this long is absent
RAY_AUTH_MODE = "RAY_AUTH_MODE"  # Ray's switch of token authentication ("token" turns it on)


class ClusterUnreachable(Unavailable):
    """No Ray cluster answers at the address a command was given."""

    code = "CLUSTER_UNREACHABLE"


def _unreachable(address: str, why: str) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"no Ray cluster is reachable at {address} ({why}): start one with `ray start --head` "
        f"(or `ray up cluster.yaml`) and deploy into it with `zg up`, or run `zg demo`, which "
        f"needs no cluster", address=address)


def _refused(address: str, why: str) -> ClusterUnreachable:
    """A head that listens but did not let this client join: with Ray's token
    authentication on, a client that does not say so is refused (and Ray only says that
    it could not connect)."""
    return ClusterUnreachable(
        f"the Ray head at {address} answers but this client could not join it ({why}): if "
        f"the head runs with token authentication (Ray's default for a `ray start` on a host "
        f"with ~/.ray/auth_token), set {RAY_AUTH_MODE}=token here, with the head's token in "
        f"~/.ray/auth_token or RAY_AUTH_TOKEN", address=address)


def _probe(address: str) -> bool:
    """Fail at once when nothing listens at a head's host:port: Ray's own connect retries
    an absent head for minutes. True when a head at a host:port accepted the probe."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return False  # "auto" without RAY_ADDRESS: ray.init looks for a local cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)),  # "[::1]:6379" too
                                 timeout=CLUSTER_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise _unreachable(address, exc.strerror or type(exc).__name__) from None
    return True


def connect(config: Config, address: str | None = None) -> str:
    """Join the cluster at `address` ("auto" finds a local one) or start an embedded Ray."""
    if ray.is_initialized():
        return "existing"
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        listening = _probe(address)
        try:
            ray.init(address=address, namespace=config.ray.namespace, logging_level="ERROR",
                     log_to_driver=False)
        except ConnectionError as exc:  # "auto" found no running Ray instance
            if listening and os.environ.get(RAY_AUTH_MODE, "").lower() != "token":
                raise _refused(address, str(exc)) from None
            raise _unreachable(address, str(exc)) from None
        return address
    # address="local": always a fresh embedded Ray, even if `ray start` runs on this host.
    ray.init(address="local", num_cpus=config.ray.num_cpus, namespace=config.ray.namespace,
             object_store_memory=config.ray.object_store_mb * MIB,
             include_dashboard=config.ray.include_dashboard, logging_level="ERROR",
             log_to_driver=False, _system_config=system_config(config))
    return "embedded"


def system_config(config: Config) -> dict[str, Any]:
    """Ray settings of an embedded cluster (a `ray start` cluster takes them with
    --system-config; cluster.yaml does)."""
    return {"max_direct_call_object_size": config.ray.inline_object_max_bytes}


@dataclass
class Deployment:
    staking: Any
    manager: Any
    relayer: Any
    resumed: dict[int, list[int]] = field(default_factory=dict)  # network -> validators


def deploy(config: Config, detached: bool) -> Deployment:
    """Start the staking actor, network manager and relayer (named, in the namespace)."""
    data_dir = str(Path(config.data_dir).resolve())
    # Singletons: on the head (zg_control) where the cluster has one, never taken away.
    options = {"lifetime": "detached"} if detached else {}
    options.update(control_options())
    config_dict = config.to_dict()
    staking = StakingActor.options(name=STAKING_ACTOR_NAME, num_cpus=config.staking.num_cpus,
                                   get_if_exists=True, **options).remote(config_dict, data_dir)
    ray.get(staking.ping.remote())
    manager = NetworkManager.options(name=NETWORK_MANAGER_NAME, num_cpus=0.05,
                                     get_if_exists=True, **options).remote(
        config_dict, data_dir, detached)
    # Networks recorded by an earlier deployment on the same data_dir come back.
    resumed = ray.get(manager.resume.remote())
    relayer = Relayer.options(name=RELAYER_NAME, num_cpus=config.relayer.num_cpus,
                              get_if_exists=True, **options).remote(config_dict, data_dir)
    ray.get(relayer.start.remote())
    return Deployment(staking, manager, relayer, resumed)


def find_deployment() -> Deployment:
    try:
        return Deployment(ray.get_actor(STAKING_ACTOR_NAME), ray.get_actor(NETWORK_MANAGER_NAME),
                          ray.get_actor(RELAYER_NAME))
    except ValueError as exc:
        raise not_up("chain", ray.get_runtime_context().namespace) from exc


def shutdown() -> None:
    """Stop the embedded Ray (or leave the cluster)."""
    ray.shutdown()


def teardown() -> list[str]:
    """Kill every zg actor and placement group of the namespace; data on disk stays."""
    try:
        manager = ray.get_actor(NETWORK_MANAGER_NAME)
        ray.get(manager.shutdown.remote())
    except ValueError:
        pass
    # The namespace is zg's own: storage miners, DA nodes, dispersers, the gateway and
    # compute providers go too, whoever started them.
    names = [RELAYER_NAME, NETWORK_MANAGER_NAME, STAKING_ACTOR_NAME]
    names += sorted(set(ray.util.list_named_actors()) - set(names))
    return kill_named(names)


def kill_named(names: list[str]) -> list[str]:
    """Kill the named actors of this namespace that exist; returns the names killed."""
    removed = []
    for name in names:
        try:
            ray.kill(ray.get_actor(name), no_restart=True)
            removed.append(name)
        except ValueError:
            continue
    return removed


def median_timing(timings: list[dict], key: str = "mb_per_s") -> dict:
    """The median of repeated timings (by `key`), with every repeat's figure beside it:
    one timing of a small shared machine swings by ~15%."""
    ordered = sorted(timings, key=lambda t: t[key])
    middle = len(ordered) // 2
    chosen = dict(ordered[middle])
    if len(ordered) % 2 == 0:
        # The mean of the two middle timings: either one alone would bias every even-count
        # median, e.g. the DA bench's anchor of 3 + 3 timings.
        for field in (key, "seconds"):
            if field in chosen:
                chosen[field] = (ordered[middle - 1][field] + ordered[middle][field]) / 2
    return {**chosen, f"repeats_{key}": [t[key] for t in ordered]}


class LoadDriver:
    """Sends pre-signed transfers to a network's validators at a target rate."""

    def __init__(self, deployment: Deployment, config: Config, network_id: int) -> None:
        self.network_id = network_id
        self.handles = list(ray.get(deployment.manager.validator_handles.remote(network_id))
                            .values())
        seed = config.devnet.key_seed
        from zg_actors.crypto.devkeys import load_account

        accounts = config.networks.load_accounts
        nonces = ray.get([self.handles[0].account.remote(load_account(seed, i).address)
                          for i in range(accounts)])
        self.load = TransferLoad(seed, network_id, accounts, [n["nonce"] for n in nonces])
        self.sent = 0
        self.rejected: list[str] = []
        self._turn = 0

    def send(self, count: int) -> None:
        batch = [tx.encoded for tx in self.load.next_batch(count)]
        handle = self.handles[self._turn % len(self.handles)]
        self._turn += 1
        try:
            errors = ray.get(handle.submit_txs.remote(batch), timeout=30)
        except Exception as exc:  # a killed validator: the next batch goes elsewhere
            self.rejected.append(str(unwrap(exc))[:200])
            return
        self.sent += sum(1 for e in errors if e is None)
        self.rejected.extend(e for e in errors if e is not None)


def drive(drivers: list[LoadDriver], rate_tps: float, duration_s: float,
          on_tick: Callable[[float], None] | None = None, batch: int = 100) -> float:
    """Send to each driver at rate_tps for duration_s; returns the actual elapsed time."""
    start = time.time()
    next_at = start
    while (now := time.time()) < start + duration_s:
        if now < next_at:
            time.sleep(min(next_at - now, 0.05))
            continue
        for driver in drivers:
            driver.send(batch)
        next_at += batch / rate_tps
        if on_tick:
            on_tick(now - start)
    return time.time() - start


def network_report(handles: list[Any], since: float, until: float) -> dict:
    """Committed tx/s over [since, until], commit latency p50/p99, height, validator set."""
    stats = None
    for handle in handles:
        try:
            stats = ray.get(handle.stats.remote(since), timeout=10)
            break
        except Exception:
            continue
    if stats is None:
        return {"height": None}
    window = [c for c in stats["commits"] if since <= c[0] <= until + 2.0]
    txs = sum(c[2] for c in window)
    span = max(until - since, 1e-9)
    latencies = []
    for handle in handles:
        try:
            latencies += ray.get(handle.stats.remote(since), timeout=10)["latencies"]
        except Exception:
            continue
    return {"network_id": stats["network_id"], "height": stats["height"],
            "committed_txs": txs, "tx_per_s": txs / span, "blocks": len(window),
            "rounds": stats["rounds"],
            "latency_p50_s": percentile(latencies, 50), "latency_p99_s": percentile(latencies, 99),
            "validators": stats["validators"], "total_power": stats["total_power"]}


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def call(ref: Any, timeout: float = 60) -> Any:
    """ray.get that raises the product's own error type."""
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        inner = unwrap(exc)
        if isinstance(inner, ZgError):
            raise inner from None
        raise


def is_ready(ref: Any) -> bool:
    ready, _ = ray.wait([ref], timeout=0)
    return bool(ready)


def kill_actor(handle: Any, restart: bool) -> None:
    """Kill an actor as a crash would; with restart=True Ray brings it back."""
    ray.kill(handle, no_restart=not restart)
