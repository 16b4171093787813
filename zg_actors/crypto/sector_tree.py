"""Where 0G sector-tree roots are computed: this process's CPU, or a GPU through CuPy.

Chosen like the erasure backends: `use(name)`, or the environment variable
ZG_HASH_BACKEND=cpu|cupy|fastest (default fastest: the GPU when CuPy reaches
one, else the CPU). Ray gives a GPU only to actors that ask for one, so in a
deployment only GPU encoder actors hash on a GPU. Both backends give the same
roots: `crypto.merkle`'s tree over keccak-256 of each sector.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from zg_actors.crypto.merkle import merkle_root, sector_hashes
from zg_actors.errors import InvalidInput, Unavailable

ENV_BACKEND = "ZG_HASH_BACKEND"
FASTEST = "fastest"
BACKENDS = ("cpu", "cupy")


class SectorTree(Protocol):
    name: str

    def roots(self, rows: Any, sector_bytes: int) -> list[bytes]:
        """The sector-tree root of each row of a rows x length uint8 array."""


def as_rows(data: Any) -> Any:
    """bytes, a 1-D array (one row) or a 2-D array (many) as a 2-D array."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    return data.reshape(1, -1) if data.ndim == 1 else data


class CpuSectorTree:
    """keccak-256 of each sector in this process, then the 0G tree (crypto.merkle)."""

    name = "cpu"

    def roots(self, rows: Any, sector_bytes: int) -> list[bytes]:
        if isinstance(rows, bytes):  # the common single row: hashed without a copy
            return [merkle_root(sector_hashes(rows, sector_bytes))]
        return [merkle_root(sector_hashes(np.asarray(row).tobytes(), sector_bytes))
                for row in as_rows(rows)]


def _loaders() -> dict[str, Callable[[], SectorTree]]:
    from zg_actors.crypto import gpu_sector_tree  # CuPy, imported only when asked for

    return {"cpu": CpuSectorTree, "cupy": gpu_sector_tree.load}


_loaded: dict[str, SectorTree] = {}
_unavailable: dict[str, Unavailable] = {}  # {name: why it cannot load here}
_chosen: str | None = None  # set by use(); else ZG_HASH_BACKEND, else fastest
_fastest: SectorTree | None = None  # what "fastest" means here, decided on first use


def get_backend(name: str) -> SectorTree:
    """The named backend, loaded once per process; Unavailable says why if it cannot be."""
    if name in _loaded:
        return _loaded[name]
    if name in _unavailable:  # a fresh traceback: re-raising one instance would grow it
        raise _unavailable[name].with_traceback(None)
    loaders = _loaders()
    if name not in loaders:
        raise InvalidInput(f"unknown sector-tree backend {name!r}; choose one of "
                           f"{', '.join(BACKENDS)} or {FASTEST}", backend=name)
    try:
        _loaded[name] = loaders[name]()
    except Unavailable as exc:
        _unavailable[name] = exc
        raise
    return _loaded[name]


def resolve(name: str | None = None) -> SectorTree:
    """A backend by name; None means this process's (use(), else ZG_HASH_BACKEND, else
    fastest), and fastest the GPU when CuPy reaches one, else the CPU."""
    name = name or _chosen or os.environ.get(ENV_BACKEND) or FASTEST
    if name != FASTEST:
        return get_backend(name)
    global _fastest
    if _fastest is None:  # decided once: every sector_tree_root call comes through here
        try:
            _fastest = get_backend("cupy")
        except Unavailable:
            _fastest = get_backend("cpu")
    return _fastest


def use(name: str) -> SectorTree:
    """Select this process's backend by name (or "fastest")."""
    global _chosen
    backend = resolve(name)
    _chosen = name
    return backend
