"""`evm`: every network's EVM, on py-evm's Cancun fork (docs/spec/evm.md).

An Ethereum tx is checked as Geth checks it (chain id, signature, size, gas, nonce,
funds), then applied to one py-evm state kept open across the block: the trie root is
computed once, at end_block (applying each tx through a mining chain rebuilt the block
per tx: 2-3 tx/s). Fees: gas used x effective gas price, all of it to the proposer, as
native fees go and as Cosmos EVMs (0G's chain) pay them: no ZG is created by EVM
execution, and ZG it destroys (EIP-6780 self-destruct to self) counts as burned, so the
token module's supply invariant holds as it did. A tx's chain receipt carries, as its
result, [typed Ethereum receipt, gas used, effective gas price, created contract, output].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth.abc import ComputationAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS
from eth.exceptions import OutOfGas, Revert
from eth.vm.execution_context import ExecutionContext
from eth.vm.spoof import SpoofTransaction
from eth_utils import ValidationError

from zg_actors.chain.execution import read_nonce
from zg_actors.chain.modules import token
from zg_actors.chain.modules.base import BlockInfo, Context, Module, ModuleState, Receipt
from zg_actors.chain.tx import Transaction, TxDeferred, TxError, check_nonce
from zg_actors.config import EvmConfig
from zg_actors.crypto.encoding import Encodable, as_bytes, as_int, as_list
from zg_actors.errors import InsufficientBalance, InvalidInput, Unavailable
from zg_actors.evm.params import (
    BLOOM_BYTES,
    DYNAMIC_FEE_TX_TYPE,
    FORK,
    MODULE,
    next_base_fee,
)
from zg_actors.evm.state import LedgerState, OverlayDB, state_db
from zg_actors.store import u64
from zg_actors.store.overlay import Overlay

log = logging.getLogger(__name__)

_BASE_FEE = b"base_fee"  # wei per gas of the next block
_ROOT = b"root"  # the EVM state root (accounts' code and storage tries) after the last block
_RECEIPT = b"receipt/"  # + tx hash: [height, receipt, gas used, price, contract, output]
_BLOCK_GAS = b"gas/"  # + u64 height: [base fee, gas used, logs bloom (b"": none)] of a block
_BLOCK_HASH = b"hash/"  # + u64 (height % BLOCKHASH_WINDOW): [height, block hash], a ring
BLOCKHASH_WINDOW = 256  # the BLOCKHASH opcode reaches this many blocks back
ZERO_HASH32 = bytes(32)
CALL_GAS_CAP = 50_000_000  # gas an eth_call may burn when it names none (Geth's RPCGasCap)
TRANSFER_GAS = 21_000


class OversizedTx(TxError, InvalidInput):
    code = "OVERSIZED_DATA"


class WrongChainId(TxError, InvalidInput):
    code = "WRONG_CHAIN_ID"


class IntrinsicGasTooLow(TxError, InvalidInput):
    code = "INTRINSIC_GAS_TOO_LOW"


class ExceedsBlockGasLimit(TxError, InvalidInput):
    code = "EXCEEDS_BLOCK_GAS_LIMIT"


class InsufficientFunds(TxError, InsufficientBalance):
    code = "INSUFFICIENT_FUNDS"


class FeeCapTooLow(TxDeferred, InvalidInput):
    """Valid, but not at this base fee: it waits for the fee to fall."""

    code = "MAX_FEE_BELOW_BASE_FEE"


class EvmInternalError(TxError):
    """py-evm raised something other than a validation error (a bug): the tx is refused
    and dropped, as every validator would do alike, instead of halting block building."""

    code = "EVM_INTERNAL_ERROR"


class BlockGasFull(TxDeferred, Unavailable):
    """Valid, but this block has no gas left for it: it goes into a later block."""

    code = "BLOCK_GAS_FULL"


@dataclass
class EvmBlock:
    """The py-evm state of one block, open across its txs."""

    state: LedgerState
    db: OverlayDB
    base_fee: int
    gas_used: int = 0
    bloom: int = 0  # the logs bloom of its receipts, as Ethereum headers carry it
    applied: int = 0  # txs applied: a block whose EVM txs all failed changes no EVM state


def effective_gas_price(eth: SignedTransactionAPI, base_fee: int) -> int:
    if eth.type_id == DYNAMIC_FEE_TX_TYPE:
        return min(eth.max_fee_per_gas, base_fee + eth.max_priority_fee_per_gas)
    return eth.gas_price


def max_fee_per_gas(eth: SignedTransactionAPI) -> int:
    return eth.max_fee_per_gas if eth.type_id == DYNAMIC_FEE_TX_TYPE else eth.gas_price


def vm_error(computation: ComputationAPI) -> str:
    """The failure as Geth words it in receipts and RPC errors."""
    if isinstance(computation.error, Revert):
        return "execution reverted"
    if isinstance(computation.error, OutOfGas):
        return "out of gas"
    return f"{type(computation.error).__name__}: {computation.error}"


class EvmModule(Module):
    name = MODULE

    def __init__(self, config: EvmConfig, network_id: int) -> None:
        self.config = config
        self.chain_id = config.chain_id(network_id)

    def genesis(self, state: ModuleState) -> None:
        state.put_int(_BASE_FEE, self.config.initial_base_fee)

    def begin_block(self, ctx: Context) -> None:
        """Keep the parent's hash for BLOCKHASH (a block's own hash is known only once
        its header, which holds the state root, is made)."""
        parent = ctx.block.height - 1
        ctx.state(MODULE).put_obj(_BLOCK_HASH + u64(parent % BLOCKHASH_WINDOW),
                                  [parent, ctx.block.prev_hash])

    def _ancestor_hashes(self, state: ModuleState, height: int) -> list[bytes]:
        """Hashes of the blocks before `height`, newest first, as far as kept."""
        hashes = []
        for ancestor in range(height - 1, max(-1, height - 1 - BLOCKHASH_WINDOW), -1):
            kept = state.get_obj(_BLOCK_HASH + u64(ancestor % BLOCKHASH_WINDOW))
            if kept is None or as_int(as_list(kept, 2)[0]) != ancestor:
                break
            hashes.append(as_bytes(as_list(kept, 2)[1]))
        return hashes

    def has_method(self, method: str) -> bool:
        return False  # Ethereum txs carry raw bytes, not module calls

    # ---- checks ----------------------------------------------------------------------
    def check_stateless(self, tx: Transaction, max_tx_bytes: int) -> None:
        """Size, chain id and gas: at mempool entry and again in a block."""
        eth = tx.eth
        if tx.size > max_tx_bytes:
            raise OversizedTx(f"oversized data: tx is {tx.size} bytes, limit {max_tx_bytes}",
                              size=tx.size, limit=max_tx_bytes)
        if eth.chain_id is None:  # a legacy tx signed before EIP-155: replayable anywhere
            raise WrongChainId("invalid sender: only replay-protected (EIP-155) transactions "
                               "allowed", expected=self.chain_id)
        if eth.chain_id != self.chain_id:
            raise WrongChainId(f"invalid sender: invalid chain id for signer: have "
                               f"{eth.chain_id} want {self.chain_id}", chain_id=eth.chain_id,
                               expected=self.chain_id)
        if eth.gas > self.config.block_gas_limit:
            raise ExceedsBlockGasLimit(f"exceeds block gas limit: gas {eth.gas}, limit "
                                       f"{self.config.block_gas_limit}", gas=eth.gas,
                                       limit=self.config.block_gas_limit)
        if eth.gas < eth.intrinsic_gas:
            raise IntrinsicGasTooLow(f"intrinsic gas too low: have {eth.gas}, want "
                                     f"{eth.intrinsic_gas}", gas=eth.gas,
                                     needed=eth.intrinsic_gas)

    def check_account(self, overlay: Overlay, tx: Transaction) -> None:
        """Fee cap and funds against `overlay` (committed state at entry, the block's own
        in a block): Geth's txpool words."""
        eth = tx.eth
        state = ModuleState(overlay, MODULE)
        base_fee = state.get_int(_BASE_FEE)
        if max_fee_per_gas(eth) < base_fee:
            raise FeeCapTooLow(f"max fee per gas less than block base fee: address "
                               f"0x{tx.sender.hex()}, maxFeePerGas: {max_fee_per_gas(eth)}, "
                               f"baseFee: {base_fee}", max_fee=max_fee_per_gas(eth),
                               base_fee=base_fee)
        balance = token.balance_of(ModuleState(overlay, token.MODULE), tx.sender)
        cost = eth.gas * max_fee_per_gas(eth) + eth.value
        if balance < cost:
            raise InsufficientFunds(f"insufficient funds for gas * price + value: address "
                                    f"0x{tx.sender.hex()} have {balance} want {cost}",
                                    address=tx.sender, balance=balance, needed=cost)

    # ---- execution -------------------------------------------------------------------
    def _open(self, overlay: Overlay, info: BlockInfo, base_fee: int) -> EvmBlock:
        db = state_db(overlay)
        module_state = ModuleState(overlay, MODULE)
        root = module_state.get(_ROOT) or BLANK_ROOT_HASH
        context = ExecutionContext(
            coinbase=info.proposer, timestamp=info.time_ms // 1000, block_number=info.height,
            difficulty=0, mix_hash=ZERO_HASH32, gas_limit=self.config.block_gas_limit,
            prev_hashes=self._ancestor_hashes(module_state, info.height),
            chain_id=self.chain_id, base_fee_per_gas=base_fee,
            excess_blob_gas=0)
        state = LedgerState(db, context, root)
        state.bind(overlay)
        return EvmBlock(state, db.wrapped_db, base_fee)

    def _block(self, ctx: Context) -> EvmBlock:
        block = ctx.block.scratch.get(MODULE)
        if block is None:
            base_fee = ctx.state(MODULE).get_int(_BASE_FEE)
            block = ctx.block.scratch[MODULE] = self._open(ctx.overlay, ctx.block, base_fee)
        return block

    def apply_transaction(self, ctx: Context, tx: Transaction) -> Receipt:
        """Check and apply one Ethereum tx on ctx.overlay; TxError: not in this block."""
        eth = tx.eth
        block = self._block(ctx)
        if block.gas_used + eth.gas > self.config.block_gas_limit:
            raise BlockGasFull(f"block has {self.config.block_gas_limit - block.gas_used} "
                               f"gas left, tx wants {eth.gas}", gas=eth.gas)
        check_nonce(tx, _nonce(ctx.overlay, tx.sender))
        self.check_account(ctx.overlay, tx)
        block.db.overlay = ctx.overlay
        block.state.bind(ctx.overlay)
        snapshot = block.state.snapshot()
        try:
            computation = block.state.apply_transaction(eth)
        except ValidationError as exc:
            block.state.revert(snapshot)
            raise TxError(f"invalid Ethereum tx: {exc}", tx=tx.hash) from exc
        except Exception as exc:  # noqa: BLE001 - a py-evm bug must not halt the chain
            block.state.revert(snapshot)
            log.error("py-evm raised %s on tx 0x%s", type(exc).__name__, tx.hash.hex(),
                      exc_info=exc)
            raise EvmInternalError(f"EVM internal error: {type(exc).__name__}: {exc}",
                                   tx=tx.hash) from exc
        block.state.commit(snapshot)
        gas_used = FORK.finalize_gas_used(eth, computation)
        # py-evm burns the base fee share; the proposer gets all of the fee here.
        block.state.delta_balance(ctx.block.proposer, gas_used * block.base_fee)
        block.state.lock_changes()
        destroyed = -block.state.balance_change
        if destroyed:  # a contract that self-destructed to itself in its creating tx
            token.destroy(ctx.state(token.MODULE), destroyed)
        block.gas_used += gas_used
        block.applied += 1
        price = effective_gas_price(eth, block.base_fee)
        ok = not computation.is_error
        receipt = eth.make_receipt(b"\x01" if ok else b"", block.gas_used,
                                   computation.get_log_entries())
        block.bloom |= receipt.bloom
        created = (computation.msg.storage_address
                   if ok and eth.to == CREATE_CONTRACT_ADDRESS else b"")
        record: list[Encodable] = [ctx.block.height, receipt.encode(), gas_used, price,
                                   created, computation.output]
        ctx.state(MODULE).put_obj(_RECEIPT + tx.hash, record)
        return Receipt(tx.hash, ok, gas_used * price, (), "" if ok else vm_error(computation),
                       record[1:])

    def end_block(self, ctx: Context) -> None:
        """Persist the block's trie changes and root once; move the base fee (EIP-1559)."""
        state = ctx.state(MODULE)
        block: EvmBlock | None = ctx.block.scratch.pop(MODULE, None)
        base_fee = state.get_int(_BASE_FEE)
        gas_used = bloom = 0
        if block is not None and block.applied:
            # Only then: opening the state wrote the fork's system contracts, which a
            # validator that never saw this block's failed EVM txs would not write.
            block.db.overlay = ctx.overlay
            block.state.bind(ctx.overlay)
            block.state.persist()
            state.put(_ROOT, block.state.state_root)
            gas_used, bloom = block.gas_used, block.bloom
        state.put_obj(_BLOCK_GAS + u64(ctx.block.height),
                      [base_fee, gas_used, bloom.to_bytes(BLOOM_BYTES, "big") if bloom else b""])
        following = next_base_fee(base_fee, gas_used, self.config.block_gas_limit,
                                  self.config.min_base_fee)
        if following != base_fee:
            state.put_int(_BASE_FEE, following)

    # ---- queries (the JSON-RPC's reads, at the state they are given) ------------------
    def query_chain_id(self, state: ModuleState) -> int:
        return self.chain_id

    def query_base_fee(self, state: ModuleState) -> int:
        return state.get_int(_BASE_FEE)

    def query_block_gas(self, state: ModuleState, height: int) -> dict | None:
        """A committed block's gas and logs bloom: {"base_fee", "gas_used", "gas_limit",
        "bloom"} (None if no such block; "bloom" None where a record predates it)."""
        raw = state.get_obj(_BLOCK_GAS + u64(height))
        if raw is None:
            return None
        fields = as_list(raw)
        bloom = as_bytes(fields[2]) if len(fields) > 2 else None
        return {"base_fee": as_int(fields[0]), "gas_used": as_int(fields[1]),
                "gas_limit": self.config.block_gas_limit,
                "bloom": None if bloom is None else int.from_bytes(bloom, "big")}

    def query_root(self, state: ModuleState) -> bytes:
        return state.get(_ROOT) or BLANK_ROOT_HASH

    def query_balance(self, state: ModuleState, address: bytes) -> int:
        return token.balance_of(ModuleState(state.overlay, token.MODULE), address)

    def query_nonce(self, state: ModuleState, address: bytes) -> int:
        return _nonce(state.overlay, address)

    def query_code(self, state: ModuleState, address: bytes) -> bytes:
        return self._read_state(state).get_code(address)

    def query_storage(self, state: ModuleState, address: bytes, slot: int) -> int:
        return self._read_state(state).get_storage(address, slot)

    def query_receipt(self, state: ModuleState, tx_hash: bytes) -> dict | None:
        """The receipt of a committed tx: height, Ethereum receipt (typed encoding),
        gas used, effective gas price, created contract (b"" if none), output."""
        raw = state.get_obj(_RECEIPT + tx_hash)
        if raw is None:
            return None
        height, receipt, gas_used, price, created, output = as_list(raw, 6)
        return {"height": as_int(height), "receipt": as_bytes(receipt),
                "gas_used": as_int(gas_used), "effective_gas_price": as_int(price),
                "contract_address": as_bytes(created), "output": as_bytes(output)}

    def query_call(self, state: ModuleState, sender: bytes, to: bytes, data: bytes = b"",
                   value: int = 0, gas: int = CALL_GAS_CAP, height: int = 0,
                   time_ms: int = 0) -> dict:
        """eth_call: run a message at this state and throw the changes away; returns
        {"ok", "output", "gas_used", "error"} (a revert's data is its output)."""
        overlay = state.overlay.child()
        # A call pays no gas, so it sees no base fee (Geth's eth_call does the same).
        block = self._open(overlay, BlockInfo(0, height, time_ms, bytes(20)), 0)
        unsigned = FORK.get_transaction_builder().create_unsigned_transaction(
            nonce=_nonce(overlay, sender), gas_price=0, gas=gas,
            to=to or CREATE_CONTRACT_ADDRESS, value=value, data=data)
        try:
            computation = block.state.costless_execute_transaction(
                SpoofTransaction(unsigned, from_=sender))
        except ValidationError as exc:
            raise InvalidInput(f"call not executable: {exc}", sender=sender) from exc
        ok = not computation.is_error
        return {"ok": ok, "output": computation.output,
                "gas_used": FORK.finalize_gas_used(unsigned, computation),
                "error": "" if ok else vm_error(computation)}

    def query_estimate_gas(self, state: ModuleState, sender: bytes, to: bytes,
                           data: bytes = b"", value: int = 0, height: int = 0,
                           time_ms: int = 0) -> int:
        """eth_estimateGas: the least gas with which the call succeeds (Geth's binary
        search); a call that fails even at the block gas limit raises InvalidInput."""
        def succeeds(gas: int) -> dict:
            return self.query_call(state, sender, to, data, value, gas, height, time_ms)

        high = self.config.block_gas_limit
        top = succeeds(high)
        if not top["ok"]:
            raise InvalidInput(f"gas required exceeds allowance ({high}) or always failing "
                               f"transaction: {top['error']}", error=top["error"],
                               output=top["output"])
        low = max(TRANSFER_GAS, top["gas_used"]) - 1
        while low + 1 < high:
            middle = (low + high) // 2
            if succeeds(middle)["ok"]:
                high = middle
            else:
                low = middle
        return high

    def _read_state(self, state: ModuleState) -> LedgerState:
        overlay = state.overlay.child()
        return self._open(overlay, BlockInfo(0, 0, 0, bytes(20)), 0).state


def _nonce(overlay: Overlay, address: bytes) -> int:
    return read_nonce(overlay.get, address)

