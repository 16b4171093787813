"""One switch for the erasure backend of this process (the consensus-specs `use_fastest` pattern).

Every backend is a GF(2^8) matrix multiply over rows of bytes plus a small
matrix inversion; encoding and decoding in `code.py` are built on those two,
so all backends give identical bytes. `use(name)`, `use_fastest()` or the
environment variable ZG_EC_BACKEND=reference|numpy|isal|cupy|fastest pick the
backend; when set, the variable overrides the config's codec.backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from zg_actors.erasure.errors import UnknownBackend

ENV_BACKEND = "ZG_EC_BACKEND"
FASTEST = "fastest"
BACKENDS = ("reference", "numpy", "isal", "cupy")
FASTEST_FIRST = ("cupy", "isal", "numpy", "reference")
CPU_FASTEST_FIRST = ("isal", "numpy", "reference")


class Backend(Protocol):
    name: str

    def matmul(self, matrix: np.ndarray, sources: Sequence[Any],
               outputs: Sequence[Any]) -> None:
        """outputs[i] = XOR over j of matrix[i, j] * sources[j], bytewise in GF(2^8)."""

    def invert(self, matrix: np.ndarray) -> np.ndarray:
        """The inverse of a square matrix in GF(2^8)."""


def _loaders() -> dict[str, Callable[[], Backend]]:
    # Imported on demand: the isal module loads a shared library, the gpu module CuPy.
    from zg_actors.erasure import gpu, isal, lookup, reference

    return {"reference": reference.load, "numpy": lookup.load, "isal": isal.load,
            "cupy": gpu.load}


_loaded: dict[str, Backend] = {}
_unavailable: dict[str, UnknownBackend] = {}  # {name: why it cannot load here}


def get_backend(name: str) -> Backend:
    """The named backend, loaded once per process; UnknownBackend says why if it cannot be."""
    if name in _loaded:
        return _loaded[name]
    if name in _unavailable:  # a fresh traceback: re-raising one instance would grow it
        raise _unavailable[name].with_traceback(None)
    loaders = _loaders()
    if name not in loaders:
        raise UnknownBackend(f"unknown erasure backend {name!r}; choose one of "
                             f"{', '.join(BACKENDS)} or {FASTEST}", backend=name)
    try:
        backend = loaders[name]()
    except UnknownBackend as exc:
        _unavailable[name] = exc
        raise
    _loaded[name] = backend
    return backend


def is_available(name: str) -> bool:
    try:
        get_backend(name)
    except UnknownBackend:
        return False
    return True


def unavailable_reason(name: str) -> str | None:
    """Why `name` cannot run in this process, or None if it can."""
    try:
        get_backend(name)
    except UnknownBackend as exc:
        return str(exc)
    return None


def available_backends() -> list[str]:
    """Installed backends, fastest first."""
    return [name for name in FASTEST_FIRST if is_available(name)]


def fastest(gpu: bool = True) -> Backend:
    """The fastest backend that works here; gpu=False leaves CuPy out (CPU encoder actors)."""
    for name in FASTEST_FIRST if gpu else CPU_FASTEST_FIRST:
        if is_available(name):
            return get_backend(name)
    raise AssertionError("the reference backend is always available")


def resolve(name: str, gpu: bool = True) -> Backend:
    """A backend by name, where "fastest" means the fastest available one."""
    return fastest(gpu) if name == FASTEST else get_backend(name)


def choose_backend(requested: str, gpu: bool) -> tuple[Backend, str | None]:
    """The backend an encoder runs, and why it is not CuPy when CuPy was meant (else None).

    A GPU encoder with "fastest" or "cupy" wants CuPy; without it (not installed,
    no driver) it still has its CPU and encodes there rather than failing.
    """
    if requested == "cupy" or (requested == FASTEST and gpu):
        reason = unavailable_reason("cupy")
        if reason is None:
            return get_backend("cupy"), None
        return fastest(gpu=False), reason
    return resolve(requested, gpu=False), None


def configured_name(config_backend: str = FASTEST) -> str:
    """The backend name in force: ZG_EC_BACKEND when set, else the config's codec.backend."""
    return os.environ.get(ENV_BACKEND) or config_backend


_current: Backend | None = None


def current() -> Backend:
    """This process's backend, chosen on first use from ZG_EC_BACKEND (default fastest)."""
    global _current
    if _current is None:
        _current = resolve(configured_name())
    return _current


def use(name: str) -> Backend:
    """Select this process's backend by name (or "fastest")."""
    global _current
    _current = resolve(name)
    return _current


def use_fastest() -> Backend:
    return use(FASTEST)


def backend_name() -> str:
    return current().name
