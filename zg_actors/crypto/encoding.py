"""The one canonical, deterministic binary encoding for everything hashed or signed.

It is RLP (Ethereum's Recursive Length Prefix) over a fixed mapping of Python
values: bytes stay bytes, non-negative ints become minimal big-endian bytes
(0 -> empty), str becomes UTF-8, bool becomes 0/1, lists and tuples become RLP
lists.  RLP is canonical by construction (one encoding per value), which is
what signatures need.  Decoding returns bytes and lists; callers convert
fields by position with `as_int` / `as_str`.
"""

from __future__ import annotations

from collections.abc import Sequence

from zg_actors.errors import InvalidInput

Encodable = bytes | int | str | bool | Sequence["Encodable"]

# RLP prefixes (Ethereum yellow paper, appendix B)
_SHORT_STRING = 0x80
_LONG_STRING = 0xB7
_SHORT_LIST = 0xC0
_LONG_LIST = 0xF7
_MAX_SHORT = 55
# Lists within lists that decode accepts: far deeper than anything the product encodes (a
# block's txs, a tx's args), far shallower than Python's recursion limit (1,000 frames), so
# that a few KB of nested list prefixes are refused, not a RecursionError.
MAX_NESTING = 64


class EncodingError(InvalidInput):
    """A value has no canonical encoding, or bytes are not a canonical encoding."""

    code = "MALFORMED"


def int_to_bytes(value: int) -> bytes:
    if value < 0:
        raise EncodingError(f"negative integer {value} has no canonical encoding", value=value)
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _length_prefix(length: int, short_base: int, long_base: int) -> bytes:
    if length <= _MAX_SHORT:
        return bytes((short_base + length,))
    length_bytes = int_to_bytes(length)
    return bytes((long_base + len(length_bytes),)) + length_bytes


def _encode_bytes(data: bytes) -> bytes:
    if len(data) == 1 and data[0] < _SHORT_STRING:
        return data
    return _length_prefix(len(data), _SHORT_STRING, _LONG_STRING) + data


def encode(value: Encodable) -> bytes:
    """Canonical encoding of `value` (see module docstring for the mapping)."""
    kind = type(value)
    # Fast paths for the common exact types (this function dominates block execution).
    if kind is bytes:
        length = len(value)
        if length == 1 and value[0] < _SHORT_STRING:
            return value
        if length <= _MAX_SHORT:
            return bytes((_SHORT_STRING + length,)) + value
        return _length_prefix(length, _SHORT_STRING, _LONG_STRING) + value
    if kind is int and value >= 0:
        if value == 0:
            return b"\x80"
        if value < _SHORT_STRING:
            return bytes((value,))
        data = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return _length_prefix(len(data), _SHORT_STRING, _LONG_STRING) + data
    if kind is list or kind is tuple:
        body = b"".join([encode(item) for item in value])
        if len(body) <= _MAX_SHORT:
            return bytes((_SHORT_LIST + len(body),)) + body
        return _length_prefix(len(body), _SHORT_LIST, _LONG_LIST) + body
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _encode_bytes(bytes(value))
    if isinstance(value, bool):
        return _encode_bytes(b"\x01" if value else b"")
    if isinstance(value, int):
        return _encode_bytes(int_to_bytes(value))
    if isinstance(value, str):
        return _encode_bytes(value.encode())
    if isinstance(value, (list, tuple)):
        body = b"".join([encode(item) for item in value])
        return _length_prefix(len(body), _SHORT_LIST, _LONG_LIST) + body
    raise EncodingError(f"type {type(value).__name__} has no canonical encoding",
                        value=repr(value)[:80])


Decoded = bytes | list["Decoded"]


def decode(data: bytes) -> Decoded:
    """Inverse of `encode` on the bytes/list level; rejects non-canonical input."""
    data = bytes(data)
    item, end = _decode_at(data, 0, 0)
    if end != len(data):
        raise EncodingError(f"{len(data) - end} trailing bytes after the encoded value",
                            length=len(data))
    return item


def _read_length(data: bytes, pos: int, prefix: int, long_base: int) -> tuple[int, int]:
    """Returns (payload length, payload start) for a long-form prefix at data[pos]."""
    size_len = prefix - long_base
    start = pos + 1 + size_len
    if start > len(data):
        raise EncodingError("truncated length prefix", offset=pos)
    length_bytes = data[pos + 1:start]
    if length_bytes[0] == 0:
        raise EncodingError("length with leading zero", offset=pos)
    length = int.from_bytes(length_bytes, "big")
    if length <= _MAX_SHORT:
        raise EncodingError("long form used for a short item", offset=pos)
    return length, start


