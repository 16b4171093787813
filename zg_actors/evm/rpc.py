"""The Ethereum JSON-RPC of one network (docs/spec/evm.md): what web3.py, ethers, Foundry's
cast and wallets call, answered from the network's validators through the chain client.

Pure: no Ray and no server; `evm/serve.py` puts the registry on Ray Serve.

    api = EthApi(ChainClient(network_id), config.networks.evm, network_id)
    registry = api.registry()      # every eth_* / net_* / web3_* method

Params and answers are Geth's: quantities as 0x hex without leading zeros, data as 0x
hex, block tags latest/safe/finalized/pending (the committed head: a committed block is
final), earliest (0) or a number. Errors carry Geth's messages: a bad param is -32602
"invalid argument N: ...", a refused tx -32000 with the txpool's words, a reverted call
3 "execution reverted" with the revert data in `data`. Committed blocks never change, so
their Ethereum view (txs, receipts, logs) is kept per height once built.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Protocol

from eth_utils import to_checksum_address

from zg_actors.chain.block import Header
from zg_actors.chain.tx import (
    MalformedTransaction,
    Transaction,
    TxError,
    decode_tx,
    ethereum_tx_hash,
    is_ethereum_encoding,
)
from zg_actors.config import EvmConfig
from zg_actors.crypto.encoding import as_bytes, as_int, as_list, decode
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput, NotFound, ZgError
from zg_actors.evm.params import BLOOM_BYTES, DYNAMIC_FEE_TX_TYPE, FORK, FORK_NAME
from zg_actors.rpc.jsonrpc import INVALID_PARAMS, SERVER_ERROR, Registry, RpcError

EXECUTION_REVERTED = 3  # Geth's code for a reverted eth_call / eth_estimateGas
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Solidity/Vyper's Error(string)
ZERO_HASH = bytes(32)
ZERO_ADDRESS = bytes(20)
EMPTY_UNCLES_HASH = keccak256(bytes([0xC0]))  # keccak(rlp([])): no uncles, ever
MAX_FEE_HISTORY_BLOCKS = 1_024  # Geth's maxBlockCount
BLOCK_CACHE = 2_048  # committed blocks' Ethereum views kept per replica
HEADER_SCAN_BATCH = 64  # blocks per call when looking a block hash up
FILTER_ID_BYTES = 16
LATEST_TAGS = ("latest", "safe", "finalized", "pending")


class Chain(Protocol):
    """What the API reads and writes through (zg_actors.chain.client.ChainClient)."""

    async def committed_height(self) -> int: ...
    async def query(self, module: str, method: str, *args: Any) -> Any: ...
    async def query_at(self, height: int, module: str, method: str, *args: Any) -> Any: ...
    async def blocks(self, start: int, limit: int) -> list[tuple[bytes, bytes]]: ...
    async def receipts_at(self, height: int) -> list[bytes]: ...
    async def submit(self, raw_txs: list[bytes]) -> list[str | None]: ...


# ---- params (Geth's hexutil rules) and answers --------------------------------------------
def invalid_argument(index: int, why: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid argument {index}: {why}")


def quantity(value: int) -> str:
    return hex(value)


def hexdata(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def address_out(value: bytes) -> str:
    return to_checksum_address(bytes(value))


def parse_quantity(value: Any, index: int) -> int:
    if not isinstance(value, str):
        raise invalid_argument(index, f"json: cannot unmarshal non-string {value!r} into Go "
                               "value of type hexutil.Big")
    if not value.startswith(("0x", "0X")):
        raise invalid_argument(index, "hex string without 0x prefix")
    digits = value[2:]
    if not digits:
        raise invalid_argument(index, "hex string \"0x\"")
    if len(digits) > 1 and digits[0] == "0":
        raise invalid_argument(index, "hex number with leading zero digits")
    try:
        return int(digits, 16)
    except ValueError:
        raise invalid_argument(index, f"invalid hex string {value!r}") from None


def parse_data(value: Any, index: int, size: int | None = None, kind: str = "hexutil.Bytes"
               ) -> bytes:
    if not isinstance(value, str):
        raise invalid_argument(index, f"json: cannot unmarshal non-string {value!r} into Go "
                               f"value of type {kind}")
    if not value.startswith(("0x", "0X")):
        raise invalid_argument(index, f"json: cannot unmarshal hex string without 0x prefix "
                               f"into Go value of type {kind}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise invalid_argument(index, f"invalid hex string {value!r}") from None
    if size is not None and len(raw) != size:
        raise invalid_argument(index, f"hex string has length {2 * len(raw)}, want "
                               f"{2 * size} for {kind}")
    return raw


def parse_address(value: Any, index: int) -> bytes:
    return parse_data(value, index, 20, "common.Address")


def parse_hash(value: Any, index: int) -> bytes:
    return parse_data(value, index, 32, "common.Hash")


def parse_slot(value: Any, index: int) -> int:
    """A storage slot: Geth takes any 0x hex of up to 32 bytes (leading zeros allowed)."""
    if isinstance(value, str) and len(value) % 2:  # "0x0": an odd number of digits
        value = value[:2] + "0" + value[2:]
    raw = parse_data(value, index)
    if len(raw) > 32:
        raise invalid_argument(index, f"hex string has length {2 * len(raw)}, want at most 64")
    return int.from_bytes(raw, "big")


def revert_reason(output: bytes) -> str:
    """Geth's message for a revert: with the Error(string) reason when there is one."""
    if output[:4] == ERROR_SELECTOR and len(output) >= 68:
        try:
            length = int.from_bytes(output[36:68], "big")
            reason = output[68:68 + length].decode()
        except (UnicodeDecodeError, OverflowError):
            return "execution reverted"
        return f"execution reverted: {reason}"
    return "execution reverted"


