"""Every protocol note the code cites is in the repository: a path such as
`docs/spec/storage.md "File root"` in a docstring or comment must lead a reader to the
file, and to the part it names."""

from __future__ import annotations

import re
from pathlib import Path

import zg_actors

ROOT = Path(zg_actors.__file__).parent.parent
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*spec/[\w.-]+\.md)")
PART = re.compile(CITATION.pattern + r'\s+"([^"]+)"')  # the path, then a quoted part
CITING = ("zg_actors", "tests", "jobs")
SUFFIXES = {".py", ".yaml", ".yml", ".proto"}


def _citing_texts() -> dict[str, str]:
    """{file: text} of the package, its tests and jobs."""
    return {str(path.relative_to(ROOT)): path.read_text(errors="replace")
            for folder in CITING for path in sorted((ROOT / folder).rglob("*"))
            if path.suffix in SUFFIXES and path.is_file()}


def _citations() -> dict[str, set[str]]:
    """{cited path: files citing it}."""
    cited: dict[str, set[str]] = {}
    for name, text in _citing_texts().items():
        for target in CITATION.findall(text):
            cited.setdefault(target, set()).add(name)
    return cited


def test_every_cited_spec_file_exists() -> None:
    cited = _citations()
    missing = {target: sorted(files) for target, files in cited.items()
               if not (ROOT / target).is_file()}
    assert missing == {}
    assert {"docs/spec/storage.md", "docs/spec/da.md", "docs/spec/erasure.md"} <= set(cited)


def test_every_cited_part_is_in_its_spec_file() -> None:
    absent = [(name, target, part) for name, text in _citing_texts().items()
              for target, part in PART.findall(text)
              if (ROOT / target).is_file() and part not in (ROOT / target).read_text()]
    assert absent == []
