"""A KV node's replayed state over an ordered store: values by version, ACL rows, tx
results and replay progress, with the reads kv_* answers (docs/spec/kv.md "Storage model").

Rows (u64 big-endian so that byte order is numeric order; `esc(key)` keeps key order
and ends every key with 00 00, so that no key's rows run into another's):

    v stream esc(key) version                 -> value (empty: the key is deleted)
    c stream                                  -> version of the stream's first ACL row
    a stream category esc(key) account version -> op, operator   (0G's t_access_control)
    w stream account esc(key) version         -> op   (special-writer ops by account)
    r tx_seq                                  -> result
    p                                         -> next tx_seq to replay

Every read takes a version and sees the rows of versions <= it (0G's "version <=
:version" queries); None means the latest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from zg_actors.storage.kv.encoding import (
    ADDRESS_BYTES,
    SKIP_CHECKS_VERSION,
    STREAM_ID_BYTES,
    VERSION_BYTES,
    AclOp,
)
from zg_actors.storage.kv.store import OrderedStore, successor
from zg_actors.store import u64

ZERO_ADDRESS = bytes(ADDRESS_BYTES)  # the account of SET_KEY_* rows, the operator of
# the admin grant a stream's first tx gives its sender
LATEST = SKIP_CHECKS_VERSION  # "no version given": every row counts
VALUE, CREATED, ACL, SPECIAL_WRITER, RESULT, PROGRESS = b"v", b"c", b"a", b"w", b"r", b"p"
_AFTER_ALL_VERSIONS = b"\xff" * (VERSION_BYTES + 1)  # sorts after every row of one key


def esc(key: bytes) -> bytes:
    """Order-preserving, prefix-free form of a key: 00 -> 00 FF, then 00 00."""
    return key.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def unesc(raw: bytes) -> bytes:
    return raw[:-2].replace(b"\x00\xff", b"\x00")


@dataclass(frozen=True)
class KeyValue:
    """A key's value as of a version; `version` is the tx_seq that wrote it."""

    key: bytes
    version: int
    data: bytes


@dataclass(frozen=True)
class AclRow:
    """One committed ACL op (0G's AccessControl): `account` is whom it is about."""

    op: AclOp
    stream_id: bytes
    key: bytes
    account: bytes
    operator: bytes


