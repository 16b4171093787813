"""The one chain client, driven without Ray: handles are plain objects whose
`method.remote(...)` returns an awaitable, as a Ray actor handle's does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from zg_actors.chain.catch_up import ValidatorSyncing
from zg_actors.chain.client import ChainClient, SyncChainClient, TxRefused
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.chain.tx import decode_tx
from zg_actors.crypto.accounts import Account
from zg_actors.errors import InsufficientBalance, Unavailable

ALICE = Account.from_seed(b"chain-client-test")


class Remote:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> Any:
        async def answer() -> Any:
            return await self.fn(*args) if asyncio.iscoroutinefunction(self.fn) \
                else self.fn(*args)
        return answer()


class RayTaskErrorLike(Exception):
    """What Ray raises for an error inside an actor call: the original is its `cause`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"task failed: {cause}")
        self.cause = cause


class FakeValidator:
    """A validator's chain-facing calls over a toy state: nonce and height."""

    def __init__(self, name: str, chain: dict, dead: bool = False) -> None:
        self.name, self.chain, self.dead = name, chain, dead
        self.calls: list[str] = []
        self.submitted: list[bytes] = []

    def __getattr__(self, method: str) -> Remote:
        def call(*args: Any) -> Any:
            self.calls.append(method)
            if self.dead:
                raise ConnectionError(f"{self.name} is dead")
            return getattr(self, "do_" + method)(*args)
        return Remote(call)

    def do_query(self, module: str, method: str, args: tuple) -> Any:
        if self.chain.get("syncing") == self.name:
            raise RayTaskErrorLike(ValidatorSyncing(f"{self.name} is catching up", height=0))
        if method == "broke":
            raise RayTaskErrorLike(InsufficientBalance("balance 3 < 5", balance=3))
        return (self.name, module, method, args)

    def do_account(self, address: bytes) -> dict:
        return {"balance": 10, "nonce": self.chain["nonce"]}

    def do_wait_height(self, height: int, timeout_s: float) -> int:
        self.chain["waits"].append(timeout_s)
        self.chain["height"] += 1
        if self.chain["height"] >= self.chain.get("commit_at", 1 << 60):
            self.chain["nonce"] = self.chain["pending_nonce"]
        return self.chain["height"]

    def do_submit_txs(self, raw: list[bytes]) -> list[str | None]:
        out: list[str | None] = []
        expected = self.chain["nonce"]
        for item in raw:
            tx = decode_tx(item)
            if tx.nonce != expected or self.chain.get("refuse_nonces"):
                out.append(f"NonceError: nonce {tx.nonce} is not the next ({expected})")
            elif tx.method == "poor":
                out.append("InsufficientBalance: balance 0 below fee")
            else:
                self.submitted.append(item)
                expected += 1
                out.append(None)
        return out


class FakeManager:
    def __init__(self, validators: list[FakeValidator]) -> None:
        self.validators = validators
        self.validator_handles = Remote(lambda net: {i: v for i, v in enumerate(validators)})


def client(validators: list[FakeValidator], prefer: int = 0, **kw: Any) -> ChainClient:
    manager = FakeManager(validators)

    def get_actor(name: str) -> Any:
        if name != NETWORK_MANAGER_NAME:
            raise ValueError(name)
        return manager
    return ChainClient(3, prefer=prefer, get_actor=get_actor, **kw)


def chain_state(**kw: Any) -> dict:
    return {"nonce": 0, "height": 0, "waits": [], **kw}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_preferred_validator_is_asked_first_and_the_others_in_turn() -> None:
    state = chain_state()
    vals = [FakeValidator(f"v{i}", state) for i in range(3)]
    assert run(client(vals, prefer=1).query("flow", "entry", 7))[0] == "v1"
    vals[1].dead = True
    vals[1].calls.clear()
    c = client(vals, prefer=1)
    assert run(c.query("flow", "entry", 7))[0] == "v2"
    assert run(c.query("flow", "entry", 8))[0] == "v2"  # sticks with the one that answered
    assert vals[1].calls == ["query"] and vals[0].calls == []


def test_the_products_own_error_is_raised_as_itself_not_skipped() -> None:
    vals = [FakeValidator(f"v{i}", chain_state()) for i in range(2)]
    with pytest.raises(InsufficientBalance, match="balance 3 < 5"):
        run(client(vals).query("token", "broke"))
    assert vals[1].calls == []  # an answer (an error) from the first is the answer


