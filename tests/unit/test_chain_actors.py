"""The chain's actors driven without Ray: their Ray lookups are passed in, so stand-ins
for peers, C0 and the network manager take the place of actor handles here."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zg_actors.chain.relayer import RELAYER_NAME, Relayer
from zg_actors.chain.staking_view import C0_READ_TIMEOUT_S, StakingView
from zg_actors.chain.validator_actor import Validator, validator_name
from zg_actors.config import Config
from zg_actors.errors import InvalidProof
from zg_actors.staking.actors import STAKING_ACTOR_NAME
from zg_actors.staking.ledger import AlreadyProcessed

from .helpers import small_config


class ActorDied(RuntimeError):
    pass


class Registry:
    """Named actors, as ray.get_actor finds them (ValueError for a name not there)."""

    def __init__(self) -> None:
        self.actors: dict[str, object] = {}

    def get_actor(self, name: str) -> Handle:
        if name not in self.actors:
            raise ValueError(f"Failed to look up actor with name '{name}'")
        return Handle(self, name, self.actors[name])


class Handle:
    """What Ray's actor handle offers: `handle.method.remote(*args)` starts the call at once
    and returns something to await for its answer; a call to an actor that died (its name
    is gone or taken by a new one) fails."""

    def __init__(self, registry: Registry, name: str, target: object) -> None:
        self.registry, self.name, self.target = registry, name, target

    def __getattr__(self, method: str) -> Any:
        handle = self

        class Method:
            @staticmethod
            def remote(*args: Any) -> asyncio.Future:
                if handle.registry.actors.get(handle.name) is not handle.target:
                    future = asyncio.get_running_loop().create_future()
                    future.set_exception(ActorDied(f"actor {handle.name} died"))
                    return future
                return asyncio.ensure_future(getattr(handle.target, method)(*args))

        return Method


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


# ---- Relayer ---------------------------------------------------------------------------
class Staking:
    def __init__(self, errors: dict[bytes, Exception]) -> None:
        self.errors = errors
        self.minted: list[bytes] = []

    async def bridge_mint(self, proof: bytes) -> None:
        if proof in self.errors:
            raise self.errors[proof]
        self.minted.append(proof)


class Manager:
    def __init__(self, registry: Registry, members: list[int]) -> None:
        self.registry, self.members = registry, members

    async def active_networks(self) -> list[int]:
        return [0]

    async def validator_handles(self, network_id: int) -> dict[int, Handle]:
        return {i: self.registry.get_actor(validator_name(network_id, i)) for i in self.members}


class Burner:
    """A validator that committed `height` blocks with a burn in each of `burns`."""

    def __init__(self, height: int, burns: list[int]) -> None:
        self.height, self.burns = height, burns
        self.asked: list[int] = []

    async def committed_height(self) -> int:
        return self.height

    async def burns_from(self, height: int, limit: int) -> list[tuple[int, bytes]]:
        self.asked.append(height)
        return [(h, b"burn-%d" % h) for h in self.burns if height <= h < height + limit]


def test_the_relayer_mints_each_burn_and_takes_an_earlier_mint_for_done(tmp_path: Path) -> None:
    registry = Registry()
    staking = Staking({b"burn-2": AlreadyProcessed("burn 0x02 was already minted"),
                       b"burn-3": InvalidProof("burn proof of height 3 does not verify")})
    validator = Burner(height=5, burns=[2, 3, 4])
    registry.actors = {STAKING_ACTOR_NAME: staking, "networks": Manager(registry, [0]),
                       validator_name(0, 0): validator}
    relayer = Relayer.__ray_actor_class__(small_config().to_dict(), str(tmp_path),
                                          registry.get_actor)

    async def relay() -> tuple[int, int]:
        first = await relayer.relay_once()
        return first, await relayer.relay_once()

    assert run(relay) == (1, 0)  # burn 4; burn 2 was minted before, burn 3 is bad
    assert staking.minted == [b"burn-4"]
    errors = run(relayer.status)["errors"]
    assert errors == ["burn proof of height 3 does not verify"]  # not the earlier mint
    assert validator.asked == [1, 6]  # the cursor moved past height 5
    assert RELAYER_NAME == "relayer"


# ---- StakingView: C0's outage ----------------------------------------------------------
class SilentStaking:
    """A C0 that never answers (its node is down, the call hangs)."""

    async def final_tick(self) -> int:
        await asyncio.sleep(3600)
        return 0


def test_while_c0_does_not_answer_the_final_tick_is_unknown_within_the_read_timeout() -> None:
    registry = Registry()
    registry.actors[STAKING_ACTOR_NAME] = SilentStaking()
    view = StakingView(0, lambda: registry.get_actor(STAKING_ACTOR_NAME))

    async def read() -> tuple[int | None, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = await view.final_tick()
        return tick, loop.time() - started

    tick, waited = run(read)
    assert tick is None and waited < C0_READ_TIMEOUT_S * 3
    gone = StakingView(0, lambda: registry.get_actor("no-such-actor"))
    assert run(gone.final_tick) is None  # C0's actor gone: the same


# ---- Validators: a network in one process ----------------------------------------------
def genesis_set(config: Config, members: list[int]) -> bytes:
    from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
    from zg_actors.crypto.devkeys import validator_identity

    seed = config.devnet.key_seed
    return ValidatorSet.from_list([ValidatorInfo(validator_identity(seed, i).address,
                                                 validator_identity(seed, i).bls_pubkey, 100)
                                   for i in members]).encode()


def start_validator(config: Config, tmp_path: Path, registry: Registry, members: list[int],
                    identity: int) -> Any:
    """A Validator process under its name (on the store a crashed one left, if any)."""
    validator = Validator.__ray_actor_class__(
        config.to_dict(), 0, identity, members, genesis_set(config, members), 1,
        str(tmp_path), registry.get_actor)
    registry.actors[validator_name(0, identity)] = validator
    return validator


async def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.timeout(120)
def test_four_validators_with_stand_in_peers_commit_and_a_restarted_one_rejoins(
        tmp_path: Path) -> None:
    config = small_config(**{"networks.block_interval_s": 0.05,
                             "networks.empty_block_interval_s": 0.05})
    registry = Registry()
    members = [0, 1, 2, 3]

    async def scenario() -> None:
        validators = {i: start_validator(config, tmp_path, registry, members, i)
                      for i in members}
        await asyncio.gather(*(v.start() for v in validators.values()))
        assert await wait_for(lambda: min(v.node.committed.height
                                          for v in validators.values()) >= 3, 60)
        # Validator 3 crashes: its store stays, a new process takes its name.
        crashed = validators.pop(3)
        await crashed.stop()
        crashed.node.close()
        del registry.actors[validator_name(0, 3)]
        height = max(v.node.committed.height for v in validators.values())
        assert await wait_for(lambda: min(v.node.committed.height
                                          for v in validators.values()) >= height + 2, 60)
        validators[3] = start_validator(config, tmp_path, registry, members, 3)
        await validators[3].start()
        top = max(v.node.committed.height for v in validators.values())
        assert await wait_for(lambda: validators[3].node.committed.height >= top + 2, 60)
        hashes = {v.node.block_at(top)[0] for v in validators.values()}
        assert len(hashes) == 1  # one block per height on every validator
        for v in validators.values():
            await v.stop()
            v.node.close()

    run(scenario)


# ---- Peers: eventual delivery ----------------------------------------------------------
class Receiver:
    """A peer that holds what it is sent; a new Receiver is a restarted process."""

    def __init__(self) -> None:
        self.incarnation = os.urandom(8)
        self.held: list[tuple] = []

    async def on_messages(self, sender: int, incarnation: bytes,
                          messages: list) -> tuple[bytes, list[bool]]:
        self.held.extend(messages)
        return self.incarnation, [True] * len(messages)


def test_a_peer_that_was_down_and_one_that_restarted_get_what_we_signed() -> None:
    from zg_actors.chain.gossip import MessageKind
    from zg_actors.chain.peers import Peers

    registry = Registry()
    peers = Peers(0, [0, 1], lambda peer: registry.get_actor(validator_name(0, peer)))
    message = (MessageKind.PREVOTE, (1, 0, 1, b"", 0, b"sig"))

    async def scenario() -> None:
        peers.gossip((1, 0, MessageKind.PREVOTE), message)  # peer 1 is down: not delivered
        await asyncio.sleep(0.3)
        first = Receiver()
        registry.actors[validator_name(0, 1)] = first  # it comes up: the re-send reaches it
        assert await wait_for(lambda: first.held == [message], 10)
        second = Receiver()
        registry.actors[validator_name(0, 1)] = second  # it restarted and lost the message
        peers.received_from(1, second.incarnation)  # its first message to us tells us so
        assert await wait_for(lambda: second.held == [message], 10)
        peers.stop()

    run(scenario)


def test_catching_up_asks_the_most_advanced_peer_for_the_blocks_after_ours() -> None:
    from zg_actors.chain.peers import Peers

    class Ahead:
        def __init__(self, height: int, fails: bool = False) -> None:
            self.height, self.fails = height, fails
            self.asked: list[tuple[int, int]] = []

        async def committed_height(self) -> int:
            return self.height

        async def get_blocks(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
            self.asked.append((start, limit))
            if self.fails:
                raise RuntimeError("its store is closing")
            return [(b"block-%d" % h, b"cert-%d" % h) for h in range(start, self.height + 1)]

    registry = Registry()
    near, far = Ahead(4), Ahead(6)
    registry.actors = {validator_name(0, 1): near, validator_name(0, 2): far}
    peers = Peers(0, [0, 1, 2, 3], lambda peer: registry.get_actor(validator_name(0, peer)))

    async def scenario() -> None:
        assert await peers.blocks_from(4, 64) == [(b"block-%d" % h, b"cert-%d" % h)
                                                   for h in (4, 5, 6)]
        assert (near.asked, far.asked) == ([], [(4, 64)])
        assert await peers.blocks_from(7, 64) == []  # no peer is ahead of 6
        far.fails = True
        assert await peers.blocks_from(4, 64) == []
        restarted = Ahead(6)  # a new actor under its name: found, the old handle forgotten
        registry.actors[validator_name(0, 2)] = restarted
        assert len(await peers.blocks_from(4, 64)) == 3 and restarted.asked == [(4, 64)]

    run(scenario)


# ---- StakingView: double-sign evidence -------------------------------------------------
class EvidenceC0:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.evidence: list[object] = []

    async def submit_evidence(self, evidence: object) -> None:
        self.evidence.append(evidence)
        if self.fails:
            raise RuntimeError("evidence 0x.. was already applied")


def test_a_double_sign_is_reported_to_c0_once_whichever_vote_came_first() -> None:
    from zg_actors.chain.consensus import Vote, VoteType
    from zg_actors.chain.staking_view import double_sign_evidence

    from .helpers import IDENTITIES, validator_set

    registry = Registry()
    registry.actors[STAKING_ACTOR_NAME] = c0 = EvidenceC0()
    view = StakingView(3, lambda: registry.get_actor(STAKING_ACTOR_NAME))
    vset = validator_set(IDENTITIES)
    first = Vote(7, 1, VoteType.PREVOTE, b"a" * 32, 2, b"sig-a")
    second = Vote(7, 1, VoteType.PREVOTE, b"b" * 32, 2, b"sig-b")

    async def scenario() -> None:
        await view.report_double_sign(vset, first, second)
        await view.report_double_sign(vset, second, first)

    run(scenario)
    assert c0.evidence == [double_sign_evidence(3, vset, first, second)]
    evidence = c0.evidence[0]
    assert (evidence.network_id, evidence.height, evidence.round, evidence.step) == (3, 7, 1, 1)
    assert evidence.validator == vset.validators[2].address
    assert (evidence.block_hash_b, evidence.signature_b) == (b"b" * 32, b"sig-b")
    registry.actors[STAKING_ACTOR_NAME] = refusing = EvidenceC0(fails=True)
    third = Vote(8, 0, VoteType.PRECOMMIT, b"c" * 32, 1, b"sig-c")
    run(lambda: view.report_double_sign(vset, third, second))  # C0's refusal is logged only
    assert len(refusing.evidence) == 1


# ---- Validator: a retired network ------------------------------------------------------
def test_a_retired_networks_validator_refuses_txs_with_its_own_error_code(
        tmp_path: Path) -> None:
    from zg_actors.chain.network import UnknownNetworkId
    from zg_actors.staking.ledger import UnknownNetwork

    config = small_config()
    validator = start_validator(config, tmp_path, Registry(), [0, 1, 2, 3], 0)

    async def retire_then_submit() -> None:
        await validator.stop()
        await validator.submit_txs([b"tx"])

    with pytest.raises(UnknownNetworkId, match="network 0 is retired") as refused:
        run(retire_then_submit)
    assert refused.value.to_dict()["code"] == "UNKNOWN_NETWORK_ID"
    assert UnknownNetwork.code == "UNKNOWN_NETWORK"  # C0's: a network it never registered
    assert validator.node.mempool.pending_count == 0
    validator.node.close()