class KVState:
    """Reads and the atomic commit of one tx over an OrderedStore."""

    def __init__(self, store: OrderedStore) -> None:
        self.store = store

    # ---- progress and results -------------------------------------------------------------
    @property
    def next_tx_seq(self) -> int:
        """The tx_seq replay continues at (every earlier entry is applied)."""
        raw = self.store.get(PROGRESS)
        return int.from_bytes(raw, "big") if raw else 0

    def tx_result(self, tx_seq: int) -> str | None:
        """The recorded result of `tx_seq`; None while pending or for a skipped entry."""
        raw = self.store.get(RESULT + u64(tx_seq))
        return raw.decode() if raw is not None else None

    def commit(self, tx_seq: int, result: str | None,
               writes: Iterable[tuple[bytes, bytes, bytes]] = (),
               controls: Iterable[AclRow] = ()) -> None:
        """Apply one entry at once: its writes (stream, key, data) and ACL rows at version
        `tx_seq`, its result (None: skipped, none recorded) and the progress past it."""
        puts: dict[bytes, bytes] = {PROGRESS: u64(tx_seq + 1)}
        if result is not None:
            puts[RESULT + u64(tx_seq)] = result.encode()
        for stream_id, key, data in writes:
            puts[VALUE + stream_id + esc(key) + u64(tx_seq)] = data
        for row in controls:
            created = CREATED + row.stream_id
            if self.store.get(created) is None:
                puts[created] = u64(tx_seq)
            puts[ACL + row.stream_id + bytes([row.op & 0xF0]) + esc(row.key) + row.account
                 + u64(tx_seq)] = bytes([row.op]) + row.operator
            if row.op & 0xF0 == AclOp.GRANT_SPECIAL_WRITER_ROLE:
                puts[SPECIAL_WRITER + row.stream_id + row.account + esc(row.key)
                     + u64(tx_seq)] = bytes([row.op])
        self.store.write(puts)

    # ---- values -----------------------------------------------------------------------------
    def _latest(self, stream_id: bytes, key: bytes, version: int) -> KeyValue | None:
        prefix = VALUE + stream_id + esc(key)
        row = self.store.floor(prefix + u64(version))
        if row is None or not row[0].startswith(prefix):
            return None
        return KeyValue(key, int.from_bytes(row[0][-VERSION_BYTES:], "big"), row[1])

    def latest_version(self, stream_id: bytes, key: bytes, version: int = LATEST) -> int:
        """The version of the key's latest write <= `version`; 0 if none (as 0G's node)."""
        found = self._latest(stream_id, key, version)
        return found.version if found else 0

    def get_value(self, stream_id: bytes, key: bytes,
                  version: int | None = None) -> KeyValue | None:
        """The key's latest value <= `version` (a deleted key has empty data); None if it
        was never written by then."""
        return self._latest(stream_id, key, LATEST if version is None else version)

    def _key_of(self, row_key: bytes) -> bytes:
        return unesc(row_key[1 + STREAM_ID_BYTES:-VERSION_BYTES])

    def _walk(self, stream_id: bytes, row_key: bytes, forward: bool,
              version: int) -> KeyValue | None:
        """From `row_key` on, the first key (in the walk's direction) with a live value
        <= `version`: keys written only later, or deleted then, are skipped."""
        prefix = VALUE + stream_id
        while True:
            row = self.store.ceiling(row_key) if forward else self.store.floor(row_key)
            if row is None or not row[0].startswith(prefix):
                return None
            key = self._key_of(row[0])
            found = self._latest(stream_id, key, version)
            if found is not None and found.data:
                return found
            row_key = (prefix + esc(key) + _AFTER_ALL_VERSIONS if forward
                       else prefix + esc(key))

    def next(self, stream_id: bytes, key: bytes, inclusive: bool = False,
             version: int | None = None) -> KeyValue | None:
        """The first live key after `key` (or at it, if `inclusive`)."""
        start = VALUE + stream_id + esc(key)
        return self._walk(stream_id, start if inclusive else start + _AFTER_ALL_VERSIONS,
                          True, LATEST if version is None else version)

    def prev(self, stream_id: bytes, key: bytes, inclusive: bool = False,
             version: int | None = None) -> KeyValue | None:
        """The last live key before `key` (or at it, if `inclusive`)."""
        start = VALUE + stream_id + esc(key)
        return self._walk(stream_id, start + _AFTER_ALL_VERSIONS if inclusive else start,
                          False, LATEST if version is None else version)

    def first(self, stream_id: bytes, version: int | None = None) -> KeyValue | None:
        return self._walk(stream_id, VALUE + stream_id, True,
                          LATEST if version is None else version)

    def last(self, stream_id: bytes, version: int | None = None) -> KeyValue | None:
        end = successor(VALUE + stream_id)
        assert end is not None  # VALUE is not FF
        return self._walk(stream_id, end, False,
                          LATEST if version is None else version)

    # ---- access control (0G's stream_store.rs queries) ----------------------------------
    def is_new_stream(self, stream_id: bytes, version: int | None = None) -> bool:
        """No ACL row of the stream <= `version`: its next tx makes the sender admin."""
        raw = self.store.get(CREATED + stream_id)
        return raw is None or int.from_bytes(raw, "big") > (LATEST if version is None
                                                            else version)

    def _latest_op(self, stream_id: bytes, category: int, key: bytes, account: bytes,
                   version: int | None) -> int | None:
        prefix = ACL + stream_id + bytes([category]) + esc(key) + account
        row = self.store.floor(prefix + u64(LATEST if version is None else version))
        if row is None or not row[0].startswith(prefix):
            return None
        return row[1][0]

    def is_admin(self, account: bytes, stream_id: bytes, version: int | None = None) -> bool:
        return self._latest_op(stream_id, AclOp.GRANT_ADMIN_ROLE, b"", account,
                               version) == AclOp.GRANT_ADMIN_ROLE

    def is_special_key(self, stream_id: bytes, key: bytes, version: int | None = None) -> bool:
        return self._latest_op(stream_id, AclOp.SET_KEY_TO_SPECIAL, key, ZERO_ADDRESS,
                               version) == AclOp.SET_KEY_TO_SPECIAL

    def is_writer_of_stream(self, account: bytes, stream_id: bytes,
                            version: int | None = None) -> bool:
        return self._latest_op(stream_id, AclOp.GRANT_WRITER_ROLE, b"", account,
                               version) == AclOp.GRANT_WRITER_ROLE

    def is_writer_of_key(self, account: bytes, stream_id: bytes, key: bytes,
                         version: int | None = None) -> bool:
        return self._latest_op(stream_id, AclOp.GRANT_SPECIAL_WRITER_ROLE, key, account,
                               version) == AclOp.GRANT_SPECIAL_WRITER_ROLE

    def has_write_permission(self, account: bytes, stream_id: bytes, key: bytes,
                             version: int | None = None) -> bool:
        """May `account` write `key`: a new stream, an admin, else the key's special
        writers if it is special, else the stream's writers."""
        if self.is_new_stream(stream_id, version) or self.is_admin(account, stream_id, version):
            return True
        if self.is_special_key(stream_id, key, version):
            return self.is_writer_of_key(account, stream_id, key, version)
        return self.is_writer_of_stream(account, stream_id, version)

    def _special_writer_keys(self, account: bytes, stream_id: bytes,
                             version: int) -> Iterator[bytes]:
        """Keys whose latest special-writer op for `account` <= `version` is a grant."""
        latest: dict[bytes, int] = {}
        prefix = SPECIAL_WRITER + stream_id + account
        for row_key, op in self.store.items(prefix):
            if int.from_bytes(row_key[-VERSION_BYTES:], "big") <= version:
                latest[row_key[len(prefix):-VERSION_BYTES]] = op[0]
        return (unesc(k) for k, op in latest.items() if op == AclOp.GRANT_SPECIAL_WRITER_ROLE)

    def can_write(self, account: bytes, stream_id: bytes, version: int | None = None) -> bool:
        """The sender pre-check: a new stream, an admin, a stream writer, or a special
        writer of some key (0G's StreamStore::can_write)."""
        at = LATEST if version is None else version
        return (self.is_new_stream(stream_id, at) or self.is_admin(account, stream_id, at)
                or self.is_writer_of_stream(account, stream_id, at)
                or next(self._special_writer_keys(account, stream_id, at), None) is not None)

    # ---- comparing nodes ------------------------------------------------------------------
    def digest(self, streams: Iterable[bytes] = ()) -> bytes:
        """SHA-256 over the followed streams and every row (values, versions, ACLs,
        results, progress) in key order, each length-prefixed: two nodes that replayed the
        same entries for the same streams have the same digest."""
        digest = hashlib.sha256(b"".join(sorted(set(streams))))
        for key, value in self.store.items(b""):
            digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big"))
            digest.update(value)
        return digest.digest()
