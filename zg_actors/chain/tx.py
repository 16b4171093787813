"""Transactions: what a sender signs, and the checks every validator applies to one.

A tx names its network (replay protection across networks), a nonce per
sender, the target module and method, arguments and a fee; the sender signs
keccak-256 of its canonical encoding with a secp256k1 key.

An Ethereum tx (legacy EIP-155, EIP-2930 or EIP-1559, as a wallet signs it) travels
as its own raw bytes: the same mempool, blocks and limits carry it, as a Transaction
whose module is `evm`, whose hash is its Ethereum hash and whose sender is recovered
from its signature; the `evm` module checks and executes it (docs/spec/evm.md).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import rlp
from eth.abc import SignedTransactionAPI
from eth_typing import Address
from eth_utils import ValidationError

from zg_actors.crypto.accounts import ADDRESS_BYTES, Account, recover_address
from zg_actors.crypto.encoding import (
    Decoded,
    EncodingError,
    as_bytes,
    as_int,
    as_list,
    as_str,
    decode,
    encode,
    list_item_ends,
    list_prefix,
)
from zg_actors.crypto.keccak import keccak256
from zg_actors.errors import InvalidInput, InvalidSignature, ZgError, preview
from zg_actors.evm import params as evm_params

MAX_NAME_CHARS = 32
LEGACY_ETHEREUM_TX_FIELDS = 9  # nonce, gasPrice, gas, to, value, data, v, r, s
# A typed tx's RLP field count: EIP-2930 adds chain id and access list and has y parity
# for v; EIP-1559 has two fee caps for gasPrice.
_TYPED_TX_FIELDS = {evm_params.ACCESS_LIST_TX_TYPE: 11, evm_params.DYNAMIC_FEE_TX_TYPE: 12}
ETHEREUM_TX_METHOD = "eth"  # the method name an Ethereum tx carries in our Transaction
# Ethereum txs decoded in this process, kept by raw bytes: a tx arrives (RPC, a peer's
# gossip), sits in the mempool and comes back in a block; each time it is the same object,
# its sender recovered once. About 1.5 KB each: 30 MB at most.
_DECODED_CACHE_LIMIT = 20_000


class TxError(ZgError):
    """A tx that cannot enter a mempool or a block."""

    code = "INVALID_TX"


class TxDeferred(TxError):
    """A tx valid later but not in this block (its gas does not fit, the base fee is above
    its cap): a block builder leaves it in the mempool."""

    code = "TX_DEFERRED"


class MalformedTransaction(TxError, InvalidInput):
    code = "MALFORMED_TX"


class WrongNetwork(TxError, InvalidInput):
    code = "WRONG_NETWORK"


class TxSignatureInvalid(TxError, InvalidSignature):
    code = "INVALID_TX_SIGNATURE"


class NonceError(TxError, InvalidInput):
    code = "INVALID_NONCE"


class TxTooLarge(TxError, InvalidInput):
    code = "TX_TOO_LARGE"


class MalformedTxBatch(InvalidInput):
    """A batch of txs that is not a list of bytes: refused whole, nothing admitted."""

    code = "MALFORMED_TX_BATCH"


class UnknownTxMethod(TxError, InvalidInput):
    code = "UNKNOWN_TX_METHOD"


class TxTypeNotSupported(TxError, InvalidInput):
    code = "TX_TYPE_NOT_SUPPORTED"


class InvalidSender(TxError, InvalidSignature):
    code = "INVALID_SENDER"


@dataclass(frozen=True)
class Transaction:
    network_id: int
    nonce: int
    sender: bytes
    module: str
    method: str
    args: tuple[Decoded, ...]
    fee: int
    signature: bytes = b""
    # Derived once: the encoding is hashed, sized and sent many times.
    encoded: bytes = field(default=b"", compare=False, repr=False)
    hash: bytes = field(default=b"", compare=False, repr=False)
    # An Ethereum tx: py-evm's decoded tx (network_id then holds its chain id).
    eth: SignedTransactionAPI | None = field(default=None, compare=False, repr=False)

    def signing_payload(self) -> list:
        return [self.network_id, self.nonce, self.sender, self.module, self.method,
                list(self.args), self.fee]

    def signing_hash(self) -> bytes:
        return keccak256(encode(self.signing_payload()))

    @property
    def size(self) -> int:
        return len(self.encoded)


def _finish(tx: Transaction) -> Transaction:
    encoded = encode(tx.signing_payload() + [tx.signature])
    object.__setattr__(tx, "encoded", encoded)
    object.__setattr__(tx, "hash", keccak256(encoded))
    return tx


def make_tx(account: Account, network_id: int, nonce: int, module: str, method: str,
            args: list | tuple, fee: int = 0) -> Transaction:
    """A signed tx; args are normalised to their decoded form (ints become bytes)."""
    normalized = tuple(decode(encode(list(args))))
    unsigned = Transaction(network_id, nonce, account.address, module, method, normalized, fee)
    signature = account.sign_hash(unsigned.signing_hash())
    return _finish(Transaction(network_id, nonce, account.address, module, method, normalized,
                               fee, signature))


def decode_tx(data: bytes) -> Transaction:
    """Parse a tx from its canonical bytes or an Ethereum tx from its raw bytes;
    MalformedTransaction on anything else."""
    cached = _decoded.get(data)
    if cached is not None:  # an Ethereum tx decoded (and its sender recovered) before
        return cached
    if data[:1] and data[0] < 0xC0:  # an EIP-2718 typed envelope: type byte, then RLP
        return decode_ethereum_tx(data)
    try:
        items = decode(data)
        if isinstance(items, list) and len(items) == LEGACY_ETHEREUM_TX_FIELDS:
            return decode_ethereum_tx(data)
        fields = as_list(items, 8)
        tx = Transaction(
            network_id=as_int(fields[0]), nonce=as_int(fields[1]),
            sender=as_bytes(fields[2], ADDRESS_BYTES), module=as_str(fields[3]),
            method=as_str(fields[4]), args=tuple(as_list(fields[5])), fee=as_int(fields[6]),
            signature=as_bytes(fields[7]))
    except EncodingError as exc:
        raise MalformedTransaction(f"malformed tx: {exc}", size=len(data)) from exc
    if len(tx.module) > MAX_NAME_CHARS or len(tx.method) > MAX_NAME_CHARS:
        raise MalformedTransaction("module or method name too long", module=tx.module[:64],
                                   method=tx.method[:64])
    return _finish(tx)


_decoded: OrderedDict[bytes, Transaction] = OrderedDict()  # raw Ethereum tx -> decoded


def check_typed_tx_type(type_id: int) -> None:
    """A typed (EIP-2718) envelope's type byte must name EIP-2930 or EIP-1559; type 0
    names none (a legacy tx has no envelope: Geth refuses it alike). Geth's words."""
    if type_id not in _TYPED_TX_FIELDS:
        raise TxTypeNotSupported(f"transaction type not supported: type {type_id}",
                                 type=type_id, supported=list(evm_params.SUPPORTED_TX_TYPES))


