"""How DA actors read a network's `da` module and send txs through its validators."""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from zg_actors.da.errors import InvalidBlob
from zg_actors.da.quorum import EpochRegistry, Quorum
from zg_actors.errors import Unavailable, ZgError

CALL_TIMEOUT_S = 10.0  # a validator or staking call slower than this counts as failed


class ChainView:
    """Reads a network's `da` module and sends txs through its validators (any that answers).

    Each view asks one validator first (the `prefer`-th, counting round the set), the
    others only when it fails: one view's reads see one chain (a height it waited for,
    then the state at that height; a nonce, then the tx that uses it), while views of
    different actors spread their reads over the network's validators."""

    def __init__(self, prefer: int = 0) -> None:
        self.prefer = prefer
        self._handles: dict[int, list[Any]] = {}

    async def handles(self, network_id: int) -> list[Any]:
        if network_id not in self._handles:
            manager = ray.get_actor("networks")
            found = list((await manager.validator_handles.remote(network_id)).values())
            first = self.prefer % len(found) if found else 0
            self._handles[network_id] = found[first:] + found[:first]
        return self._handles[network_id]

    def forget(self, network_id: int) -> None:
        self._handles.pop(network_id, None)

    async def _first(self, network_id: int, call: Any) -> Any:
        errors = []
        for handle in await self.handles(network_id):
            try:
                return await asyncio.wait_for(call(handle), CALL_TIMEOUT_S)
            except ZgError:
                raise
            except Exception as exc:  # a dead or restarting validator: try the next
                errors.append(str(exc)[:120])
        self.forget(network_id)
        raise Unavailable(f"no validator of network {network_id} answered: {errors[:2]}",
                          network_id=network_id)

    async def query(self, network_id: int, method: str, *args: Any) -> Any:
        return await self._first(network_id, lambda h: h.query.remote("da", method, args))

    async def wait_height(self, network_id: int, height: int, timeout_s: float) -> int:
        """The network's committed height once it reaches `height` or after `timeout_s`
        (Validator.wait_height: one call per block instead of a poll loop)."""
        return await self._first(network_id, lambda h: h.wait_height.remote(
            height, max(0.0, min(timeout_s, CALL_TIMEOUT_S / 2))))

    async def nonce(self, network_id: int, address: bytes) -> int:
        account = await self._first(network_id, lambda h: h.account.remote(address))
        return account["nonce"]

    async def submit(self, network_id: int, raw_tx: bytes) -> None:
        [error] = await self._first(network_id, lambda h: h.submit_txs.remote([raw_tx]))
        if error is not None:
            raise Unavailable(f"network {network_id} refused a DA tx: {error}",
                              network_id=network_id)


async def epoch_quorum(chain: ChainView, cache: dict, network_id: int, epoch: int,
                       quorum_id: int) -> tuple[EpochRegistry, Quorum]:
    """The epoch's registry and quorum as the network's `da` module recorded them."""
    key = (network_id, epoch)
    if key not in cache:
        raw = await chain.query(network_id, "epoch", epoch)
        if raw is None:
            raise InvalidBlob(f"epoch {epoch} is not registered on network {network_id}",
                              epoch=epoch, network_id=network_id)
        quorums = await chain.query(network_id, "quorums", epoch)
        cache[key] = (EpochRegistry.decode(raw),
                      [Quorum(q, tuple(h)) for q, h in enumerate(quorums)])
    registry, quorums = cache[key]
    if not 0 <= quorum_id < len(quorums):
        raise InvalidBlob(f"epoch {epoch} has no quorum {quorum_id}", quorum_id=quorum_id)
    return registry, quorums[quorum_id]