def list_prefix(length: int) -> bytes:
    """The prefix of a list whose items take `length` bytes."""
    return _length_prefix(length, _SHORT_LIST, _LONG_LIST)


def _item_end(data: bytes, pos: int) -> int:
    """Where the item at data[pos] ends, its prefix checked but its payload not decoded."""
    if pos >= len(data):
        raise EncodingError("truncated input", offset=pos)
    prefix = data[pos]
    if prefix < _SHORT_STRING:
        return pos + 1
    if prefix <= _LONG_STRING:
        end = pos + 1 + prefix - _SHORT_STRING
    elif prefix < _SHORT_LIST:
        length, start = _read_length(data, pos, prefix, _LONG_STRING)
        end = start + length
    elif prefix <= _LONG_LIST:
        end = pos + 1 + prefix - _SHORT_LIST
    else:
        length, start = _read_length(data, pos, prefix, _LONG_LIST)
        end = start + length
    if end > len(data):
        raise EncodingError("truncated item", offset=pos)
    return end


def list_item_ends(data: bytes, pos: int = 0) -> tuple[int, list[int]]:
    """For the list at data[pos]: where its first item starts and where each item ends,
    without decoding them (to cut a raw encoding apart, e.g. an Ethereum tx's signed
    fields). EncodingError if data[pos] is not a list or an item overruns it."""
    if pos >= len(data) or data[pos] < _SHORT_LIST:
        raise EncodingError("not a list", offset=pos)
    end = _item_end(data, pos)
    prefix = data[pos]
    cursor = pos + 1 + (prefix - _LONG_LIST if prefix > _LONG_LIST else 0)
    first, ends = cursor, []
    while cursor < end:
        cursor = _item_end(data, cursor)
        ends.append(cursor)
    if cursor != end:
        raise EncodingError("list items overrun the list length", offset=pos)
    return first, ends


def _decode_at(data: bytes, pos: int, depth: int) -> tuple[Decoded, int]:
    if pos >= len(data):
        raise EncodingError("truncated input", offset=pos)
    prefix = data[pos]
    if prefix < _SHORT_STRING:
        return data[pos:pos + 1], pos + 1
    if prefix < _SHORT_LIST:
        if prefix <= _LONG_STRING:
            length, start = prefix - _SHORT_STRING, pos + 1
        else:
            length, start = _read_length(data, pos, prefix, _LONG_STRING)
        end = start + length
        if end > len(data):
            raise EncodingError("truncated string", offset=pos)
        if length == 1 and data[start] < _SHORT_STRING:
            raise EncodingError("single byte below 0x80 must encode itself", offset=pos)
        return data[start:end], end
    if prefix <= _LONG_LIST:
        length, start = prefix - _SHORT_LIST, pos + 1
    else:
        length, start = _read_length(data, pos, prefix, _LONG_LIST)
    end = start + length
    if end > len(data):
        raise EncodingError("truncated list", offset=pos)
    if depth == MAX_NESTING:
        raise EncodingError(f"lists nested deeper than {MAX_NESTING} at byte {pos}",
                            offset=pos, limit=MAX_NESTING)
    items: list[Decoded] = []
    cursor = start
    while cursor < end:
        item, cursor = _decode_at(data, cursor, depth + 1)
        items.append(item)
    if cursor != end:
        raise EncodingError("list items overrun the list length", offset=pos)
    return items, end


def as_int(item: Decoded) -> int:
    """Decoded item -> int, rejecting leading zeros (they would make two encodings)."""
    if not isinstance(item, bytes):
        raise EncodingError("expected an integer, got a list")
    if item[:1] == b"\x00":
        raise EncodingError("integer with leading zero byte", value=item)
    return int.from_bytes(item, "big")


def as_bytes(item: Decoded, length: int | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise EncodingError("expected bytes, got a list")
    if length is not None and len(item) != length:
        raise EncodingError(f"expected {length} bytes, got {len(item)}", value=item)
    return item


def as_str(item: Decoded) -> str:
    try:
        return as_bytes(item).decode()
    except UnicodeDecodeError as exc:
        raise EncodingError("invalid UTF-8 string", value=item) from exc


def as_list(item: Decoded, length: int | None = None) -> list[Decoded]:
    if not isinstance(item, list):
        raise EncodingError("expected a list, got bytes")
    if length is not None and len(item) != length:
        raise EncodingError(f"expected a list of {length} items, got {len(item)}",
                            value=len(item))
    return item