def parse_ethereum_tx(data: bytes) -> SignedTransactionAPI:
    """The py-evm object of a raw Ethereum tx, its fields checked but its sender not yet
    recovered. Refusals in Geth's words: transaction type not supported, rlp errors."""
    if data[0] < 0xC0:  # EIP-2718: a type byte, then RLP; a legacy tx is an RLP list
        check_typed_tx_type(data[0])
    try:
        return evm_params.FORK.get_transaction_builder().decode(data)
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError,
            TypeError) as exc:
        raise MalformedTransaction(f"malformed Ethereum tx: {exc}", size=len(data)) from exc


def is_ethereum_encoding(data: bytes) -> bool:
    """Whether a tx's bytes are an Ethereum tx's: a typed envelope, or a legacy tx's RLP
    list of LEGACY_ETHEREUM_TX_FIELDS items (EncodingError when they are neither a type
    byte nor a list)."""
    if data[:1] and data[0] < 0xC0:
        return True
    return len(list_item_ends(data)[1]) == LEGACY_ETHEREUM_TX_FIELDS


def ethereum_tx_hash(data: bytes) -> bytes | None:
    """The hash of a raw Ethereum tx whose envelope parses (a supported type, one RLP list
    of that type's field count, nothing after it), without decoding its fields or
    recovering its sender: what a JSON-RPC front answers before a validator's entry
    checks, which decode and recover (~70 us of py-evm decoding a tx, each). None for a
    zg-native tx; MalformedTransaction or TxTypeNotSupported for anything else."""
    cached = _decoded.get(data)
    if cached is not None:
        return cached.hash
    try:
        if data[:1] and data[0] < 0xC0:
            check_typed_tx_type(data[0])
            fields = _TYPED_TX_FIELDS[data[0]]
            _, ends = list_item_ends(data, 1)
        else:
            _, ends = list_item_ends(data)
            if len(ends) != LEGACY_ETHEREUM_TX_FIELDS:  # as is_ethereum_encoding tells
                decode_tx(data)  # a zg-native tx, or MalformedTransaction
                return None
            fields = LEGACY_ETHEREUM_TX_FIELDS
    except EncodingError as exc:
        raise MalformedTransaction(f"malformed tx: {exc}", size=len(data)) from exc
    if len(ends) != fields or ends[-1] != len(data):
        raise MalformedTransaction(f"malformed tx: {len(ends)} fields ending at byte "
                                   f"{ends[-1] if ends else 0} of {len(data)}, want {fields} "
                                   f"fields and no trailing bytes", size=len(data))
    return keccak256(data)


