"""The cupy backend: the numpy backend's lookup kernel on CuPy arrays, on one GPU.

CuPy is imported only here, and only when it is installed: a CPU node never
pays for it. Host inputs are copied to the device once per call and the results
copied back; callers that already hold device arrays pass them and get device
results (no copies), which is where the GPU's own speed shows.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from zg_actors.erasure import field
from zg_actors.erasure.errors import UnknownBackend
from zg_actors.erasure.lookup import ProductTables, gf_matmul_lookup

INSTALL_HINT = "pip install cupy-cuda12x, or the cupy wheel for the node's CUDA version"


class CupyBackend:
    name = "cupy"

    def __init__(self, cupy: ModuleType) -> None:
        self.cupy = cupy
        self.tables = ProductTables(cupy, {})

    def matmul(self, matrix: np.ndarray, sources: Sequence[Any], outputs: Sequence[Any]) -> None:
        cp = self.cupy
        if not outputs or not len(outputs[0]):
            return
        on_device = all(isinstance(output, cp.ndarray) for output in outputs)
        device_sources = [cp.asarray(source) for source in sources]
        device_outputs = (list(outputs) if on_device else
                          list(cp.empty((len(outputs), len(outputs[0])), dtype=cp.uint8)))
        # One chunk: a GPU wants few, large kernel launches; its caches are not the limit.
        gf_matmul_lookup(matrix, device_sources, device_outputs, self.tables, len(outputs[0]))
        if not on_device:
            for output, device in zip(outputs, device_outputs, strict=True):
                output[:] = device.get()

    def invert(self, matrix: np.ndarray) -> np.ndarray:
        return field.invert_matrix(matrix)  # k x k on the host: tiny next to the data


@functools.cache
def load() -> CupyBackend:
    """The cupy backend, or UnknownBackend saying why this process cannot use a GPU."""
    if importlib.util.find_spec("cupy") is None:
        raise UnknownBackend(f"erasure backend 'cupy': CuPy is not installed ({INSTALL_HINT})",
                             backend="cupy")
    try:
        import cupy

        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDA errors when no driver or device
        raise UnknownBackend(f"erasure backend 'cupy': CuPy cannot reach a GPU: {exc}",
                             backend="cupy") from exc
    if devices < 1:
        raise UnknownBackend("erasure backend 'cupy': no CUDA device is visible",
                             backend="cupy", devices=devices)
    return CupyBackend(cupy)
