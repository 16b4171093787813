"""`zg chaos` / jobs/chaos.py on a running deployment: a pillar the job's config names more
actors for than run (e.g. a job submitted to a cluster without the deployment's --config)
is named in the progress and the report, not skipped silently."""

from __future__ import annotations

from zg_actors.chaos import cli
from zg_actors.chaos.cli import PARTIAL_HINT, partial_pillars, print_report


def states() -> dict:
    return {"chain": {"state": "up", "missing": []},
            "storage": {"state": "partial", "missing": ["zg-storage-miner-3"]},
            "kv": {"state": "down", "missing": ["zg-kv-node-0"]}}


def test_partial_pillars_name_their_missing_actors() -> None:
    assert partial_pillars(states()) == {"storage": ["zg-storage-miner-3"]}


def test_the_report_table_names_a_partial_pillar(monkeypatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(cli.console, "print", lambda x="": lines.append(str(x)))
    zero = {"tx": 0}
    print_report({"seed": 2, "duration_s": 60.0, "faults_scheduled": {}, "faults_injected": {},
                  "faults_beyond_rule": 0, "faults_failed": 0, "acknowledged": {"tx": 5},
                  "lost": zero, "duplicated": zero, "unreadable": zero, "invariants": {},
                  "load": {}, "ok": True, "examples": [],
                  "pillars_partial": partial_pillars(states())})
    named = [line for line in lines if "zg-storage-miner-3 not running" in line]
    assert len(named) == 1 and PARTIAL_HINT in named[0] and "storage" in named[0]
