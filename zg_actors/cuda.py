"""CuPy on this process's GPU, imported only when asked for: a CPU node never pays for it."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from zg_actors.errors import ZgError

INSTALL_HINT = "pip install cupy-cuda12x, or the cupy wheel for the node's CUDA version"


def reachable_cupy(what: str, error: type[ZgError]) -> ModuleType:
    """The cupy module once it reaches a GPU; else `error` saying why `what` cannot run."""
    if importlib.util.find_spec("cupy") is None:
        raise error(f"{what}: CuPy is not installed ({INSTALL_HINT})", backend="cupy")
    try:
        import cupy

        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDA errors when no driver or device
        raise error(f"{what}: CuPy cannot reach a GPU: {exc}", backend="cupy") from exc
    if devices < 1:
        raise error(f"{what}: no CUDA device is visible", backend="cupy", devices=devices)
    return cupy
