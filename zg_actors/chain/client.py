"""The one way every pillar reaches a consensus network's validators.

`ChainClient` (async, for actors) asks a preferred validator first and the others in
turn, so one client's reads see one chain (a height it waited for, then the state at
that height; a nonce, then the tx that uses it) while clients of different actors
spread their reads over the set. It owns the call timeout, turns a Ray task error that
carries one of the product's errors back into that error, waits for heights and
nonces with the validators' long poll (`Validator.wait_height`), and re-reads a stale
nonce and resends once. `SyncChainClient` is the same for driver code (SDKs, CLI).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from zg_actors.chain.catch_up import ValidatorSyncing
from zg_actors.chain.network_manager import NETWORK_MANAGER_NAME
from zg_actors.chain.tx import Transaction, make_tx
from zg_actors.crypto.accounts import Account
from zg_actors.errors import InvalidInput, Unavailable, ZgError, unwrap

CALL_TIMEOUT_S = 20.0  # one validator call; a validator this slow is skipped for the next
COMMIT_TIMEOUT_S = 60.0  # default wait for a sent tx to be committed
# Tx refusals that mean "this account's nonce moved on without us" (txpool / entry check).
STALE_NONCE_ERRORS = ("NonceError", "NonceTooHigh")

GetActor = Callable[[str], Any]


def _ray_get_actor(name: str) -> Any:
    import ray  # the only Ray dependency: lookups are passed in by tests and callers

    return ray.get_actor(name)


class TxRefused(InvalidInput):
    """A validator's entry checks refused a tx: `reason` is its error class, as the
    validator reported it ("NonceError", "InsufficientBalance", ...)."""

    code = "TX_REFUSED"


def refusal(network_id: int, what: str, message: str, tx_hash: bytes) -> TxRefused:
    """A validator's "ClassName: message" refusal of a tx, typed."""
    reason = message.split(":", 1)[0] if ":" in message else message
    return TxRefused(f"network {network_id} refused {what}: {message}",
                     network_id=network_id, reason=reason, tx=tx_hash)


