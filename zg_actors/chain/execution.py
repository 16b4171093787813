"""The state machine of one consensus network: checks and applies txs, builds blocks.

Pure: state comes in as a read function over the committed state and goes out
as an Overlay (the block's write-set) that the validator persists with the
block.  Rules follow Ethereum's: a tx with a bad signature, wrong network,
wrong nonce or an unpayable fee makes a block invalid (a proposer never
includes one); a tx whose module call fails is included, pays its fee,
advances the nonce, and gets a failed receipt.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zg_actors.chain.block import Header
from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import BlockInfo, Context, Module, ModuleError, Receipt
from zg_actors.chain.tx import (
    Transaction,
    TxDeferred,
    TxError,
    UnknownTxMethod,
    check_nonce,
    check_transaction,
)
from zg_actors.crypto.encoding import encode
from zg_actors.crypto.keccak import keccak256
from zg_actors.crypto.merkle import merkle_root
from zg_actors.errors import InsufficientBalance
from zg_actors.store import from_u64, u64
from zg_actors.store.overlay import Overlay

log = logging.getLogger(__name__)

AUTH = "auth"  # namespace of account nonces
_VERIFIED_CACHE_LIMIT = 200_000
# Python's collector runs a young collection every 700 allocations by default; py-evm
# allocates thousands of objects per tx, nearly all freed by reference counting, and each
# full collection walks every live object (a validator's mempool and decoded-tx cache).
EXECUTION_GC_THRESHOLDS = (50_000, 20, 100)  # young allocations; young and middle passes


def tune_gc_for_execution() -> tuple[int, int, int]:
    """Collect less often in a process that executes blocks, and leave what is alive now
    (code, config, caches built at start) out of full collections; returns the
    thresholds that were in force, to restore them."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*EXECUTION_GC_THRESHOLDS)
    return before


@dataclass(frozen=True)
class ChainParams:
    network_id: int
    max_block_txs: int
    max_block_bytes: int
    max_tx_bytes: int
    min_tx_fee: int = 0


class FeeTooLow(TxError):
    code = "FEE_TOO_LOW"


class FeeUnpayable(TxError, InsufficientBalance):
    code = "FEE_UNPAYABLE"


@dataclass
class ExecutionResult:
    overlay: Overlay
    receipts: list[Receipt]
    state_root: bytes
    receipt_root: bytes


def state_root_after(prev_state_root: bytes, overlay: Overlay) -> bytes:
    """keccak(prev root || keccak(canonical write-set)): detects divergence, not a state proof."""
    write_set = [[key, b"" if value is None else b"\x01" + value]
                 for key, value in overlay.writes()]
    return keccak256(prev_state_root + keccak256(encode(write_set)))


def nonce_key(address: bytes) -> bytes:
    return AUTH.encode() + b"/nonce/" + address


def read_nonce(get: Callable[[bytes], bytes | None], address: bytes) -> int:
    """The account's next nonce: native txs and Ethereum txs share it."""
    raw = get(nonce_key(address))
    return from_u64(raw) if raw else 0


