"""The ordered key-value store a KV node keeps its state in.

KVState (state.py) needs only point reads, floor/ceiling look-ups, prefix scans and
atomic batches of puts: LMDB's cursor (set_range / prev) gives all of them. LmdbStore
keeps the state in a node's LMDB environment (durable once `write` returns);
MemoryStore is the in-process one for tests and tools.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from sortedcontainers import SortedDict

from zg_actors.store import Store

Row = tuple[bytes, bytes]


def successor(prefix: bytes) -> bytes | None:
    """The least byte string above every string that starts with `prefix` (None: none
    is, the prefix being empty or all FF bytes)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


class OrderedStore(Protocol):
    """Byte keys in byte order (LMDB's default order)."""

    def get(self, key: bytes) -> bytes | None: ...

    def floor(self, key: bytes) -> Row | None:
        """The row with the greatest key <= `key`."""

    def ceiling(self, key: bytes) -> Row | None:
        """The row with the smallest key >= `key`."""

    def items(self, prefix: bytes) -> Iterator[Row]:
        """Every row whose key starts with `prefix`, in key order."""

    def write(self, puts: Mapping[bytes, bytes]) -> None:
        """Store every row of `puts` at once (all or none)."""


class MemoryStore:
    """An OrderedStore in a sorted dict."""

    def __init__(self) -> None:
        self.rows: SortedDict = SortedDict()

    def get(self, key: bytes) -> bytes | None:
        return self.rows.get(key)

    def floor(self, key: bytes) -> Row | None:
        index = self.rows.bisect_right(key) - 1
        return self.rows.peekitem(index) if index >= 0 else None

    def ceiling(self, key: bytes) -> Row | None:
        index = self.rows.bisect_left(key)
        return self.rows.peekitem(index) if index < len(self.rows) else None

    def items(self, prefix: bytes) -> Iterator[Row]:
        for key in self.rows.irange(minimum=prefix):
            if not key.startswith(prefix):
                return
            yield key, self.rows[key]

    def write(self, puts: Mapping[bytes, bytes]) -> None:
        self.rows.update(puts)


class LmdbStore:
    """An OrderedStore in one sub-database of a node's LMDB environment."""

    def __init__(self, store: Store, db: str) -> None:
        self.store, self.db = store, db

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(self.db, key)

    def floor(self, key: bytes) -> Row | None:
        # keys < key + 00 are exactly the keys <= key
        return next(iter(self.store.items(self.db, end=key + b"\x00", reverse=True)), None)

    def ceiling(self, key: bytes) -> Row | None:
        return next(iter(self.store.items(self.db, start=key)), None)

    def items(self, prefix: bytes) -> Iterator[Row]:
        return self.store.items(self.db, start=prefix, end=successor(prefix))

    def write(self, puts: Mapping[bytes, bytes]) -> None:
        self.store.write((self.db, key, value) for key, value in puts.items())
