"""The Relayer actor: bridges validators' rewards from every network to C0.

Validators burn their rewards on their own network (Heights.burn_rewards); the relayer
finds the committed burns and has C0 mint them from burn proofs.  Its cursor per network
is in LMDB; C0 mints each burn once anyway (AlreadyProcessed), so a cursor that lags after
a restart costs calls, never a second mint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ray

from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.config import config_from_dict
from zg_actors.crypto import bls
from zg_actors.placement import node_data_dir
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.staking.ledger import AlreadyProcessed
from zg_actors.store import Store, from_u64, u64

RELAYER_NAME = "relayer"
RELAY_BATCH_HEIGHTS = 200  # heights whose burns one call to a validator fetches
HEIGHT_CALL_TIMEOUT_S = 3.0  # a validator not telling its height by then is skipped
BURNS_CALL_TIMEOUT_S = 10.0  # burn proofs of RELAY_BATCH_HEIGHTS heights, assembled
ERRORS_KEPT = 10  # the latest relay errors, shown by status


@ray.remote(max_restarts=-1, max_task_retries=0)
class Relayer:
    """Has C0 mint the burns committed on every active network."""

    def __init__(self, config_dict: dict, data_dir: str,
                 get_actor: Callable[[str], Any] = ray.get_actor) -> None:
        self.config = config_from_dict(config_dict)
        bls.use(self.config.crypto.bls_backend)
        self.store = Store(node_data_dir(data_dir, self.config.data_dir_per_node) / "relayer",
                           ["cursor"], 64)
        self.get_actor = get_actor
        self.minted = 0
        self.errors: list[str] = []
        self._loop: asyncio.Task | None = None
        # Ray restarts a relayer without calling it, and its loop lived in the process that
        # died: once built inside an actor, it starts the loop itself.
        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
            ray.get_runtime_context().current_actor.start.remote()

    async def start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.relayer.interval_s)
            try:
                await self.relay_once()
            except Exception as exc:
                self._error(exc)

    def _error(self, exc: BaseException) -> None:
        self.errors = [*self.errors[1 - ERRORS_KEPT:], str(exc)]

    async def relay_once(self) -> int:
        """Mint what each active network burned since its cursor; returns the mints made."""
        manager = self.get_actor(NETWORK_MANAGER_NAME)
        staking = self.get_actor(STAKING_ACTOR_NAME)
        minted = 0
        for network_id in await manager.active_networks.remote():
            handles = await manager.validator_handles.remote(network_id)
            key = network_id.to_bytes(4, "big")
            raw = self.store.get("cursor", key)
            cursor = from_u64(raw) if raw else 1
            for handle in handles.values():  # the first validator that answers
                try:
                    height = await asyncio.wait_for(handle.committed_height.remote(),
                                                    HEIGHT_CALL_TIMEOUT_S)
                    burns = await asyncio.wait_for(
                        handle.burns_from.remote(cursor, RELAY_BATCH_HEIGHTS),
                        BURNS_CALL_TIMEOUT_S)
                except Exception:
                    continue
                for _, proof in burns:
                    try:
                        await staking.bridge_mint.remote(proof)
                        minted += 1
                    except AlreadyProcessed:
                        continue  # minted before (by us before a restart, or by hand)
                    except Exception as exc:
                        self._error(exc)
                top = min(height, cursor + RELAY_BATCH_HEIGHTS - 1)
                self.store.put("cursor", key, u64(top + 1))
                break
        self.minted += minted
        return minted

    async def status(self) -> dict:
        return {"minted": self.minted, "errors": self.errors}