class StateMachine:
    def __init__(self, params: ChainParams, modules: Sequence[Module]) -> None:
        self.params = params
        self.modules = {m.name: m for m in modules}
        # tx hashes whose signature already checked out in this process; the hash
        # covers the signature, so a hit is the same check's result.
        self._verified: set[bytes] = set()

    def genesis(self, base_get: Callable[[bytes], bytes | None]) -> Overlay:
        overlay = Overlay(base_get)
        ctx = Context(BlockInfo(self.params.network_id, 0, 0, bytes(20)), overlay)
        for module in self.modules.values():
            module.genesis(ctx.state(module.name))
        return overlay

    def check_stateless(self, tx: Transaction) -> None:
        """Signature, network id, size, fee floor, module name: entry and execution checks."""
        if tx.eth is not None:
            self._ethereum(tx).check_stateless(tx, self.params.max_tx_bytes)
            return
        if tx.hash not in self._verified:
            check_transaction(tx, self.params.network_id, self.params.max_tx_bytes)
            if len(self._verified) > _VERIFIED_CACHE_LIMIT:
                self._verified.clear()
            self._verified.add(tx.hash)
        if tx.fee < self.params.min_tx_fee:
            raise FeeTooLow(f"fee {tx.fee} below the minimum {self.params.min_tx_fee}",
                            fee=tx.fee, minimum=self.params.min_tx_fee)
        if tx.module not in self.modules:
            raise TxError(f"unknown module {tx.module!r}", module=tx.module)

    def check_method(self, tx: Transaction) -> None:
        """At mempool entry only: a call to a method its module lacks is refused there.
        In a block such a tx stays valid: like any call that fails, it pays its fee and
        gets a failed receipt (the rule in this module's docstring)."""
        if tx.eth is not None:
            return
        if not self.modules[tx.module].has_method(tx.method):
            raise UnknownTxMethod(f"module {tx.module!r} has no method {tx.method!r}",
                                  module=tx.module, method=tx.method)

    def check_account(self, base_get: Callable[[bytes], bytes | None],
                      tx: Transaction) -> None:
        """At mempool entry, on the committed state: an Ethereum tx's fee cap and funds
        (Geth refuses there what cannot pay for gas * price + value)."""
        if tx.eth is not None:
            self._ethereum(tx).check_account(Overlay(base_get), tx)

    def _ethereum(self, tx: Transaction) -> Any:  # the evm module (evm/ imports chain/)
        if tx.module not in self.modules:
            raise TxError(f"unknown module {tx.module!r}: this network runs no EVM",
                          module=tx.module)
        return self.modules[tx.module]

    def account_nonce(self, get: Callable[[bytes], bytes | None], address: bytes) -> int:
        return read_nonce(get, address)

    def apply_tx(self, ctx: Context, tx: Transaction) -> Receipt:
        """Check and apply one tx on ctx.overlay; TxError means the tx may not be in a block."""
        self.check_stateless(tx)
        if tx.eth is not None:
            return self._ethereum(tx).apply_transaction(ctx, tx)
        check_nonce(tx, self.account_nonce(ctx.overlay.get, tx.sender))
        fee_state = ctx.state(token.MODULE)
        try:
            token.debit(fee_state, tx.sender, tx.fee)
        except InsufficientBalance as exc:
            raise FeeUnpayable(f"sender cannot pay fee {tx.fee}: {exc}", fee=tx.fee,
                               sender=tx.sender) from exc
        token.credit(fee_state, ctx.block.proposer, tx.fee)
        ctx.overlay.put(nonce_key(tx.sender), u64(tx.nonce + 1))
        call = Context(ctx.block, ctx.overlay.child(), tx.sender, tx.hash, tx.fee)
        try:
            result = self.modules[tx.module].apply(call, tx.method, tx.args)
        except ModuleError as exc:
            return Receipt(tx.hash, False, tx.fee, (), str(exc))
        except TxError:
            raise
        except Exception as exc:  # noqa: BLE001 - a handler's bug must not halt the chain
            # Every validator runs the same code on the same tx, so each fails it alike; a
            # tx that crashed block building would stay in every mempool and stop proposals.
            log.error("%s.%s raised %s on tx 0x%s", tx.module, tx.method, type(exc).__name__,
                      tx.hash.hex(), exc_info=exc)
            return Receipt(tx.hash, False, tx.fee, (),
                           f"InternalError: {tx.module}.{tx.method} raised "
                           f"{type(exc).__name__}: {exc}")
        ctx.overlay.merge(call.overlay)
        return Receipt(tx.hash, True, tx.fee, tuple(call.events), "", result)

    def _begin(self, base_get: Callable[[bytes], bytes | None], info: BlockInfo) -> Context:
        ctx = Context(info, Overlay(base_get))
        for module in self.modules.values():
            module.begin_block(ctx)
        return ctx

    def _finish(self, ctx: Context, receipts: list[Receipt],
                prev_state_root: bytes) -> ExecutionResult:
        for module in self.modules.values():
            module.end_block(ctx)
        block_receipt = Receipt(b"", True, 0, tuple(ctx.events))
        all_receipts = [block_receipt, *receipts]
        return ExecutionResult(ctx.overlay, all_receipts,
                               state_root_after(prev_state_root, ctx.overlay),
                               merkle_root([r.hash for r in all_receipts]))

    def execute_block(self, base_get: Callable[[bytes], bytes | None], header: Header,
                      txs: Sequence[Transaction], prev_state_root: bytes) -> ExecutionResult:
        """Apply a proposed block; TxError if any tx is not allowed in a block.

        Receipt 0 is the block's own (begin-block events such as the reward).
        """
        ctx = self._begin(base_get, BlockInfo(header.network_id, header.height,
                                              header.time_ms, header.proposer,
                                              header.prev_hash))
        receipts = [self.apply_tx(ctx, tx) for tx in txs]
        return self._finish(ctx, receipts, prev_state_root)

    def build_block(self, base_get: Callable[[bytes], bytes | None], info: BlockInfo,
                    candidates: Iterable[Transaction], prev_state_root: bytes,
                    out_of_time: Callable[[], bool] | None = None,
                    ) -> tuple[list[Transaction], list[tuple[Transaction, TxError]],
                               ExecutionResult]:
        """Fill a block from candidates up to the limits; returns (included, rejected, result).

        Candidates that fail are skipped (and reported so the mempool drops them);
        a nonce gap stops that sender for this block only. `out_of_time()` true (the
        proposer's time to build is spent) ends the block once it holds a tx.
        """
        ctx = self._begin(base_get, info)
        included: list[Transaction] = []
        rejected: list[tuple[Transaction, TxError]] = []
        receipts: list[Receipt] = []
        size = 0
        for tx in candidates:
            if len(included) >= self.params.max_block_txs:
                break
            if included and out_of_time is not None and out_of_time():
                break
            if size + tx.size > self.params.max_block_bytes:
                continue
            checkpoint = ctx.overlay.child()
            tx_ctx = Context(ctx.block, checkpoint)
            try:
                receipt = self.apply_tx(tx_ctx, tx)
            except TxError as exc:
                if isinstance(exc, TxDeferred) or _is_future_nonce(exc, tx):
                    continue  # valid later: a nonce still missing, gas used up, fee cap
                rejected.append((tx, exc))
                continue
            ctx.overlay.merge(checkpoint)
            included.append(tx)
            receipts.append(receipt)
            size += tx.size
        return included, rejected, self._finish(ctx, receipts, prev_state_root)

    def prepares(self, tx: Transaction) -> bool:
        """Whether the tx's module does any preparation (overrides Module.prepare)."""
        module = self.modules.get(tx.module)
        return module is not None and type(module).prepare is not Module.prepare

    def prepare(self, base_get: Callable[[bytes], bytes | None], tx: Transaction) -> None:
        """Let the tx's module prepare it on the committed state (Module.prepare)."""
        ctx = Context(BlockInfo(self.params.network_id, 0, 0, bytes(20)), Overlay(base_get))
        try:
            self.modules[tx.module].prepare(ctx.state(tx.module), tx.method, tx.args)
        except Exception:  # noqa: BLE001 - preparing decides nothing; execution will
            return

    def query(self, base_get: Callable[[bytes], bytes | None], module: str, method: str,
              args: tuple) -> object:
        if module not in self.modules:
            raise TxError(f"unknown module {module!r}", module=module)
        ctx = Context(BlockInfo(self.params.network_id, 0, 0, bytes(20)), Overlay(base_get))
        return self.modules[module].query(ctx.state(module), method, args)


def _is_future_nonce(exc: TxError, tx: Transaction) -> bool:
    expected = exc.details.get("expected")
    return isinstance(expected, int) and tx.nonce > expected
