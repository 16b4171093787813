"""NetworkChains: a DA epoch's record read from the network a blob names, and from another
network once that one was retired (its FINALIZED blobs stay retrievable)."""

from __future__ import annotations

import asyncio

import pytest

from zg_actors.chain.network import UnknownNetworkId
from zg_actors.da.chains import NetworkChains
from zg_actors.da.errors import InvalidBlob
from zg_actors.da.quorum import EpochRegistry, EpochSigner

REGISTRY = EpochRegistry(3, b"s" * 32, tuple(
    EpochSigner(bytes([i]) * 20, b"\x01" * 48, 1, b"") for i in range(4)))
QUORUMS = [[0, 1, 2, 3, 0, 1]]  # slot s held by signer holders[s]


class NetworkDaView:
    """A network's `da` queries as its validators answer them (the chain client's side):
    the epochs it recorded, or UnknownNetworkId once it is retired."""

    def __init__(self, network_id: int, epochs: dict[int, bytes], retired: bool = False):
        self.network_id, self.epochs, self.retired = network_id, epochs, retired
        self.asked = 0

    async def query(self, module: str, method: str, epoch: int) -> object:
        self.asked += 1
        if self.retired:
            raise UnknownNetworkId(f"network {self.network_id} is retired",
                                   network_id=self.network_id)
        assert module == "da"
        if method == "epoch":
            return self.epochs.get(epoch)
        return QUORUMS if epoch in self.epochs else []


def chains_with(*views: NetworkDaView) -> NetworkChains:
    chains = NetworkChains()
    chains._clients = {v.network_id: v for v in views}  # type: ignore[assignment]
    return chains


def test_a_retired_networks_epoch_is_read_from_a_network_still_running() -> None:
    retired = NetworkDaView(1, {}, retired=True)
    running = NetworkDaView(0, {3: REGISTRY.encode()})
    later = NetworkDaView(2, {})  # launched after epoch 3: not registered there
    chains = chains_with(retired, later, running)
    registry, quorum = asyncio.run(chains.epoch_quorum(1, 3, 0, others=[1, 2, 0]))
    assert registry == REGISTRY and quorum.quorum_id == 0
    assert (later.asked, running.asked) == (1, 2)
    # kept: a second blob of that epoch asks nobody
    asyncio.run(chains.epoch_quorum(1, 3, 0))
    assert (retired.asked, running.asked) == (1, 2)


def test_with_no_other_network_the_retirement_is_the_answer() -> None:
    chains = chains_with(NetworkDaView(1, {}, retired=True), NetworkDaView(2, {}))
    with pytest.raises(UnknownNetworkId, match="network 1 is retired"):
        asyncio.run(chains.quorums(1, 3, others=[2]))
    with pytest.raises(InvalidBlob, match="epoch 3 is not registered on network 2"):
        asyncio.run(chains.quorums(2, 3))