def tx_refusal(message: str) -> RpcError:
    """A validator's "ClassName: message" refusal as Geth answers it (-32000, its words;
    a tx whose fields do not decode is an rlp error, as decode_refusal words it)."""
    kind, _, words = message.partition(": ")
    if not words:
        return RpcError(SERVER_ERROR, message)
    if kind == MalformedTransaction.__name__:
        return RpcError(SERVER_ERROR, f"rlp: {words.split(': ', 1)[-1]}")
    return RpcError(SERVER_ERROR, words)


def decode_refusal(exc: TxError) -> RpcError:
    """A raw tx that does not decode: Geth's words (rlp errors and unknown types)."""
    if isinstance(exc, MalformedTransaction):
        detail = str(exc).split(": ", 1)[-1]
        return RpcError(SERVER_ERROR, f"rlp: {detail}")
    return RpcError(SERVER_ERROR, str(exc))


# ---- the Ethereum view of a committed block -------------------------------------------------
@dataclass
class EthLog:
    address: bytes
    topics: list[bytes]
    data: bytes
    log_index: int
    tx_index: int
    tx_hash: bytes

    def to_json(self, block: BlockView) -> dict:
        return {"address": address_out(self.address),
                "topics": [hexdata(t) for t in self.topics], "data": hexdata(self.data),
                "blockNumber": quantity(block.height), "blockHash": hexdata(block.hash),
                "transactionHash": hexdata(self.tx_hash),
                "transactionIndex": quantity(self.tx_index),
                "logIndex": quantity(self.log_index), "removed": False}


@dataclass
class EthReceipt:
    status: int
    cumulative_gas: int
    gas_used: int
    price: int
    contract: bytes
    bloom: int
    logs: list[EthLog]


@dataclass
class BlockView:
    """A committed block as Ethereum clients see it: its EVM txs (native zg txs are not
    Ethereum txs), in block order. What a header-and-hashes answer needs is read at once;
    the txs (their senders recovered) and receipts only when an answer needs them
    (EthApi.block(height, full=True)), as Geth serves a block without its receipts."""

    height: int
    hash: bytes
    parent_hash: bytes
    header: Header | None  # None: the genesis, which has no block
    size: int
    raw_txs: list[bytes]  # the Ethereum txs' raw bytes
    tx_hashes: list[bytes]
    eth_indexes: list[int]  # each Ethereum tx's index among all the block's txs
    base_fee: int
    gas_used: int
    gas_limit: int
    stored_bloom: int | None  # from the block's record; None: the record predates it
    txs: list[Transaction] | None = None  # loaded by EthApi.block(height, full=True)
    receipts: list[EthReceipt] | None = None

    @property
    def loaded(self) -> bool:
        return self.receipts is not None

    @property
    def bloom(self) -> int:
        if self.stored_bloom is not None:
            return self.stored_bloom
        bloom = 0
        for receipt in self.receipts:
            bloom |= receipt.bloom
        return bloom

    def logs(self) -> list[EthLog]:
        return [log for receipt in self.receipts for log in receipt.logs]


