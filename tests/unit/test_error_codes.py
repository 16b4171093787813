"""Every error class has its own code: a client acting on `code` (the CLI's --json
errors, gRPC details) must be able to tell two errors apart without parsing messages."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

import zg_actors
from zg_actors.errors import ZgError


def _error_classes() -> set[type[ZgError]]:
    for module in pkgutil.walk_packages(zg_actors.__path__, "zg_actors."):
        importlib.import_module(module.name)
    found: set[type[ZgError]] = set()
    todo = [ZgError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {cls for cls in found if cls.__module__.startswith("zg_actors.")}


def test_error_codes_are_distinct() -> None:
    classes = _error_classes()
    by_code: dict[str, list[str]] = defaultdict(list)
    for cls in classes:
        by_code[cls.code].append(f"{cls.__module__}.{cls.__qualname__}")
    shared = {code: sorted(names) for code, names in by_code.items() if len(names) > 1}
    assert shared == {}
    assert len(classes) > 50  # the walk found the pillars' errors, not just errors.py
