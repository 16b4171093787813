"""The KV tx body, the STREAM tag and stream ids (docs/spec/kv.md "Body encoding").

A KV transaction is the data of one flow entry, big-endian:

    u64 version
    u32 n_reads,  n x (stream_id[32], u24 key_len, key)
    u32 n_writes, n x (stream_id[32], u24 key_len, key, u64 data_len), then the values
    u32 n_acl,    n x (u8 op, stream_id[32], [u24 key_len, key], [address[20]])

The layout is 0G's client's `StreamData.Encode` (0g-storage-client kv/types.go) and the
KV node's parser (0g-storage-kv node/stream/src/stream_manager/stream_replayer.rs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from zg_actors.crypto.keccak import keccak256
from zg_actors.storage.constants import SECTOR_BYTES
from zg_actors.storage.kv.errors import (
    INVALID_DATA,
    LIST_TOO_LONG,
    DataParseError,
    InvalidStreamId,
)

STREAM_ID_BYTES = 32
ADDRESS_BYTES = 20
VERSION_BYTES = 8
SET_LEN_BYTES = 4  # u32 item count of each list
KEY_LEN_BYTES = 3  # u24 key length
DATA_LEN_BYTES = 8  # u64 value length
OP_BYTES = 1
MAX_KEY_BYTES = (1 << 8 * KEY_LEN_BYTES) - 1  # 16 MiB - 1 byte
MAX_SET_ITEMS = 1 << 16  # items in each of the read, write and ACL lists
SKIP_CHECKS_VERSION = (1 << 64) - 1  # u64::MAX: the tx read nothing it needs checked
STREAM_DOMAIN = hashlib.sha256(b"STREAM").digest()  # first 32 bytes of a KV entry's tags


class AclOp(IntEnum):
    """ACL operation codes (0G's AccessControlOps); op & 0xF0 is the op's category."""

    GRANT_ADMIN_ROLE = 0x00
    RENOUNCE_ADMIN_ROLE = 0x01
    SET_KEY_TO_SPECIAL = 0x10
    SET_KEY_TO_NORMAL = 0x11
    GRANT_WRITER_ROLE = 0x20
    REVOKE_WRITER_ROLE = 0x21
    RENOUNCE_WRITER_ROLE = 0x22
    GRANT_SPECIAL_WRITER_ROLE = 0x30
    REVOKE_SPECIAL_WRITER_ROLE = 0x31
    RENOUNCE_SPECIAL_WRITER_ROLE = 0x32


OPS_WITH_KEY = frozenset({AclOp.SET_KEY_TO_SPECIAL, AclOp.SET_KEY_TO_NORMAL,
                          AclOp.GRANT_SPECIAL_WRITER_ROLE, AclOp.REVOKE_SPECIAL_WRITER_ROLE,
                          AclOp.RENOUNCE_SPECIAL_WRITER_ROLE})
OPS_WITH_ACCOUNT = frozenset({AclOp.GRANT_ADMIN_ROLE, AclOp.GRANT_WRITER_ROLE,
                              AclOp.REVOKE_WRITER_ROLE, AclOp.GRANT_SPECIAL_WRITER_ROLE,
                              AclOp.REVOKE_SPECIAL_WRITER_ROLE})
RENOUNCE_OPS = frozenset({AclOp.RENOUNCE_ADMIN_ROLE, AclOp.RENOUNCE_WRITER_ROLE,
                          AclOp.RENOUNCE_SPECIAL_WRITER_ROLE})


@dataclass(frozen=True)
class StreamRead:
    stream_id: bytes
    key: bytes


@dataclass(frozen=True)
class StreamWrite:
    """A write of `data` to `key`; empty `data` deletes the key."""

    stream_id: bytes
    key: bytes
    data: bytes


@dataclass(frozen=True)
class AccessControl:
    """One ACL op; `key` is None unless the op is in OPS_WITH_KEY, `account` None unless
    it is in OPS_WITH_ACCOUNT (a renounce applies to the tx's sender)."""

    op: AclOp
    stream_id: bytes
    key: bytes | None = None
    account: bytes | None = None


@dataclass(frozen=True)
class KVTx:
    version: int
    reads: tuple[StreamRead, ...] = ()
    writes: tuple[StreamWrite, ...] = ()
    controls: tuple[AccessControl, ...] = ()


# ---- stream ids and tags --------------------------------------------------------------------
def stream_id_from_name(name: str) -> bytes:
    """The stream id of a human name: keccak-256 of its UTF-8 bytes (as Solidity derives
    role ids), so any tool can compute it."""
    return keccak256(name.encode())


def parse_stream_id(text: str) -> bytes:
    """`0x` + 64 hex digits is a stream id as it is; any other text is a name."""
    if text.lower().startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError as exc:
            raise InvalidStreamId(f"stream id {text!r} is not hex", stream_id=text) from exc
        if len(raw) != STREAM_ID_BYTES:
            raise InvalidStreamId(f"stream id {text!r} is {len(raw)} bytes, not "
                                  f"{STREAM_ID_BYTES}", stream_id=text)
        return raw
    if not text:
        raise InvalidStreamId("a stream name cannot be empty", stream_id=text)
    return stream_id_from_name(text)


def stream_tags(stream_ids: Iterable[bytes]) -> bytes:
    """Submission tags of a KV tx: STREAM_DOMAIN, then each stream id."""
    ids = list(stream_ids)
    for stream_id in ids:
        _check_stream_id(stream_id)
    return STREAM_DOMAIN + b"".join(ids)


def tag_stream_ids(tags: bytes) -> list[bytes]:
    """The stream ids of an entry's tags; [] unless they are STREAM_DOMAIN + whole ids
    (0G's submission_topic_to_stream_ids: such an entry is not a KV tx)."""
    if not tags or len(tags) % STREAM_ID_BYTES or tags[:STREAM_ID_BYTES] != STREAM_DOMAIN:
        return []
    return [tags[i:i + STREAM_ID_BYTES] for i in range(STREAM_ID_BYTES, len(tags),
                                                         STREAM_ID_BYTES)]


def _check_stream_id(stream_id: bytes) -> None:
    if len(stream_id) != STREAM_ID_BYTES:
        raise InvalidStreamId(f"stream id 0x{stream_id.hex()} is {len(stream_id)} bytes, "
                              f"not {STREAM_ID_BYTES}", stream_id=stream_id)


# ---- encoding -------------------------------------------------------------------------------
def check_key(key: bytes) -> None:
    """Keys are 1 .. MAX_KEY_BYTES bytes (the length must fit a u24 and not be 0)."""
    if not 1 <= len(key) <= MAX_KEY_BYTES:
        raise DataParseError(INVALID_DATA, f"key length {len(key)} outside 1..{MAX_KEY_BYTES}",
                             key_length=len(key))


def check_set_size(what: str, count: int) -> None:
    if count > MAX_SET_ITEMS:
        raise DataParseError(LIST_TOO_LONG, f"{count} {what}, at most {MAX_SET_ITEMS}",
                             list=what, count=count)


def _key_bytes(key: bytes) -> bytes:
    check_key(key)
    return len(key).to_bytes(KEY_LEN_BYTES, "big") + key


def _control_bytes(control: AccessControl) -> bytes:
    op = AclOp(control.op)
    _check_stream_id(control.stream_id)
    for field, value, ops in (("key", control.key, OPS_WITH_KEY),
                              ("account", control.account, OPS_WITH_ACCOUNT)):
        if (value is not None) != (op in ops):
            takes = "takes" if op in ops else "takes no"
            raise DataParseError(INVALID_DATA, f"{op.name} {takes} {field}", op=op.name)
    out = bytes([op]) + control.stream_id
    if control.key is not None:
        out += _key_bytes(control.key)
    if control.account is not None:
        if len(control.account) != ADDRESS_BYTES:
            raise DataParseError(INVALID_DATA, f"account 0x{control.account.hex()} is not "
                                 f"{ADDRESS_BYTES} bytes", account=control.account)
        out += control.account
    return out


def encode_tx(tx: KVTx) -> bytes:
    """The body 0G's client builds for `tx` (StreamData.Encode), byte for byte."""
    if not 0 <= tx.version <= SKIP_CHECKS_VERSION:
        raise DataParseError(INVALID_DATA, f"version {tx.version} is not a u64",
                             version=tx.version)
    check_set_size("reads", len(tx.reads))
    check_set_size("writes", len(tx.writes))
    check_set_size("access controls", len(tx.controls))
    parts = [tx.version.to_bytes(VERSION_BYTES, "big"),
             len(tx.reads).to_bytes(SET_LEN_BYTES, "big")]
    for read in tx.reads:
        _check_stream_id(read.stream_id)
        parts += [read.stream_id, _key_bytes(read.key)]
    parts.append(len(tx.writes).to_bytes(SET_LEN_BYTES, "big"))
    for write in tx.writes:
        _check_stream_id(write.stream_id)
        parts += [write.stream_id, _key_bytes(write.key),
                  len(write.data).to_bytes(DATA_LEN_BYTES, "big")]
    parts += [write.data for write in tx.writes]
    parts.append(len(tx.controls).to_bytes(SET_LEN_BYTES, "big"))
    parts += [_control_bytes(control) for control in tx.controls]
    return b"".join(parts)


# ---- decoding -------------------------------------------------------------------------------
def padded_entry(data: bytes) -> bytes:
    """An entry's data as the KV node reads it: padded with zeros to whole sectors (0G's
    StreamReader bounds every read by the entry's sector count, not its byte size)."""
    return data + bytes(-len(data) % SECTOR_BYTES)


class BodyReader:
    """Reads a body section by section, in the order a KV node checks them: the
    replayer judges the read set before it parses the write set, and so on."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.position = 0

    def _take(self, size: int, what: str) -> bytes:
        end = self.position + size
        if end > len(self.body):
            raise DataParseError(INVALID_DATA, f"{what} needs {size} bytes at byte "
                                 f"{self.position}, the body has {len(self.body)}",
                                 position=self.position, size=size)
        out = self.body[self.position:end]
        self.position = end
        return out

    def _int(self, size: int, what: str) -> int:
        return int.from_bytes(self._take(size, what), "big")

    def _count(self, what: str) -> int:
        count = self._int(SET_LEN_BYTES, f"the number of {what}")
        check_set_size(what, count)
        return count

    def _key(self) -> bytes:
        size = self._int(KEY_LEN_BYTES, "a key length")
        if size == 0:
            raise DataParseError(INVALID_DATA, f"key length 0 at byte {self.position - 3}",
                                 position=self.position - 3)
        return self._take(size, "a key")

    def version(self) -> int:
        return self._int(VERSION_BYTES, "the version")

    def reads(self) -> list[StreamRead]:
        return [StreamRead(self._take(STREAM_ID_BYTES, "a stream id"), self._key())
                for _ in range(self._count("reads"))]

    def writes(self) -> list[StreamWrite]:
        heads = [(self._take(STREAM_ID_BYTES, "a stream id"), self._key(),
                  self._int(DATA_LEN_BYTES, "a value length"))
                 for _ in range(self._count("writes"))]
        return [StreamWrite(stream_id, key, self._take(size, "a value"))
                for stream_id, key, size in heads]

    def controls(self) -> list[AccessControl]:
        out = []
        for _ in range(self._count("access controls")):
            code = self._int(OP_BYTES, "an ACL op")
            try:
                op = AclOp(code)
            except ValueError as exc:
                raise DataParseError(INVALID_DATA, f"unknown ACL op 0x{code:02x} at byte "
                                     f"{self.position - 1}", op=code) from exc
            stream_id = self._take(STREAM_ID_BYTES, "a stream id")
            key = self._key() if op in OPS_WITH_KEY else None
            account = self._take(ADDRESS_BYTES, "an address") if op in OPS_WITH_ACCOUNT else None
            out.append(AccessControl(op, stream_id, key, account))
        return out


def decode_tx(body: bytes) -> KVTx:
    """The tx of a body (bytes after it are ignored, as 0G's node ignores them)."""
    reader = BodyReader(body)
    version = reader.version()
    reads = reader.reads()
    writes = reader.writes()
    return KVTx(version, tuple(reads), tuple(writes), tuple(reader.controls()))


def tx_stream_ids(tx: KVTx) -> list[bytes]:
    """The streams a client tags a tx with: those it writes or changes ACLs of, in first
    use order (reads are not tagged)."""
    seen: dict[bytes, None] = {}
    for item in (*tx.writes, *tx.controls):
        seen.setdefault(item.stream_id, None)
    return list(seen)


def writes_of(items: Sequence[StreamWrite]) -> dict[tuple[bytes, bytes], bytes]:
    """{(stream, key): data} of a write set: two writes of one key, the last wins."""
    return {(w.stream_id, w.key): w.data for w in items}
