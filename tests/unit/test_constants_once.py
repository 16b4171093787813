"""Protocol constants and encoders are defined once: a second copy can drift from the first
(0G's sector is 256 bytes everywhere; keys are 8-byte big-endian everywhere)."""

from __future__ import annotations

import ast
from pathlib import Path

import zg_actors

PACKAGE = Path(zg_actors.__file__).parent


def _definitions(name: str) -> list[str]:
    """Modules of the package that assign `name` at top level or define a function so named."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if isinstance(node, ast.FunctionDef):
                names.append(node.name)
            if name in names:
                found.append(str(path.relative_to(PACKAGE)))
    return found


def test_sector_bytes_is_defined_once() -> None:
    assert _definitions("SECTOR_BYTES") == ["crypto/merkle.py"]


def test_u64_is_defined_once() -> None:
    assert _definitions("u64") + _definitions("_u64") == ["store/__init__.py"]
