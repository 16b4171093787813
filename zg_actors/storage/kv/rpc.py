"""The `kv_*` JSON-RPC methods of a KV node over its replayed state (pure: no Ray).

Names, params and answers are 0G's (0g-storage-kv node/rpc/src/kv_rpc_server/api.rs):
stream ids and accounts as 0x hex, keys and data base64, `version` optional (null or
left out: the latest). Each bad param is a typed error naming the value, which the
JSON-RPC layer (rpc/jsonrpc.py) turns into an error object.

    api = KvApi(state, streams)
    registry = api.registry()       # every kv_* method, ready for Registry.handle
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from zg_actors.errors import InvalidInput
from zg_actors.rpc.jsonrpc import Registry
from zg_actors.storage.kv.encoding import ADDRESS_BYTES, STREAM_ID_BYTES
from zg_actors.storage.kv.errors import UnknownStream
from zg_actors.storage.kv.state import KeyValue, KVState

MAX_QUERY_LEN_BYTES = 256 * 1024  # 0G's MAX_QUERY_LEN_IN_BYTES: one page of a value
U64_MAX = (1 << 64) - 1
# 0G's method names (and kv_getReplayProgress of newer nodes) -> KvApi's methods
KV_METHODS = {
    "kv_getStatus": "get_status", "kv_getValue": "get_value", "kv_getNext": "get_next",
    "kv_getPrev": "get_prev", "kv_getFirst": "get_first", "kv_getLast": "get_last",
    "kv_getTransactionResult": "get_transaction_result",
    "kv_getHoldingStreamIds": "get_holding_stream_ids",
    "kv_hasWritePermission": "has_write_permission", "kv_isAdmin": "is_admin",
    "kv_isSpecialKey": "is_special_key", "kv_isWriterOfKey": "is_writer_of_key",
    "kv_isWriterOfStream": "is_writer_of_stream", "kv_getReplayProgress": "get_replay_progress",
}


class InvalidParam(InvalidInput):
    """A kv_* param that is missing, of the wrong type or out of range."""

    code = "INVALID_PARAMS"


def _bad(name: str, value: Any, why: str) -> InvalidParam:
    return InvalidParam(f"{name} {value!r}: {why}", param=name, value=str(value))


def parse_u64(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
        raise _bad(name, value, "want an integer 0..2^64-1")
    return value


def parse_version(value: Any) -> int | None:
    return None if value is None else parse_u64(value, "version")


def parse_hex_bytes(value: Any, name: str, size: int) -> bytes:
    """`0x` + 2*size hex digits (0G's H256 / H160 params)."""
    if not isinstance(value, str) or not value.lower().startswith("0x"):
        raise _bad(name, value, f"want 0x and {2 * size} hex digits")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise _bad(name, value, "not hex") from None
    if len(raw) != size:
        raise _bad(name, value, f"{len(raw)} bytes, want {size}")
    return raw


def parse_base64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(name, value, "want a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(name, value, "not base64") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _page(data: bytes, start_index: int, length: int) -> bytes:
    """data[start_index : start_index + length]; a start past the end is an error, as in
    0G's node."""
    if start_index > len(data):
        raise _bad("start_index", start_index, f"past the value's {len(data)} bytes")
    return data[start_index:start_index + length]


def value_segment(found: KeyValue | None, start_index: int, length: int) -> dict:
    """0G's ValueSegment: {version, data (one page, base64), size (the whole value)}."""
    if found is None:
        return {"version": 0, "data": "", "size": 0}
    return {"version": found.version, "data": b64(_page(found.data, start_index, length)),
            "size": len(found.data)}


class KvApi:
    """0G's KeyValueRpc over one node's state and followed streams. Params carry 0G's
    names (`len` too), so that named params work as well as positional ones."""

    def __init__(self, state: KVState, streams: Iterable[bytes]) -> None:
        self.state = state
        self.streams = list(dict.fromkeys(streams))

    def registry(self) -> Registry:
        registry = Registry()
        for name, attribute in KV_METHODS.items():
            registry.add(name, getattr(self, attribute))
        return registry

    # ---- params ---------------------------------------------------------------------------
    def _stream(self, value: Any) -> bytes:
        stream_id = parse_hex_bytes(value, "stream_id", STREAM_ID_BYTES)
        if stream_id not in self.streams:
            raise UnknownStream(f"stream_id {value}: this node does not follow it (it "
                                f"follows {len(self.streams)} streams: kv_getHoldingStreamIds)",
                                stream_id=stream_id)
        return stream_id

    @staticmethod
    def _len(value: Any) -> int:
        length = parse_u64(value, "len")
        if length > MAX_QUERY_LEN_BYTES:
            raise _bad("len", value, f"over {MAX_QUERY_LEN_BYTES} bytes (page by start_index)")
        return length

    @staticmethod
    def _account(value: Any) -> bytes:
        return parse_hex_bytes(value, "account", ADDRESS_BYTES)

    @staticmethod
    def _segment(found: KeyValue | None, start_index: int, length: int) -> dict | None:
        if found is None:
            return None
        return {"key": b64(found.key), **value_segment(found, start_index, length)}

    # ---- methods ------------------------------------------------------------------------
    def get_status(self) -> bool:
        """0G answers whether the node is connected; a node that answers is."""
        return True

    def get_replay_progress(self) -> dict:
        """{appliedSeq}: the last tx_seq replayed (null before the first)."""
        applied = self.state.next_tx_seq - 1
        return {"appliedSeq": applied if applied >= 0 else None}

    def get_value(self, stream_id: Any, key: Any, start_index: Any, len: Any,
                  version: Any = None) -> dict:
        """{version, data, size} of a key; a key never written (or deleted) {0, "", 0}."""
        stream, raw_key = self._stream(stream_id), parse_base64(key, "key")
        start, length = parse_u64(start_index, "start_index"), self._len(len)
        return value_segment(self.state.get_value(stream, raw_key, parse_version(version)),
                             start, length)

    def get_next(self, stream_id: Any, key: Any, start_index: Any, len: Any,
                 inclusive: Any, version: Any = None) -> dict | None:
        return self._neighbour(True, stream_id, key, start_index, len, inclusive, version)

    def get_prev(self, stream_id: Any, key: Any, start_index: Any, len: Any,
                 inclusive: Any, version: Any = None) -> dict | None:
        return self._neighbour(False, stream_id, key, start_index, len, inclusive, version)

    def _neighbour(self, forward: bool, stream_id: Any, key: Any, start_index: Any,
                   length: Any, inclusive: Any, version: Any) -> dict | None:
        stream, raw_key = self._stream(stream_id), parse_base64(key, "key")
        start, size = parse_u64(start_index, "start_index"), self._len(length)
        if not isinstance(inclusive, bool):
            raise _bad("inclusive", inclusive, "want true or false")
        walk = self.state.next if forward else self.state.prev
        return self._segment(walk(stream, raw_key, inclusive, parse_version(version)),
                             start, size)

    def get_first(self, stream_id: Any, start_index: Any, len: Any,
                  version: Any = None) -> dict | None:
        stream, start, size = (self._stream(stream_id), parse_u64(start_index, "start_index"),
                               self._len(len))
        return self._segment(self.state.first(stream, parse_version(version)), start, size)

    def get_last(self, stream_id: Any, start_index: Any, len: Any,
                 version: Any = None) -> dict | None:
        stream, start, size = (self._stream(stream_id), parse_u64(start_index, "start_index"),
                               self._len(len))
        return self._segment(self.state.last(stream, parse_version(version)), start, size)

    def get_transaction_result(self, tx_seq: Any) -> str | None:
        return self.state.tx_result(parse_u64(tx_seq, "tx_seq"))

    def get_holding_stream_ids(self) -> list[str]:
        return ["0x" + s.hex() for s in self.streams]

    def has_write_permission(self, account: Any, stream_id: Any, key: Any,
                             version: Any = None) -> bool:
        return self.state.has_write_permission(self._account(account), self._stream(stream_id),
                                               parse_base64(key, "key"),
                                               parse_version(version))

    def is_admin(self, account: Any, stream_id: Any, version: Any = None) -> bool:
        return self.state.is_admin(self._account(account), self._stream(stream_id),
                                   parse_version(version))

    def is_special_key(self, stream_id: Any, key: Any, version: Any = None) -> bool:
        return self.state.is_special_key(self._stream(stream_id), parse_base64(key, "key"),
                                         parse_version(version))

    def is_writer_of_key(self, account: Any, stream_id: Any, key: Any,
                         version: Any = None) -> bool:
        return self.state.is_writer_of_key(self._account(account), self._stream(stream_id),
                                           parse_base64(key, "key"), parse_version(version))

    def is_writer_of_stream(self, account: Any, stream_id: Any, version: Any = None) -> bool:
        return self.state.is_writer_of_stream(self._account(account), self._stream(stream_id),
                                              parse_version(version))
