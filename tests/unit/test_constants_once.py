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


def _inline_u64(path: Path) -> list[int]:
    """Lines of `path` that build an 8-byte integer by hand instead of calling `u64`."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "to_bytes" and node.args
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == 8]


def test_chain_builds_u64_keys_with_the_one_helper() -> None:
    inline = {str(path.relative_to(PACKAGE)): lines
              for path in sorted((PACKAGE / "chain").rglob("*.py"))
              if (lines := _inline_u64(path))}
    assert inline == {}