def test_a_validator_catching_up_is_skipped_for_reads() -> None:
    """One restarted on an empty disk would answer from genesis: it refuses, and the
    client reads from the next validator (and stays there)."""
    state = chain_state(syncing="v0")
    vals = [FakeValidator(f"v{i}", state) for i in range(2)]
    c = client(vals)
    assert run(c.query("compute", "account", 1))[0] == "v1"
    assert run(c.query("compute", "account", 2))[0] == "v1"
    assert vals[0].calls == ["query"]
    state["syncing"] = "v1"
    vals[0].dead = True
    with pytest.raises(Unavailable, match="no validator of network 3 answered query"):
        run(c.query("compute", "account", 3))


def test_no_validator_answering_is_unavailable_naming_the_network_and_method() -> None:
    vals = [FakeValidator(f"v{i}", chain_state(), dead=True) for i in range(2)]
    with pytest.raises(Unavailable, match="no validator of network 3 answered account") as e:
        run(client(vals).nonce(ALICE.address))
    assert e.value.details == {"network_id": 3, "method": "account"}


def test_no_deployment_says_run_zg_up() -> None:
    def get_actor(name: str) -> Any:
        raise ValueError(f"Failed to look up actor {name}")
    with pytest.raises(Unavailable, match="run `zg up`"):
        run(ChainClient(0, get_actor=get_actor).committed_height())


def test_a_stale_nonce_is_reread_and_the_tx_sent_once_more() -> None:
    state = chain_state(nonce=5)
    [val] = [FakeValidator("v0", state)]
    tx = run(client([val]).send(ALICE, "da", "deposit", [1], nonce=2))
    assert tx.nonce == 5 and decode_tx(val.submitted[0]).nonce == 5


def test_other_refusals_are_typed_with_the_validators_reason() -> None:
    val = FakeValidator("v0", chain_state())
    with pytest.raises(TxRefused, match="refused da.poor: InsufficientBalance") as e:
        run(client([val]).send(ALICE, "da", "poor", []))
    assert e.value.details["reason"] == "InsufficientBalance" and val.submitted == []


def test_wait_nonce_long_polls_one_call_per_block_until_committed() -> None:
    state = chain_state(commit_at=3, pending_nonce=1)
    val = FakeValidator("v0", state)
    run(client([val]).wait_nonce(ALICE.address, 0, timeout_s=5))
    assert val.calls.count("wait_height") == 3
    assert all(0 < w <= 10.0 for w in state["waits"])  # each poll inside the call timeout


def test_wait_nonce_gives_up_at_its_deadline() -> None:
    val = FakeValidator("v0", chain_state())
    with pytest.raises(Unavailable, match="with nonce 0 not committed on network 3"):
        run(client([val]).wait_nonce(ALICE.address, 0, timeout_s=0.0))


def test_the_sync_client_blocks_on_the_same_calls() -> None:
    state = chain_state()
    vals = [FakeValidator("v0", state, dead=True), FakeValidator("v1", state)]
    manager = FakeManager(vals)
    sync = SyncChainClient(3, get_actor=lambda name: manager)
    assert sync.query("serving", "services")[0] == "v1"
    assert sync.send(ALICE, "serving", "fund", [1]).nonce == 0

    async def inside_a_running_loop() -> Any:  # e.g. from an async actor's sync helper
        return sync.nonce(ALICE.address)
    assert asyncio.run(inside_a_running_loop()) == 0


def test_a_batch_goes_on_consecutive_nonces_and_a_stale_one_is_resent_once() -> None:
    state = chain_state(nonce=4)
    val = FakeValidator("v0", state)
    txs = run(client([val]).send_batch(ALICE, [("flow", "confirm", [1]),
                                                ("flow", "confirm", [2])], nonce=1))
    assert [tx.nonce for tx in txs] == [4, 5]
    assert [decode_tx(raw).nonce for raw in val.submitted] == [4, 5]
    assert val.calls.count("submit_txs") == 2


def test_a_refusal_after_the_resend_or_with_a_fresh_nonce_is_raised_not_resent() -> None:
    val = FakeValidator("v0", chain_state(nonce=0, refuse_nonces=True))
    with pytest.raises(TxRefused, match="NonceError"):
        run(client([val]).send(ALICE, "flow", "confirm", [1], nonce=3))
    assert val.calls.count("submit_txs") == 2 and val.submitted == []
    val.calls.clear()
    with pytest.raises(TxRefused, match="NonceError"):
        run(client([val]).send(ALICE, "flow", "confirm", [1], nonce=0))
    assert val.calls.count("submit_txs") == 1