def _light_view(raw: bytes, block_gas: dict) -> BlockView:
    """A committed block's view from its bytes, its txs not decoded (no sender recovered)."""
    header_raw, txs_raw, _last = as_list(decode(raw), 3)
    header = Header.decode(as_bytes(header_raw))
    raws = [as_bytes(t) for t in as_list(txs_raw)]
    indexes = [i for i, tx in enumerate(raws) if is_ethereum_encoding(tx)]
    eth_raws = [raws[i] for i in indexes]
    return BlockView(header.height, header.hash, header.prev_hash, header, len(raw),
                     eth_raws, [keccak256(tx) for tx in eth_raws], indexes,
                     block_gas["base_fee"], block_gas["gas_used"], block_gas["gas_limit"],
                     block_gas.get("bloom"))


def receipt_of(record: list, tx: Transaction, tx_index: int, first_log: int) -> EthReceipt:
    """The EVM receipt a chain receipt carries as its result: [typed Ethereum receipt,
    gas used, effective gas price, created contract, output]."""
    encoded, gas_used, price, created, _output = as_list(record, 5)
    receipt = FORK.get_receipt_builder().decode(as_bytes(encoded))
    logs = [EthLog(bytes(entry.address), [t.to_bytes(32, "big") for t in entry.topics],
                   bytes(entry.data), first_log + i, tx_index, tx.hash)
            for i, entry in enumerate(receipt.logs)]
    return EthReceipt(1 if receipt.state_root == b"\x01" else 0, receipt.gas_used,
                      as_int(gas_used), as_int(price), as_bytes(created), receipt.bloom, logs)


def tx_json(tx: Transaction, block: BlockView | None, tx_index: int | None) -> dict:
    """An Ethereum tx object (eth_getTransactionByHash, full blocks)."""
    eth = tx.eth
    dynamic = eth.type_id == DYNAMIC_FEE_TX_TYPE
    out = {"hash": hexdata(tx.hash), "type": quantity(eth.type_id or 0),
           "nonce": quantity(eth.nonce), "from": address_out(tx.sender),
           "to": address_out(eth.to) if eth.to else None, "value": quantity(eth.value),
           "gas": quantity(eth.gas), "input": hexdata(eth.data),
           "r": quantity(eth.r), "s": quantity(eth.s),
           "blockHash": hexdata(block.hash) if block else None,
           "blockNumber": quantity(block.height) if block else None,
           "transactionIndex": quantity(tx_index) if tx_index is not None else None}
    if eth.type_id is None:  # legacy: v carries the chain id (EIP-155)
        out |= {"gasPrice": quantity(eth.gas_price), "v": quantity(eth.v),
                "chainId": quantity(eth.chain_id)}
        return out
    out |= {"chainId": quantity(eth.chain_id), "v": quantity(eth.y_parity),
            "yParity": quantity(eth.y_parity),
            "accessList": [{"address": address_out(a), "storageKeys":
                            [hexdata(k.to_bytes(32, "big")) for k in keys]}
                           for a, keys in eth.access_list]}
    if dynamic:
        price = (block.receipts[tx_index].price if block and tx_index is not None
                 else eth.max_fee_per_gas)
        out |= {"maxFeePerGas": quantity(eth.max_fee_per_gas),
                "maxPriorityFeePerGas": quantity(eth.max_priority_fee_per_gas),
                "gasPrice": quantity(price)}
    else:
        out["gasPrice"] = quantity(eth.gas_price)
    return out


def matches(log: EthLog, addresses: list[bytes], topics: list[list[bytes] | None]) -> bool:
    """Geth's filter rule: any of the addresses; per topic position, any of its values
    (None: anything)."""
    if addresses and log.address not in addresses:
        return False
    if len(topics) > len(log.topics):
        return False
    return all(wanted is None or log.topics[i] in wanted for i, wanted in enumerate(topics))


@dataclass
class LogFilter:
    from_block: str | int
    to_block: str | int
    addresses: list[bytes]
    topics: list[list[bytes] | None]
    block_hash: bytes | None = None


def parse_filter(value: Any, index: int) -> LogFilter:
    if not isinstance(value, dict):
        raise invalid_argument(index, "json: cannot unmarshal non-object into Go value of "
                               "type filters.FilterCriteria")
    address = value.get("address")
    addresses = ([] if address is None else
                 [parse_address(a, index) for a in address] if isinstance(address, list)
                 else [parse_address(address, index)])
    topics_in = value.get("topics") or []
    if not isinstance(topics_in, list):
        raise invalid_argument(index, "topics: want an array")
    topics: list[list[bytes] | None] = []
    for topic in topics_in:
        if topic is None:
            topics.append(None)
        elif isinstance(topic, list):
            topics.append(None if not topic else [parse_hash(t, index) for t in topic])
        else:
            topics.append([parse_hash(topic, index)])
    block_hash = value.get("blockHash")
    if block_hash is not None and ("fromBlock" in value or "toBlock" in value):
        raise invalid_argument(index, "cannot specify both BlockHash and FromBlock/ToBlock, "
                               "choose one or the other")
    for key in ("fromBlock", "toBlock"):
        if key in value and value[key] is not None:
            _check_tag(value[key], index)
    return LogFilter(value.get("fromBlock") or "latest", value.get("toBlock") or "latest",
                     addresses, topics,
                     parse_hash(block_hash, index) if block_hash is not None else None)


