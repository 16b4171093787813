"""A disperser's side of each consensus network: which networks take its certificates,
in which DA epoch, and its txs there (deposit, epoch posting, certificates).

A network takes certificates once the disperser's deposit and the current epoch's
registry are on its chain. All txs of the disperser's account on a network share
one nonce sequence (Routes.next_nonce), so they are sent one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import ray

from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.config import Config
from zg_actors.da.chains import NetworkChains
from zg_actors.da.dispersal import Routes
from zg_actors.da.params import BlobStatus
from zg_actors.da.quorum import EpochRegistry, Quorum
from zg_actors.errors import Unavailable
from zg_actors.staking.actors import STAKING_ACTOR_NAME

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25  # how often a tx's effect (a deposit, an epoch, a status) is read
NETWORKS_REFRESH_S = 1.0  # how often a disperser looks for launched or retired networks


class DisperserNetworks:
    """The networks one disperser routes to (Routes) and the DA epoch it disperses in."""

    def __init__(self, config: Config, index: int, account: Any) -> None:
        self.config = config
        self.index = index
        self.account = account
        self.chains = NetworkChains(prefer=index)
        self.routes = Routes()
        self.epoch: int | None = None
        self._tx_lock = asyncio.Lock()

    async def epoch_quorum(self, network_id: int, epoch: int,
                           quorum_id: int) -> tuple[EpochRegistry, Quorum]:
        """The epoch's record on the network, or on a network we route to once that one
        was retired (NetworkChains.quorums)."""
        return await self.chains.epoch_quorum(network_id, epoch, quorum_id,
                                              self.routes.networks)

    async def quorums(self, network_id: int) -> tuple[EpochRegistry, list[Quorum]]:
        """The current epoch's registry and quorums on the network."""
        assert self.epoch is not None
        return await self.chains.quorums(network_id, self.epoch)

    async def _query(self, network_id: int, method: str, *args: Any) -> Any:
        return await self.chains(network_id).query("da", method, *args)

    async def _deposit(self, network_id: int) -> int:
        return await self._query(network_id, "deposit", self.account.address)

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(NETWORKS_REFRESH_S)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("disperser %d: network refresh failed: %s", self.index, exc)

    async def refresh(self) -> None:
        """Start routing to launched networks (after our deposit and the epoch's registry
        are on their chain); stop routing to retired ones."""
        active = await ray.get_actor(NETWORK_MANAGER_NAME).active_networks.remote()
        for network_id in self.routes.networks:
            if network_id not in active:
                self.routes.close(network_id)
                self.chains.forget(network_id)
            else:
                with contextlib.suppress(Unavailable):  # validators busy: next refresh
                    await self._keep_deposit(network_id)
        for network_id in active:
            if network_id not in self.routes:
                try:
                    await self._prepare(network_id)
                except Exception as exc:
                    log.info("disperser %d: network %d not ready yet: %s", self.index,
                             network_id, exc)

    async def _prepare(self, network_id: int) -> None:
        for _ in range(3):  # the epoch may rotate while we prepare: register the new one
            epoch = self.epoch
            await self._prepare_once(network_id)
            if self.epoch == epoch:
                return
            self.routes.close(network_id)
        raise Unavailable(f"network {network_id}: epochs rotate faster than it is prepared",
                          network_id=network_id)

    async def _prepare_once(self, network_id: int) -> None:
        assert self.epoch is not None
        calls: list[tuple[str, str, list]] = []
        if await self._query(network_id, "epoch", self.epoch) is None:
            calls.append(("da", "register_epoch", await ray.get_actor(
                STAKING_ACTOR_NAME).da_epoch_attested.remote(self.epoch)))
        deposit = await self._deposit(network_id)
        if deposit < self.config.da.disperser_deposit:
            calls.append(("da", "deposit", [self.config.da.disperser_deposit - deposit]))
        chain = self.chains(network_id)
        if calls:
            await chain.send_batch(self.account, calls)
        deadline = time.time() + self.config.da.confirm_timeout_s
        while time.time() < deadline:
            if (await self._query(network_id, "epoch", self.epoch) is not None and
                    await self._deposit(network_id) >= self.config.da.disperser_deposit):
                self.routes.open(network_id, await chain.nonce(self.account.address))
                log.info("disperser %d: network %d takes certificates", self.index, network_id)
                return
            await asyncio.sleep(POLL_INTERVAL_S)
        raise Unavailable(f"network {network_id} did not take our deposit and epoch in time",
                          network_id=network_id)

    async def use_epoch(self, epoch: int) -> None:
        """Disperse in `epoch` once its registry is on every network we route to."""
        posting = await ray.get_actor(STAKING_ACTOR_NAME).da_epoch_attested.remote(epoch)
        for network_id in self.routes.networks:
            if await self._query(network_id, "epoch", epoch) is not None:
                continue
            await self.send_tx(network_id, "register_epoch", posting)
        deadline = time.time() + self.config.da.confirm_timeout_s
        for network_id in self.routes.networks:
            while await self._query(network_id, "epoch", epoch) is None:
                if time.time() > deadline:
                    raise Unavailable(f"network {network_id} did not record epoch {epoch}",
                                      network_id=network_id, epoch=epoch)
                await asyncio.sleep(POLL_INTERVAL_S)
        self.epoch = epoch

    async def send_tx(self, network_id: int, method: str, args: list) -> int:
        """Send a `da` tx from this disperser's account on the network's nonce sequence
        (ChainClient.send re-reads a stale nonce and resends); returns the nonce used."""
        async with self._tx_lock:
            tx = await self.chains(network_id).send(self.account, "da", method, args,
                                                    nonce=self.routes.nonce(network_id))
            self.routes.sent(network_id, tx.nonce)
            return tx.nonce

    async def _keep_deposit(self, network_id: int) -> None:
        """Top the deposit up when a bad-encoding proof slashed it below the minimum: the
        network would refuse every later certificate (on the same nonce sequence, the
        top-up comes before them), and the blobs they carry would time out."""
        topped_up = self.routes.topped_up.get(network_id)
        if topped_up is not None and await self.chains(network_id).nonce(
                self.account.address) <= topped_up:
            return  # the last top-up is not committed yet
        deposit = await self._deposit(network_id)
        missing = self.config.da.disperser_deposit - deposit
        if missing > 0:
            log.warning("disperser %d: deposit on network %d is %d, topping it up",
                        self.index, network_id, deposit)
            self.routes.topped_up[network_id] = await self.send_tx(network_id, "deposit",
                                                                   [missing])

    async def blob_status(self, network_id: int, key: bytes) -> int:
        """The blob's status in the network's `da` module."""
        return (await self._query(network_id, "blob", key))["status"]

    async def blob_statuses(self, network_id: int, key: bytes,
                            timeout_s: float) -> AsyncIterator[BlobStatus]:
        """The blob's status in the network's `da` module, read again after each new block
        (statuses change only with one) for `timeout_s`; UNKNOWN while it cannot be read."""
        deadline = time.time() + timeout_s
        height = 0
        while time.time() < deadline:
            try:
                status = BlobStatus(await self.blob_status(network_id, key))
            except Exception:
                status = BlobStatus.UNKNOWN
            yield status
            try:
                height = await self.chains(network_id).wait_height(height + 1,
                                                                   deadline - time.time())
            except Unavailable:
                await asyncio.sleep(POLL_INTERVAL_S)
