"""Opening a DA epoch, driven without Ray: actors are plain objects whose
`method.remote(...)` returns an awaitable, as a Ray actor handle's does, and are
looked up through the `get_actor` that open_epoch is given."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from zg_actors.chain.block import Block, Header
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.da.deploy import open_epoch
from zg_actors.errors import Unavailable
from zg_actors.staking.actors import STAKING_ACTOR_NAME


class StandIn:
    """An actor handle: `x.method.remote(*args)` runs `do_method(*args)` and records it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, method: str) -> Any:
        if method.startswith("do_"):
            raise AttributeError(method)
        stand_in = self

        class Method:
            @staticmethod
            def remote(*args: Any) -> Any:
                async def answer() -> Any:
                    stand_in.calls.append((method, args))
                    return getattr(stand_in, "do_" + method)(*args)
                return answer()
        return Method

    def asked(self, method: str) -> list[tuple]:
        return [args for name, args in self.calls if name == method]


def block_at(height: int, proposer: bytes) -> bytes:
    header = Header(0, height, 0, 1_000 * height, b"\0" * 32, proposer, b"\0" * 32,
                    b"\0" * 32, b"\0" * 32, b"\0" * 32, b"\0" * 32, 0)
    return Block(header, (), None).encode()


class Validator(StandIn):
    def __init__(self, name: bytes, height: int, dead: bool = False) -> None:
        super().__init__()
        self.name, self.height, self.dead = name, height, dead

    def do_committed_height(self) -> int:
        if self.dead:
            raise ConnectionError("validator is restarting")
        return self.height

    def do_get_blocks(self, height: int, count: int) -> list:
        return [(block_at(height, self.name), b"certificate")]


class Manager(StandIn):
    def __init__(self, validators: dict[bytes, Validator]) -> None:
        super().__init__()
        self.validators = validators

    def do_active_networks(self) -> list[int]:
        return [0] if self.validators else []

    def do_validator_handles(self, network_id: int) -> dict:
        return self.validators


class Staking(StandIn):
    """C0's epoch calls: it seals once every signer sent its ticket."""

    def __init__(self, signers: int) -> None:
        super().__init__()
        self.signers, self.tickets = signers, 0

    def do_da_open_epoch(self, header: bytes, certificate: bytes) -> int:
        return 4

    def do_da_seal_epoch(self, epoch: int) -> bytes:
        if self.tickets < self.signers:
            raise Unavailable(f"{self.tickets} of {self.signers} tickets")
        return b"sealed"


class Node(StandIn):
    def __init__(self, staking: Staking, fails: int = 0) -> None:
        super().__init__()
        self.staking, self.fails = staking, fails

    def do_join_epoch(self, epoch: int) -> bytes:
        if self.fails:
            self.fails -= 1
            raise ConnectionError("DA node restarting")
        self.staking.tickets += 1
        return b"ticket"


def lookup(staking: Staking, manager: Manager) -> Any:
    return {STAKING_ACTOR_NAME: staking, NETWORK_MANAGER_NAME: manager}.__getitem__


def test_an_epoch_is_seeded_by_the_chain_clients_validator_and_waits_for_every_ticket() -> None:
    """The first validator is restarting: the block comes from the next one, the one that
    told its height. A DA node that fails to join is asked again; C0 seals once it did."""
    validators = {b"v0": Validator(b"v0" * 10, 9, dead=True), b"v1": Validator(b"v1" * 10, 7)}
    staking = Staking(signers=2)
    nodes = [Node(staking), Node(staking, fails=1)]
    epoch = asyncio.run(open_epoch(nodes, lookup(staking, Manager(validators))))
    assert epoch == 4
    [(header, certificate)] = staking.asked("da_open_epoch")
    seed = Block.decode(block_at(7, b"v1" * 10)).header.encode()
    assert header == seed and certificate == b"certificate"
    assert validators[b"v1"].asked("get_blocks") == [(7, 1)]
    assert [len(n.asked("join_epoch")) for n in nodes] == [1, 2]
    assert len(staking.asked("da_seal_epoch")) == 2 and staking.tickets == 2


def test_no_epoch_opens_before_a_network_is_launched() -> None:
    staking = Staking(signers=1)
    with pytest.raises(Unavailable, match="launch a network first"):
        asyncio.run(open_epoch([Node(staking)], lookup(staking, Manager({}))))
    assert staking.calls == []
