"""Copy-on-write key-value overlay used by every state machine (pure, no LMDB).

State machines read and write through an Overlay over a read-only base (an
LMDB sub-database, a parent overlay, or a dict).  On success the caller takes
`writes()` and persists them in one transaction; on an error it drops the
overlay, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

_DELETED = None


def cached_reads(base_get: Callable[[bytes], bytes | None]) -> Callable[[bytes], bytes | None]:
    """`base_get` remembered: for a base that does not change while the reader lives (a
    block executing on committed state reads its trie root, base fee and fee accounts at
    every tx; each an LMDB transaction otherwise)."""
    cache: dict[bytes, bytes | None] = {}

    def get(key: bytes) -> bytes | None:
        try:
            return cache[key]
        except KeyError:
            value = cache[key] = base_get(key)
            return value
    return get


class Overlay:
    def __init__(self, base_get: Callable[[bytes], bytes | None]) -> None:
        self._base_get = base_get
        self._changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._base_get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._changes[key] = value

    def delete(self, key: bytes) -> None:
        self._changes[key] = _DELETED

    def child(self) -> Overlay:
        """An overlay on top of this one, for changes that may be rolled back alone."""
        return Overlay(self.get)

    def merge(self, child: Overlay) -> None:
        self._changes.update(child._changes)

    def writes(self) -> list[tuple[bytes, bytes | None]]:
        """Changes in key order: the canonical write-set."""
        return sorted(self._changes.items())

    def __len__(self) -> int:
        return len(self._changes)