def decode_ethereum_tx(data: bytes) -> Transaction:
    """An Ethereum tx from its raw bytes, with its sender recovered from the signature
    (decode_tx keeps it: once per process, its py-evm object carrying the sender).
    Refusals in Geth's words: transaction type not supported, invalid sender."""
    eth = parse_ethereum_tx(data)
    tx_hash = keccak256(data)
    sender = ethereum_sender(eth, tx_hash, data)
    max_fee = (eth.max_fee_per_gas if eth.type_id == evm_params.DYNAMIC_FEE_TX_TYPE
               else eth.gas_price)
    tx = Transaction(eth.chain_id or 0, eth.nonce, sender, evm_params.MODULE,
                     ETHEREUM_TX_METHOD, (), eth.gas * max_fee, b"", data, tx_hash, eth)
    _decoded[data] = tx
    if len(_decoded) > _DECODED_CACHE_LIMIT:
        _decoded.popitem(last=False)
    return tx


def typed_signing_message(data: bytes) -> bytes:
    """What the sender of a typed (EIP-2718) tx signed: its type byte and the RLP list of
    its fields but the last three (y parity, r, s), cut from the raw bytes as they are
    (py-evm re-encodes every field for it, ~15 us); `data` has parsed already."""
    first, ends = list_item_ends(data, 1)
    unsigned = data[first:ends[-4]]  # the items before y parity, r and s
    return data[:1] + list_prefix(len(unsigned)) + unsigned


def ethereum_sender(eth: SignedTransactionAPI, tx_hash: bytes, data: bytes = b"") -> bytes:
    """The signer of `eth`, recovered with one public-key recovery (py-evm's
    check_signature_validity then `sender` recover it twice and verify once), and kept as
    py-evm's cached `sender`, so that applying the tx recovers nothing again. Refused as
    Geth refuses: a y parity other than 0/1, r or s out of range, s in the upper half.
    `data`: the raw tx when at hand, whose signed message a typed tx's is cut from."""
    try:
        if eth.y_parity not in (0, 1):
            raise ValueError(f"y parity {eth.y_parity} is not 0 or 1")
        signature = (eth.r.to_bytes(32, "big") + eth.s.to_bytes(32, "big")
                     + bytes([eth.y_parity]))
        message = (typed_signing_message(data) if data[:1] and data[0] < 0xC0
                   else eth.get_message_for_signing())
        sender = recover_address(keccak256(message), signature)
    except (InvalidSignature, OverflowError, ValueError) as exc:
        raise InvalidSender(f"invalid sender: {exc}", tx=tx_hash) from exc
    eth.__dict__["sender"] = Address(sender)  # py-evm's `sender` is a cached_property
    return sender


def check_tx_batch(raw_txs: object) -> None:
    """A batch of raw txs must be a list of bytes; MalformedTxBatch names what is not."""
    if not isinstance(raw_txs, list):
        raise MalformedTxBatch(f"txs must be a list of tx bytes, got {type(raw_txs).__name__}"
                               f" {preview(raw_txs)}", type=type(raw_txs).__name__)
    for index, raw in enumerate(raw_txs):
        if not isinstance(raw, bytes):
            raise MalformedTxBatch(f"tx {index} of {len(raw_txs)} is {type(raw).__name__} "
                                   f"{preview(raw)}, not bytes; no tx of the batch was "
                                   f"admitted", index=index, type=type(raw).__name__)


def check_transaction(tx: Transaction, network_id: int, max_tx_bytes: int) -> None:
    """Stateless checks, applied on mempool entry and again at execution.

    The network id is checked because a tx signed for one network must not be
    replayable on another; the signature because the sender pays.
    """
    if tx.size > max_tx_bytes:
        raise TxTooLarge(f"tx is {tx.size} bytes, limit {max_tx_bytes}", size=tx.size,
                         limit=max_tx_bytes)
    if tx.network_id != network_id:
        raise WrongNetwork(f"tx is for network {tx.network_id}, this is network {network_id}",
                           network_id=tx.network_id, expected=network_id)
    try:
        signer = recover_address(tx.signing_hash(), tx.signature)
    except InvalidSignature as exc:
        raise TxSignatureInvalid(f"tx {tx.hash.hex()[:16]}: {exc}", tx=tx.hash) from exc
    if signer != tx.sender:
        raise TxSignatureInvalid(f"tx signed by 0x{signer.hex()}, claims sender "
                                 f"0x{tx.sender.hex()}", signer=signer, sender=tx.sender)


def check_nonce(tx: Transaction, account_nonce: int) -> None:
    """At execution a tx must carry exactly the sender's next nonce."""
    if tx.nonce < account_nonce:
        raise NonceError(f"nonce too low: nonce {tx.nonce} already used by "
                         f"0x{tx.sender.hex()} (next is {account_nonce}): replay", nonce=tx.nonce,
                         expected=account_nonce)
    if tx.nonce > account_nonce:
        raise NonceError(f"nonce {tx.nonce} is ahead of 0x{tx.sender.hex()}'s next nonce "
                         f"{account_nonce}", nonce=tx.nonce, expected=account_nonce)