class ChainClient:
    """Reads and writes one network through any of its validators (async)."""

    def __init__(self, network_id: int, prefer: int = 0, get_actor: GetActor | None = None,
                 call_timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.network_id = network_id
        self.prefer = prefer
        self.call_timeout_s = call_timeout_s
        self._get_actor = get_actor or _ray_get_actor
        self._handles: list[Any] = []

    # ---- reaching validators -------------------------------------------------------------
    async def validators(self) -> list[Any]:
        """The network's validator handles, the preferred one first (looked up once)."""
        if not self._handles:
            try:
                manager = self._get_actor(NETWORK_MANAGER_NAME)
            except ValueError as exc:
                raise Unavailable("no zg-actors deployment in this Ray namespace: run "
                                  "`zg up`", network_id=self.network_id) from exc
            found = list((await manager.validator_handles.remote(self.network_id)).values())
            if not found:
                raise Unavailable(f"network {self.network_id} has no validators",
                                  network_id=self.network_id)
            first = self.prefer % len(found)
            self._handles = found[first:] + found[:first]
        return self._handles

    def forget(self) -> None:
        """Look the validators up again on the next call (the set changed)."""
        self._handles = []

    async def call(self, method: str, *args: Any) -> Any:
        """`method(*args)` on the first validator that answers; the product's own errors
        are raised as themselves, a dead, slow or syncing validator is skipped."""
        errors: list[str] = []
        handles = await self.validators()
        for turn, handle in enumerate(handles):
            try:
                answer = await asyncio.wait_for(getattr(handle, method).remote(*args),
                                                self.call_timeout_s)
            except Exception as exc:
                inner = unwrap(exc)
                if isinstance(inner, ZgError) and not isinstance(inner, ValidatorSyncing):
                    raise inner from None
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                continue
            if turn:  # ask the one that answered first from now on: reads stay on one chain
                self._handles = handles[turn:] + handles[:turn]
            return answer
        self.forget()
        raise Unavailable(f"no validator of network {self.network_id} answered {method}: "
                          f"{errors[:2]}", network_id=self.network_id, method=method)

    # ---- reads -------------------------------------------------------------------------
    async def query(self, module: str, method: str, *args: Any) -> Any:
        return await self.call("query", module, method, args)

    async def query_at(self, height: int, module: str, method: str, *args: Any) -> Any:
        """`query` at the state after committed block `height` (NotFound if not committed)."""
        return await self.call("query_at", height, module, method, args)

    async def blocks(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
        """Committed (block, certificate) encodings from `start`, at most `limit`."""
        return await self.call("get_blocks", start, limit)

    async def receipts_at(self, height: int) -> list[bytes]:
        return await self.call("receipts_at", height)

    async def account(self, address: bytes) -> dict:
        """{"balance", "nonce"} of `address` in committed state."""
        return await self.call("account", address)

    async def nonce(self, address: bytes) -> int:
        return (await self.account(address))["nonce"]

    async def committed_height(self) -> int:
        return await self.call("committed_height")

    async def wait_height(self, height: int, timeout_s: float) -> int:
        """The committed height once it reaches `height`, or after `timeout_s`: one call
        per block (a long poll), never a poll loop."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            # Each poll ends well inside the call timeout (the validator caps it too).
            left = max(0.0, min(deadline - time.monotonic(), self.call_timeout_s / 2))
            now = await self.call("wait_height", height, left)
            if now >= height or time.monotonic() >= deadline:
                return now

    async def wait_nonce(self, address: bytes, nonce: int,
                         timeout_s: float = COMMIT_TIMEOUT_S, what: str = "tx") -> None:
        """Return once `address`'s tx with `nonce` is committed (its account nonce passed
        it); Unavailable after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        height = 0
        while await self.nonce(address) <= nonce:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"{what} with nonce {nonce} not committed on network "
                                  f"{self.network_id} within {timeout_s:.0f} s",
                                  network_id=self.network_id, nonce=nonce)
            height = await self.wait_height(height + 1, left)

    # ---- writes ------------------------------------------------------------------------
    async def submit(self, raw_txs: list[bytes]) -> list[str | None]:
        """Hand txs to a validator's mempool; per tx None (accepted) or its refusal."""
        return await self.call("submit_txs", list(raw_txs))

    async def submit_one(self, tx: Transaction, what: str = "a tx") -> None:
        """Hand one tx over; TxRefused (with the validator's reason) if it is refused."""
        [error] = await self.submit([tx.encoded])
        if error is not None:
            raise refusal(self.network_id, what, error, tx.hash)

    async def send(self, account: Account, module: str, method: str, args: list | tuple,
                   nonce: int | None = None, fee: int = 0) -> Transaction:
        """Sign `module.method(args)` with `nonce` (the account's committed nonce if None)
        and hand it over; see send_batch."""
        [tx] = await self.send_batch(account, [(module, method, args)], nonce, fee)
        return tx

    async def send_batch(self, account: Account, calls: list[tuple[str, str, list | tuple]],
                         nonce: int | None = None, fee: int = 0) -> list[Transaction]:
        """Sign each (module, method, args) on consecutive nonces from `nonce` (the
        account's committed nonce if None) and hand them over in one call. A stale first
        nonce (the account also sent txs elsewhere) is re-read from the chain and the batch
        sent once more; any other refusal is TxRefused naming the first refused tx."""
        if nonce is None:
            nonce = await self.nonce(account.address)
        resent = False
        while True:
            txs = [make_tx(account, self.network_id, nonce + i, module, method, args, fee)
                   for i, (module, method, args) in enumerate(calls)]
            errors = await self.submit([tx.encoded for tx in txs])
            refused = [(tx, error) for tx, error in zip(txs, errors, strict=True)
                       if error is not None]
            if not refused:
                return txs
            tx, error = refused[0]
            exc = refusal(self.network_id, f"{tx.module}.{tx.method}", error, tx.hash)
            if resent or tx is not txs[0] or exc.details["reason"] not in STALE_NONCE_ERRORS:
                raise exc
            fresh = await self.nonce(account.address)
            if fresh == nonce:
                raise exc
            nonce, resent = fresh, True

    async def send_and_wait(self, account: Account, module: str, method: str,
                            args: list | tuple, timeout_s: float = COMMIT_TIMEOUT_S,
                            fee: int = 0) -> Transaction:
        """`send`, then wait until the tx is committed (it may still have failed: a
        module's own record says so)."""
        tx = await self.send(account, module, method, args, fee=fee)
        await self.wait_nonce(account.address, tx.nonce, timeout_s, f"{module}.{method}")
        return tx


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine of the async client from code that is not async; blocks."""
    return _LoopThread.run(coro)


class _LoopThread:
    """One event loop in a daemon thread, shared by every SyncChainClient of a process:
    driver code (and sync actors) runs the async client there, whatever loop the caller's
    own thread has."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, Any]) -> Any:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="zg-chain-client",
                                 daemon=True).start()
                cls._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result()


def _sync(method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    def run(self: SyncChainClient, *args: Any, **kwargs: Any) -> Any:
        return run_sync(method(self.chain, *args, **kwargs))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run


class SyncChainClient:
    """ChainClient for code that is not async: the same calls, blocking."""

    def __init__(self, network_id: int, prefer: int = 0, get_actor: GetActor | None = None,
                 call_timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.chain = ChainClient(network_id, prefer, get_actor, call_timeout_s)
        self.network_id = network_id

    def forget(self) -> None:
        self.chain.forget()

    call = _sync(ChainClient.call)
    query = _sync(ChainClient.query)
    query_at = _sync(ChainClient.query_at)
    blocks = _sync(ChainClient.blocks)
    receipts_at = _sync(ChainClient.receipts_at)
    account = _sync(ChainClient.account)
    nonce = _sync(ChainClient.nonce)
    committed_height = _sync(ChainClient.committed_height)
    wait_height = _sync(ChainClient.wait_height)
    wait_nonce = _sync(ChainClient.wait_nonce)
    submit = _sync(ChainClient.submit)
    submit_one = _sync(ChainClient.submit_one)
    send = _sync(ChainClient.send)
    send_batch = _sync(ChainClient.send_batch)
    send_and_wait = _sync(ChainClient.send_and_wait)