def _check_tag(tag: Any, index: int) -> None:
    if not (isinstance(tag, str) and (tag in LATEST_TAGS or tag == "earliest")):
        parse_quantity(tag, index)


# ---- the API ---------------------------------------------------------------------------------
class SubmitCoalescer:
    """Raw txs handed over in the same turn of the event loop (a JSON-RPC batch of
    eth_sendRawTransaction, concurrent clients) go to a validator in one submit_txs call,
    in arrival order; each caller gets its own tx's answer."""

    def __init__(self, submit: Callable[[list[bytes]], Awaitable[list[str | None]]]) -> None:
        self._submit = submit
        self._pending: list[tuple[bytes, asyncio.Future]] = []

    async def submit(self, raw: bytes) -> str | None:
        """None if the validator admitted the tx, else its refusal."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        self._pending.append((raw, answer))
        if len(self._pending) == 1:  # the first of this turn sends the lot after it
            loop.call_soon(lambda: loop.create_task(self._flush()))
        return await answer

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            errors = await self._submit([raw for raw, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets it
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, answer), error in zip(batch, errors, strict=True):
            if not answer.done():
                answer.set_result(error)


class EthApi:
    """Every method of docs/spec/evm.md for one network, over its validators."""

    def __init__(self, chain: Chain, config: EvmConfig, network_id: int) -> None:
        self.chain = chain
        self.config = config
        self.chain_id = config.chain_id(network_id)
        self._blocks: OrderedDict[int, BlockView] = OrderedDict()
        self._heights: dict[bytes, int] = {ZERO_HASH: 0}  # block hash -> height
        self._scanned = 0  # block hashes known up to this height
        self._filters: dict[str, dict] = {}
        self._submitter = SubmitCoalescer(chain.submit)

    def registry(self) -> Registry:
        registry = Registry()
        for name, method in {
            "web3_clientVersion": self.client_version, "net_version": self.net_version,
            "eth_chainId": self.eth_chain_id, "eth_blockNumber": self.block_number,
            "eth_getBalance": self.get_balance,
            "eth_getTransactionCount": self.get_transaction_count,
            "eth_getCode": self.get_code, "eth_getStorageAt": self.get_storage_at,
            "eth_gasPrice": self.gas_price,
            "eth_maxPriorityFeePerGas": self.max_priority_fee,
            "eth_feeHistory": self.fee_history, "eth_estimateGas": self.estimate_gas,
            "eth_call": self.call, "eth_sendRawTransaction": self.send_raw_transaction,
            "eth_getTransactionByHash": self.get_transaction_by_hash,
            "eth_getTransactionReceipt": self.get_transaction_receipt,
            "eth_getBlockByNumber": self.get_block_by_number,
            "eth_getBlockByHash": self.get_block_by_hash, "eth_getLogs": self.get_logs,
            "eth_newFilter": self.new_filter, "eth_newBlockFilter": self.new_block_filter,
            "eth_getFilterChanges": self.get_filter_changes,
            "eth_getFilterLogs": self.get_filter_logs,
            "eth_uninstallFilter": self.uninstall_filter, "eth_syncing": self.syncing,
            "eth_accounts": self.accounts,
        }.items():
            registry.add(name, method)
        return registry

    # ---- blocks ------------------------------------------------------------------------
    async def height_of(self, tag: Any, index: int) -> int:
        """A block tag or number as a committed height; -32000 "header not found" past
        the head."""
        head = await self.chain.committed_height()
        if tag is None or tag in LATEST_TAGS:
            return head
        if tag == "earliest":
            return 0
        if isinstance(tag, dict):  # EIP-1898: {"blockNumber": n} or {"blockHash": h}
            if "blockHash" in tag:
                return await self.height_of_hash(parse_hash(tag["blockHash"], index))
            return await self.height_of(tag.get("blockNumber"), index)
        height = parse_quantity(tag, index)
        if height > head:
            raise RpcError(SERVER_ERROR, "header not found")
        return height

    async def block(self, height: int, full: bool = False) -> BlockView | None:
        """The Ethereum view of committed block `height` (None if not committed); with
        `full`, its txs and receipts loaded too."""
        view = self._blocks.get(height)
        if view is None:
            block_gas = await self.chain.query("evm", "block_gas", height) if height else None
            if height == 0:
                view = BlockView(0, ZERO_HASH, ZERO_HASH, None, 0, [], [], [],
                                 self.config.initial_base_fee, 0, self.config.block_gas_limit,
                                 0, [], [])
            else:
                found = await self.chain.blocks(height, 1)
                if not found or block_gas is None:
                    return None
                view = _light_view(found[0][0], block_gas)
            self._blocks[height] = view
            self._heights[view.hash] = height
            while len(self._blocks) > BLOCK_CACHE:
                self._blocks.popitem(last=False)
        if (full or view.stored_bloom is None) and not view.loaded:
            await self._load(view)
        return view

    async def _load(self, view: BlockView) -> None:
        """Decode the view's txs and read its receipts."""
        txs = [decode_tx(raw) for raw in view.raw_txs]
        receipts: list[EthReceipt] = []
        if txs:
            chain_receipts = await self.chain.receipts_at(view.height)
            logs = 0
            for tx_index, (i, tx) in enumerate(zip(view.eth_indexes, txs, strict=True)):
                record = as_list(decode(chain_receipts[i + 1]), 6)[5]
                receipt = receipt_of(as_list(record), tx, tx_index, logs)
                logs += len(receipt.logs)
                receipts.append(receipt)
        view.txs, view.receipts = txs, receipts

    async def height_of_hash(self, block_hash: bytes) -> int:
        """The height of a committed block by its hash: the hashes of blocks seen are
        kept; the others are found by reading headers from where the last look stopped."""
        if block_hash in self._heights:
            return self._heights[block_hash]
        head = await self.chain.committed_height()
        while self._scanned < head:
            found = await self.chain.blocks(self._scanned + 1, HEADER_SCAN_BATCH)
            if not found:
                break
            for raw, _cert in found:
                header_raw = as_bytes(as_list(decode(raw), 3)[0])
                self._scanned += 1
                self._heights[keccak256(header_raw)] = self._scanned
            if block_hash in self._heights:
                return self._heights[block_hash]
        raise NotFound("block not found", block_hash=block_hash)

    def block_json(self, view: BlockView, full: bool) -> dict:
        header = view.header
        return {
            "number": quantity(view.height), "hash": hexdata(view.hash),
            "parentHash": hexdata(view.parent_hash), "nonce": "0x0000000000000000",
            "sha3Uncles": hexdata(EMPTY_UNCLES_HASH),
            "logsBloom": hexdata(view.bloom.to_bytes(BLOOM_BYTES, "big")),
            "transactionsRoot": hexdata(header.tx_root if header else ZERO_HASH),
            "stateRoot": hexdata(header.state_root if header else ZERO_HASH),
            "receiptsRoot": hexdata(header.receipt_root if header else ZERO_HASH),
            "miner": address_out(header.proposer if header else ZERO_ADDRESS),
            "difficulty": "0x0", "totalDifficulty": "0x0", "extraData": "0x",
            "size": quantity(view.size), "gasLimit": quantity(view.gas_limit),
            "gasUsed": quantity(view.gas_used),
            "timestamp": quantity(header.time_ms // 1000 if header else 0),
            "transactions": ([tx_json(tx, view, i) for i, tx in enumerate(view.txs)]
                             if full else [hexdata(h) for h in view.tx_hashes]),
            "uncles": [], "baseFeePerGas": quantity(view.base_fee),
            "mixHash": hexdata(ZERO_HASH), "withdrawals": [],
            "withdrawalsRoot": hexdata(keccak256(bytes([0x80]))),
            "blobGasUsed": "0x0", "excessBlobGas": "0x0",
            "parentBeaconBlockRoot": hexdata(ZERO_HASH),
        }

    async def get_block_by_number(self, tag: Any, full: bool = False) -> dict | None:
        _check_bool(full, 1)
        try:
            height = await self.height_of(tag, 0)
        except RpcError as exc:
            if exc.code == SERVER_ERROR:
                return None  # a block past the head is null, as Geth answers
            raise
        view = await self.block(height, full)
        return self.block_json(view, full) if view else None

    async def get_block_by_hash(self, block_hash: Any, full: bool = False) -> dict | None:
        _check_bool(full, 1)
        try:
            height = await self.height_of_hash(parse_hash(block_hash, 0))
        except NotFound:
            return None
        view = await self.block(height, full)
        return self.block_json(view, full) if view else None

    # ---- state reads ---------------------------------------------------------------------
    async def read(self, tag: Any, index: int, method: str, *args: Any) -> Any:
        """An evm module query at the block a tag names."""
        height = await self.height_of(tag, index)
        try:
            return await self.chain.query_at(height, "evm", method, *args)
        except NotFound:
            raise RpcError(SERVER_ERROR, "header not found") from None

    async def client_version(self) -> str:
        return f"zg-actors/v{version('zg-actors')}/py-evm/{FORK_NAME}"

    async def net_version(self) -> str:
        return str(self.chain_id)

    async def eth_chain_id(self) -> str:
        return quantity(self.chain_id)

    async def block_number(self) -> str:
        return quantity(await self.chain.committed_height())

    async def syncing(self) -> bool:
        return False  # every answer comes from a validator that follows the chain

    async def accounts(self) -> list:
        return []  # keys stay with their users: sign locally, send raw

    async def get_balance(self, address: Any, tag: Any = "latest") -> str:
        return quantity(await self.read(tag, 1, "balance", parse_address(address, 0)))

    async def get_transaction_count(self, address: Any, tag: Any = "latest") -> str:
        return quantity(await self.read(tag, 1, "nonce", parse_address(address, 0)))

    async def get_code(self, address: Any, tag: Any = "latest") -> str:
        return hexdata(await self.read(tag, 1, "code", parse_address(address, 0)))

    async def get_storage_at(self, address: Any, slot: Any, tag: Any = "latest") -> str:
        value = await self.read(tag, 2, "storage", parse_address(address, 0),
                                parse_slot(slot, 1))
        return hexdata(value.to_bytes(32, "big"))

    # ---- fees ------------------------------------------------------------------------------
    async def gas_price(self) -> str:
        """Legacy txs' price: the next block's base fee plus the suggested tip."""
        return quantity(await self.chain.query("evm", "base_fee") + self.config.priority_fee)

    async def max_priority_fee(self) -> str:
        return quantity(self.config.priority_fee)

    async def fee_history(self, block_count: Any, newest: Any,
                          percentiles: Any = None) -> dict:
        count = block_count if isinstance(block_count, int) and not isinstance(
            block_count, bool) else parse_quantity(block_count, 0)
        if percentiles is not None and (
                not isinstance(percentiles, list)
                or any(not isinstance(p, (int, float)) or not 0 <= p <= 100 for p in percentiles)
                or percentiles != sorted(percentiles)):
            raise invalid_argument(2, "reward percentiles: want ascending numbers in 0..100")
        newest_height = await self.height_of(newest, 1)
        count = min(count, MAX_FEE_HISTORY_BLOCKS, newest_height + 1)
        oldest = newest_height - count + 1
        base_fees, ratios, rewards = [], [], []
        for height in range(oldest, newest_height + 1):
            view = await self.block(height, full=percentiles is not None)
            base_fees.append(quantity(view.base_fee))
            ratios.append(view.gas_used / view.gas_limit)
            if percentiles is not None:
                rewards.append([quantity(r) for r in _rewards(view, percentiles)])
        following = await self.block(newest_height + 1)
        base_fees.append(quantity(following.base_fee if following
                                  else await self.chain.query("evm", "base_fee")))
        out = {"oldestBlock": quantity(oldest if count else newest_height),
               "baseFeePerGas": base_fees if count else [], "gasUsedRatio": ratios}
        if percentiles is not None:
            out["reward"] = rewards
        return out

    # ---- execution ---------------------------------------------------------------------
    def _call_args(self, call: Any, index: int) -> tuple[bytes, bytes, bytes, int, int | None]:
        if not isinstance(call, dict):
            raise invalid_argument(index, "json: cannot unmarshal non-object into Go value "
                                   "of type ethapi.TransactionArgs")
        sender = parse_address(call["from"], index) if call.get("from") else ZERO_ADDRESS
        to = parse_address(call["to"], index) if call.get("to") else b""
        if call.get("input") is not None and call.get("data") is not None \
                and call["input"] != call["data"]:
            raise invalid_argument(index, "both \"data\" and \"input\" are set and not equal. "
                                   "Please use \"input\" to pass transaction call data")
        payload = call.get("input") if call.get("input") is not None else call.get("data")
        data = parse_data(payload, index) if payload is not None else b""
        value = parse_quantity(call["value"], index) if call.get("value") is not None else 0
        gas = parse_quantity(call["gas"], index) if call.get("gas") is not None else None
        return sender, to, data, value, gas

    async def _context(self, tag: Any, index: int) -> tuple[int, int]:
        """(height, time_ms) of the block a call runs on."""
        height = await self.height_of(tag, index)
        view = await self.block(height)
        return height, (view.header.time_ms if view and view.header else 0)

    async def call(self, call: Any, tag: Any = "latest") -> str:
        sender, to, data, value, gas = self._call_args(call, 0)
        height, time_ms = await self._context(tag, 1)
        gas = min(gas or self.config.block_gas_limit, self.config.block_gas_limit)
        result = await self._query_at(height, "call", sender, to, data, value, gas, height,
                                      time_ms)
        if not result["ok"]:
            raise _execution_error(result)
        return hexdata(result["output"])

    async def estimate_gas(self, call: Any, tag: Any = "latest") -> str:
        sender, to, data, value, _gas = self._call_args(call, 0)
        height, time_ms = await self._context(tag, 1)
        top = await self._query_at(height, "call", sender, to, data, value,
                                   self.config.block_gas_limit, height, time_ms)
        if not top["ok"]:
            raise _execution_error(top, self.config.block_gas_limit)
        return quantity(await self._query_at(height, "estimate_gas", sender, to, data, value,
                                             height, time_ms))

    async def _query_at(self, height: int, method: str, *args: Any) -> Any:
        try:
            return await self.chain.query_at(height, "evm", method, *args)
        except InvalidInput as exc:  # e.g. a value the sender cannot pay: Geth's -32000
            raise RpcError(SERVER_ERROR, str(exc)) from None

    async def send_raw_transaction(self, raw: Any) -> str:
        """The envelope and fields parsed here, then a validator's entry checks (signature,
        chain id, gas, nonce, funds, txpool), then the tx hash; the receipt appears once a
        block commits it. The sender is recovered by the validators only (each recovers
        it once at entry), not here too."""
        encoded = parse_data(raw, 0)
        try:
            tx_hash = ethereum_tx_hash(encoded)
        except TxError as exc:
            raise decode_refusal(exc) from None
        if tx_hash is None:  # a zg-native tx is not an Ethereum tx
            raise RpcError(SERVER_ERROR, "rlp: expected an Ethereum transaction (legacy, "
                           "EIP-2930 or EIP-1559), got a zg-native one")
        try:
            error = await self._submitter.submit(encoded)
        except ZgError as exc:  # the whole batch refused (a retired network)
            raise RpcError(SERVER_ERROR, str(exc)) from None
        if error is not None:
            raise tx_refusal(error)
        return hexdata(tx_hash)

    # ---- txs and receipts ----------------------------------------------------------------
    async def _located(self, tx_hash: bytes) -> tuple[BlockView, int] | None:
        found = await self.chain.query("evm", "receipt", tx_hash)
        if found is None:
            return None
        view = await self.block(found["height"], full=True)
        if view is None:
            return None
        return view, view.tx_hashes.index(tx_hash)

    async def get_transaction_by_hash(self, tx_hash: Any) -> dict | None:
        located = await self._located(parse_hash(tx_hash, 0))
        if located is None:
            return None
        view, index = located
        return tx_json(view.txs[index], view, index)

    async def get_transaction_receipt(self, tx_hash: Any) -> dict | None:
        located = await self._located(parse_hash(tx_hash, 0))
        if located is None:
            return None
        view, index = located
        tx, receipt = view.txs[index], view.receipts[index]
        return {"transactionHash": hexdata(tx.hash), "transactionIndex": quantity(index),
                "blockHash": hexdata(view.hash), "blockNumber": quantity(view.height),
                "from": address_out(tx.sender),
                "to": address_out(tx.eth.to) if tx.eth.to else None,
                "cumulativeGasUsed": quantity(receipt.cumulative_gas),
                "gasUsed": quantity(receipt.gas_used),
                "effectiveGasPrice": quantity(receipt.price),
                "contractAddress": address_out(receipt.contract) if receipt.contract else None,
                "logs": [log.to_json(view) for log in receipt.logs],
                "logsBloom": hexdata(receipt.bloom.to_bytes(BLOOM_BYTES, "big")),
                "type": quantity(tx.eth.type_id or 0), "status": quantity(receipt.status)}

    # ---- logs and filters -----------------------------------------------------------------
    async def _logs(self, criteria: LogFilter, first: int, last: int) -> list[dict]:
        if last - first + 1 > self.config.max_log_blocks:
            raise RpcError(SERVER_ERROR, f"query exceeds max block range "
                           f"{self.config.max_log_blocks}")
        out = []
        for height in range(max(first, 1), last + 1):
            view = await self.block(height, full=True)
            if view is None:
                break
            out += [log.to_json(view) for log in view.logs()
                    if matches(log, criteria.addresses, criteria.topics)]
        return out

    async def _range(self, criteria: LogFilter, index: int) -> tuple[int, int]:
        if criteria.block_hash is not None:
            try:
                height = await self.height_of_hash(criteria.block_hash)
            except NotFound:
                raise RpcError(SERVER_ERROR, "unknown block") from None
            return height, height
        first = await self.height_of(criteria.from_block, index)
        last = await self.height_of(criteria.to_block, index)
        if first > last:
            raise RpcError(SERVER_ERROR, "invalid block range params")
        return first, last

    async def get_logs(self, criteria: Any) -> list[dict]:
        parsed = parse_filter(criteria, 0)
        return await self._logs(parsed, *await self._range(parsed, 0))

    async def new_filter(self, criteria: Any) -> str:
        parsed = parse_filter(criteria, 0)
        head = await self.chain.committed_height()
        return self._install({"logs": parsed, "next": head + 1})

    async def new_block_filter(self) -> str:
        return self._install({"logs": None, "next": await self.chain.committed_height() + 1})

    def _install(self, entry: dict) -> str:
        filter_id = hexdata(os.urandom(FILTER_ID_BYTES))
        self._filters[filter_id] = entry
        return filter_id

    def _filter(self, filter_id: Any) -> dict:
        if not isinstance(filter_id, str) or filter_id not in self._filters:
            raise RpcError(SERVER_ERROR, "filter not found")
        return self._filters[filter_id]

    async def get_filter_changes(self, filter_id: Any) -> list:
        """What is new since the last poll: logs, or block hashes for a block filter."""
        entry = self._filter(filter_id)
        head = await self.chain.committed_height()
        first, last = entry["next"], head
        criteria: LogFilter | None = entry["logs"]
        if criteria is not None and criteria.to_block not in LATEST_TAGS:
            last = min(last, await self.height_of(criteria.to_block, 0))
        if criteria is not None and criteria.from_block not in LATEST_TAGS:
            first = max(first, await self.height_of(criteria.from_block, 0))
        if last < first:
            return []
        entry["next"] = last + 1
        if criteria is None:
            return [hexdata((await self.block(h)).hash) for h in range(first, last + 1)]
        return await self._logs(criteria, first, last)

    async def get_filter_logs(self, filter_id: Any) -> list[dict]:
        criteria = self._filter(filter_id)["logs"]
        if criteria is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        return await self._logs(criteria, *await self._range(criteria, 0))

    async def uninstall_filter(self, filter_id: Any) -> bool:
        return self._filters.pop(filter_id, None) is not None if isinstance(
            filter_id, str) else False


def _check_bool(value: Any, index: int) -> None:
    if not isinstance(value, bool):
        raise invalid_argument(index, f"json: cannot unmarshal {type(value).__name__} into "
                               "Go value of type bool")


def _execution_error(result: dict, allowance: int | None = None) -> RpcError:
    """A failed call: a revert is code 3 with its data (what clients decode the reason
    from); anything else -32000 in Geth's words."""
    if result["error"] == "execution reverted":
        return RpcError(EXECUTION_REVERTED, revert_reason(result["output"]),
                        hexdata(result["output"]))
    if allowance is not None:
        return RpcError(SERVER_ERROR, f"gas required exceeds allowance ({allowance})")
    return RpcError(SERVER_ERROR, result["error"])


def _rewards(view: BlockView, percentiles: list[float]) -> list[int]:
    """Geth's feeHistory rewards: tips paid, weighted by gas used, at each percentile."""
    if not view.tx_hashes:
        return [0] * len(percentiles)
    tips = sorted((r.price - view.base_fee, r.gas_used) for r in view.receipts)
    out, used, i = [], tips[0][1], 0
    for percentile in percentiles:
        threshold = view.gas_used * percentile / 100
        while used < threshold and i < len(tips) - 1:
            i += 1
            used += tips[i][1]
        out.append(tips[i][0])
    return out


def registry_of(chain: Chain, config: EvmConfig, network_id: int) -> Registry:
    return EthApi(chain, config, network_id).registry()

