"""How DA actors reach the consensus networks: one ChainClient (chain/client.py) per
network, and each network's record of the DA epochs (registry and quorums)."""

from __future__ import annotations

from zg_actors.chain.client import ChainClient
from zg_actors.da.errors import InvalidBlob
from zg_actors.da.quorum import EpochRegistry, Quorum


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

    async def quorums(self, network_id: int, epoch: int) -> tuple[EpochRegistry, list[Quorum]]:
        """The epoch's registry and quorums as the network's `da` module recorded them;
        InvalidBlob if the network has not recorded the epoch."""
        key = (network_id, epoch)
        if key not in self._epochs:
            chain = self(network_id)
            raw = await chain.query("da", "epoch", epoch)
            if raw is None:
                raise InvalidBlob(f"epoch {epoch} is not registered on network {network_id}",
                                  epoch=epoch, network_id=network_id)
            quorums = await chain.query("da", "quorums", epoch)
            self._epochs[key] = (EpochRegistry.decode(raw),
                                 [Quorum(q, tuple(h)) for q, h in enumerate(quorums)])
        return self._epochs[key]

    async def epoch_quorum(self, network_id: int, epoch: int,
                           quorum_id: int) -> tuple[EpochRegistry, Quorum]:
        """The epoch's registry and one of its quorums (InvalidBlob if there is none)."""
        registry, quorums = await self.quorums(network_id, epoch)
        if not 0 <= quorum_id < len(quorums):
            raise InvalidBlob(f"epoch {epoch} has no quorum {quorum_id}", quorum_id=quorum_id)
        return registry, quorums[quorum_id]
