"""The NetworkManager actor: launches, resumes and retires consensus networks.

A network is an actor group: its validators (chain/validator_actor.py), one per validator
identity chosen from C0's registry, in one SPREAD placement group.  The manager records
each network in LMDB before it starts its actors, so a manager restarted mid-launch or
mid-retirement carries on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from zg_actors.chain.network import UnknownNetworkId
from zg_actors.chain.validator_actor import Validator, validator_name
from zg_actors.config import config_from_dict
from zg_actors.crypto.devkeys import validator_identity
from zg_actors.errors import InvalidInput
from zg_actors.placement import VALIDATOR_RESOURCE, node_data_dir
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.store import Store

log = logging.getLogger(__name__)

NETWORK_MANAGER_NAME = "networks"
WATCHDOG_INTERVAL_S = 2.0  # how often validators are nudged to (re)start
STATUS_CALL_TIMEOUT_S = 3.0  # a validator not telling its status by then is skipped


@ray.remote(max_restarts=-1, max_task_retries=0)
class NetworkManager:
    """Launches and retires consensus networks (actor groups sharing the staking actor)."""

    def __init__(self, config_dict: dict, data_dir: str, detached: bool,
                 get_actor: Callable[[str], Any] = ray.get_actor) -> None:
        self.get_actor = get_actor
        self.config_dict = config_dict
        self.config = config_from_dict(config_dict)
        self.data_dir = data_dir
        self.detached = detached
        self.store = Store(node_data_dir(data_dir, self.config.data_dir_per_node)
                           / "network-manager", ["networks"],
                           self.config.lmdb_map_mb)
        self.networks: dict[int, dict] = {}
        self.handles: dict[int, dict[int, Any]] = {}
        self.groups: dict[int, Any] = {}
        for key, raw in self.store.items("networks"):
            self.networks[int.from_bytes(key, "big")] = json.loads(raw)
        self._watchdog: asyncio.Task | None = None

    def _save(self, network_id: int) -> None:
        self.store.put("networks", network_id.to_bytes(4, "big"),
                       json.dumps(self.networks[network_id]).encode())

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Nudge validators so that one Ray restarted resumes even with no traffic."""
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            for network_id, info in list(self.networks.items()):
                if info["status"] != "active":
                    continue
                for identity in info["members"]:
                    try:
                        self._handle(network_id, identity).start.remote()
                    except ValueError:
                        continue

    def _handle(self, network_id: int, identity: int) -> Any:
        handles = self.handles.setdefault(network_id, {})
        if identity not in handles:
            handles[identity] = self.get_actor(validator_name(network_id, identity))
        return handles[identity]

    async def launch_network(self, validators: int | None = None) -> dict:
        """Register a network at C0, start its validators in one SPREAD placement group."""
        self._ensure_watchdog()
        count = validators or self.config.networks.validators_per_network
        staking = self.get_actor(STAKING_ACTOR_NAME)
        candidates = [v for v in await staking.validators.remote() if not v["jailed"]]
        if count < 1 or count > len(candidates):
            raise InvalidInput(f"cannot launch a network of {count} validators: "
                               f"{len(candidates)} active validators are registered",
                               validators=count, available=len(candidates))
        seed = self.config.devnet.key_seed
        by_address = {validator_identity(seed, i).address: i
                      for i in range(self.config.staking.validators)}
        chosen = sorted(candidates, key=lambda v: (-v["stake"], v["address"]))[:count]
        members = sorted(by_address[v["address"]] for v in chosen if v["address"] in by_address)
        network_id = max(self.networks, default=-1) + 1
        tick, genesis_set = await staking.register_network.remote(
            network_id, [validator_identity(seed, i).address for i in members])
        info = {"network_id": network_id, "members": members, "status": "active",
                "launched_at": time.time(), "placement_group": f"zg-network-{network_id}",
                "genesis_tick": tick, "genesis_set": genesis_set.hex()}
        # Recorded before its actors start: a manager restarted mid-launch resumes it.
        self.networks[network_id] = info
        self._save(network_id)
        await self._start_validators(info)
        log.info("launched network %d with validators %s", network_id, members)
        return info

    async def _start_validators(self, info: dict, only_missing: bool = False) -> list[int]:
        """Start the network's validators in its SPREAD placement group (made if missing)."""
        network_id, members = info["network_id"], info["members"]
        cpus = self.config.networks.validator_num_cpus
        bundle_resources: dict[str, float] = {"CPU": cpus}
        # On a cluster made from cluster.yaml, validators go to nodes that offer the
        # zg_validator resource; the embedded Ray has none and places them anywhere.
        if VALIDATOR_RESOURCE in ray.cluster_resources():
            bundle_resources[VALIDATOR_RESOURCE] = 1
        group = self.groups.get(network_id)
        if group is None:
            try:
                group = ray.util.get_placement_group(info["placement_group"])
            except ValueError:
                group = placement_group([bundle_resources] * len(members), strategy="SPREAD",
                                        name=info["placement_group"],
                                        lifetime="detached" if self.detached else None)
            await group.ready()
            self.groups[network_id] = group
        # Handles of running validators stay held: a non-detached actor dies with the last
        # handle its owner holds, so dropping them here would kill the survivors.
        handles = self.handles.setdefault(network_id, {})
        started = []
        refs = []
        for bundle, identity in enumerate(members):
            name = validator_name(network_id, identity)
            if only_missing:
                try:
                    self.get_actor(name)
                    continue
                except ValueError:
                    pass
            options = {"name": name, "num_cpus": cpus,
                       "resources": {k: v for k, v in bundle_resources.items() if k != "CPU"},
                       "scheduling_strategy": PlacementGroupSchedulingStrategy(
                           group, placement_group_bundle_index=bundle)}
            if self.detached:
                options["lifetime"] = "detached"
            handle = Validator.options(**options).remote(
                self.config_dict, network_id, identity, members,
                bytes.fromhex(info["genesis_set"]), info["genesis_tick"], self.data_dir)
            # Keep the handle: a non-detached actor dies when its last handle goes away.
            handles[identity] = handle
            refs.append(handle.start.remote())
            started.append(identity)
        await asyncio.gather(*refs)
        return started

    async def resume(self) -> dict[int, list[int]]:
        """Re-create the missing validators of every active network (after `zg down` and
        `zg up`, or a whole-cluster restart); each recovers its chain from its LMDB store."""
        self._ensure_watchdog()
        resumed = {}
        for network_id, info in sorted(self.networks.items()):
            if info["status"] == "active" and "genesis_set" in info:
                started = await self._start_validators(info, only_missing=True)
                if started:
                    resumed[network_id] = started
                    log.info("resumed network %d: restarted validators %s", network_id,
                             started)
        return resumed

    async def retire_network(self, network_id: int, drain_timeout_s: float = 10.0) -> dict:
        """Stop routing to it, let its mempool drain, stop its validators; data stays."""
        info = self._info(network_id)
        if info["status"] == "retired":  # "retiring": an interrupted retirement goes on
            raise InvalidInput(f"network {network_id} is already {info['status']}",
                               network_id=network_id)
        info["status"] = "retiring"
        self._save(network_id)
        deadline = time.time() + drain_timeout_s
        handles = []
        for identity in info["members"]:
            try:
                handles.append(self._handle(network_id, identity))
            except ValueError:  # already gone (an interrupted retirement, a dead node)
                continue
        while handles and time.time() < deadline:
            try:
                status = await handles[0].status.remote()
            except Exception:
                break
            if status["mempool_pending"] == 0:  # queued txs never drain: nothing to wait for
                break
            await asyncio.sleep(0.25)
        final = await self._network_status(network_id)
        await asyncio.gather(*[h.stop.remote() for h in handles], return_exceptions=True)
        for h in handles:
            ray.kill(h, no_restart=True)
        group = self.groups.pop(network_id, None)
        if group is None:
            try:
                group = ray.util.get_placement_group(info["placement_group"])
            except Exception:
                group = None
        if group is not None:
            remove_placement_group(group)
        self.handles.pop(network_id, None)
        await self.get_actor(STAKING_ACTOR_NAME).retire_network.remote(network_id)
        info["status"] = "retired"
        info["final_height"] = final.get("height")
        self._save(network_id)
        return info

    def _info(self, network_id: int) -> dict:
        if network_id not in self.networks:
            raise UnknownNetworkId(f"unknown network id {network_id}; known: "
                                   f"{sorted(self.networks)}", network_id=network_id)
        return self.networks[network_id]

    async def _network_status(self, network_id: int) -> dict:
        info = self._info(network_id)
        for identity in info["members"]:
            try:
                status = await asyncio.wait_for(
                    self._handle(network_id, identity).status.remote(), STATUS_CALL_TIMEOUT_S)
                return {**info, **status}
            except Exception:
                continue
        return {**info, "height": None}

    async def list_networks(self) -> list[dict]:
        self._ensure_watchdog()
        out = []
        for network_id, info in sorted(self.networks.items()):
            if info["status"] == "active":
                out.append(await self._network_status(network_id))
            else:
                out.append(dict(info))
        return out

    async def active_networks(self) -> list[int]:
        return [n for n, info in sorted(self.networks.items()) if info["status"] == "active"]

    async def validator_handles(self, network_id: int) -> dict[int, Any]:
        info = self._info(network_id)
        if info["status"] != "active":
            raise UnknownNetworkId(f"network {network_id} is {info['status']}",
                                   network_id=network_id)
        try:
            return {i: self._handle(network_id, i) for i in info["members"]}
        except ValueError:
            # Ray restarted this manager with members gone: killed mid-launch (the network
            # is recorded before its validators start), or non-detached ones that died
            # with it. Start the missing ones; each resumes from its own store.
            await self._start_validators(info, only_missing=True)
            return {i: self._handle(network_id, i) for i in info["members"]}

    async def shutdown(self) -> None:
        for network_id, info in self.networks.items():
            if info["status"] == "active":
                for identity in info["members"]:
                    try:
                        ray.kill(self._handle(network_id, identity), no_restart=True)
                    except ValueError:
                        continue
                try:
                    remove_placement_group(
                        ray.util.get_placement_group(info["placement_group"]))
                except Exception:
                    continue
