"""LMDB helpers shared by every node: one environment per node, named sub-databases.

Writes go through `Store.write`, one LMDB transaction each, synced to disk
before it returns: callers acknowledge only after it returns, which is how
"persist before acknowledge" holds across crashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb

MAX_SUB_DATABASES = 32
MIB = 1024 * 1024
U64_BYTES = 8  # heights, sequence numbers, nonces: 8-byte big-endian keys and values

Write = tuple[str, bytes, bytes | None]  # (sub-db, key, value or None to delete)


class Store:
    """A node's LMDB environment under `path` with the given sub-databases."""

    def __init__(self, path: str | Path, dbs: Iterable[str], map_mb: int = 1024) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.path), map_size=map_mb * MIB, max_dbs=MAX_SUB_DATABASES,
                             sync=True, metasync=True, readahead=False)
        self._dbs = {name: self.env.open_db(name.encode()) for name in dbs}

    def db(self, name: str) -> lmdb._Database:
        return self._dbs[name]

    def get(self, db: str, key: bytes) -> bytes | None:
        with self.env.begin(db=self._dbs[db]) as txn:
            value = txn.get(key)
            return bytes(value) if value is not None else None

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self.write([(db, key, value)])

    def write(self, writes: Iterable[Write]) -> None:
        """Apply all writes atomically and durably."""
        with self.env.begin(write=True) as txn:
            for db, key, value in writes:
                if value is None:
                    txn.delete(key, db=self._dbs[db])
                else:
                    txn.put(key, value, db=self._dbs[db])

    def items(self, db: str, start: bytes = b"", end: bytes | None = None,
              reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered (key, value) pairs with start <= key < end."""
        with self.env.begin(db=self._dbs[db]) as txn:
            cursor = txn.cursor()
            if reverse:
                found = cursor.set_range(end) if end is not None else cursor.last()
                if found and end is not None and cursor.key() >= end:
                    found = cursor.prev()
                elif not found and end is not None:
                    found = cursor.last()
                while found and cursor.key() >= start:
                    yield bytes(cursor.key()), bytes(cursor.value())
                    found = cursor.prev()
                return
            found = cursor.set_range(start)
            while found and (end is None or cursor.key() < end):
                yield bytes(cursor.key()), bytes(cursor.value())
                found = cursor.next()

    def keys(self, db: str, start: bytes = b"", end: bytes | None = None) -> list[bytes]:
        """Keys with start <= key < end, in order, without reading their values."""
        with self.env.begin(db=self._dbs[db]) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(start)
            out = []
            while found and (end is None or cursor.key() < end):
                out.append(bytes(cursor.key()))
                found = cursor.next()
            return out

    def count(self, db: str) -> int:
        with self.env.begin(db=self._dbs[db]) as txn:
            return txn.stat(self._dbs[db])["entries"]

    def close(self) -> None:
        self.env.close()


def u64(value: int) -> bytes:
    """Big-endian key so that LMDB's byte order is numeric order."""
    return value.to_bytes(U64_BYTES, "big")


def from_u64(key: bytes) -> int:
    return int.from_bytes(key, "big")
