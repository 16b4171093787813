"""How DA actors reach the consensus networks: one ChainClient (chain/client.py) per
network, and each network's record of the DA epochs (registry and quorums)."""

from __future__ import annotations

from collections.abc import Iterable

from zg_actors.chain.client import ChainClient
from zg_actors.da.errors import InvalidBlob
from zg_actors.da.quorum import EpochRegistry, Quorum
from zg_actors.errors import NotFound, Unavailable


class NetworkChains:
    """A ChainClient per network, each asking the `prefer`-th validator first (so that
    the reads of different actors spread over a network's validators), and the epochs
    the networks' `da` modules recorded, read once per (network, epoch)."""

    def __init__(self, prefer: int = 0) -> None:
        self.prefer = prefer
        self._clients: dict[int, ChainClient] = {}
        self._epochs: dict[tuple[int, int], tuple[EpochRegistry, list[Quorum]]] = {}

    def __call__(self, network_id: int) -> ChainClient:
        if network_id not in self._clients:
            self._clients[network_id] = ChainClient(network_id, self.prefer)
        return self._clients[network_id]

    def forget(self, network_id: int) -> None:
        """The network was retired: drop its client."""
        self._clients.pop(network_id, None)

    async def quorums(self, network_id: int, epoch: int, others: Iterable[int] = ()
                      ) -> tuple[EpochRegistry, list[Quorum]]:
        """The epoch's registry and quorums as the network's `da` module recorded them;
        InvalidBlob if the network has not recorded the epoch. A retired network answers
        nothing, yet its FINALIZED blobs stay retrievable: every network records the same
        epochs (C0 seals the registry; the quorums follow from it), so the record is read
        from one of `others` (or one read before) instead."""
        key = (network_id, epoch)
        if key not in self._epochs:
            try:
                self._epochs[key] = await self._read_epoch(network_id, epoch)
            except NotFound as retired:
                self._epochs[key] = await self._read_elsewhere(network_id, epoch, others,
                                                               retired)
        return self._epochs[key]

    async def _read_epoch(self, network_id: int, epoch: int
                          ) -> tuple[EpochRegistry, list[Quorum]]:
        chain = self(network_id)
        raw = await chain.query("da", "epoch", epoch)
        if raw is None:
            raise InvalidBlob(f"epoch {epoch} is not registered on network {network_id}",
                              epoch=epoch, network_id=network_id)
        quorums = await chain.query("da", "quorums", epoch)
        return EpochRegistry.decode(raw), [Quorum(q, tuple(h)) for q, h in enumerate(quorums)]

    async def _read_elsewhere(self, network_id: int, epoch: int, others: Iterable[int],
                              retired: NotFound) -> tuple[EpochRegistry, list[Quorum]]:
        for (other, seen_epoch), record in self._epochs.items():
            if seen_epoch == epoch and other != network_id:
                return record
        for other in others:
            if other == network_id:
                continue
            try:
                return await self._read_epoch(other, epoch)
            except (InvalidBlob, NotFound, Unavailable):
                continue  # not registered there (launched later), or gone too
        raise retired

    async def epoch_quorum(self, network_id: int, epoch: int, quorum_id: int,
                           others: Iterable[int] = ()) -> tuple[EpochRegistry, Quorum]:
        """The epoch's registry and one of its quorums (InvalidBlob if there is none)."""
        registry, quorums = await self.quorums(network_id, epoch, others)
        if not 0 <= quorum_id < len(quorums):
            raise InvalidBlob(f"epoch {epoch} has no quorum {quorum_id}", quorum_id=quorum_id)
        return registry, quorums[quorum_id]
