"""`zg status` at a glance, without Ray: rates between two looks and the view drawn from
a look (what `--watch` redraws)."""

from __future__ import annotations

import copy
import json

import pytest
from rich.console import Console

from zg_actors.config import ZG
from zg_actors.glance import rates, render, replay_lag

PILLARS = {name: {"state": "up", "running": 1, "expected": 1, "missing": []}
           for name in ("chain", "storage", "kv", "da", "compute")}
LOOK = {
    "namespace": "zg", "at": 1_000.0, "pillars": PILLARS,
    "networks": [{"network_id": 0, "status": "active", "identity": 0, "height": 120,
                  "committed_txs": 5_000, "mempool": 3, "validators": [{}] * 4},
                 {"network_id": 1, "status": "retired", "members": [0, 1, 2, 3]}],
    "staking": {"tick": 7, "supply": 1_000 * ZG, "total_staked": 400 * ZG,
                "bridge_mints": 2, "slashings": 0, "invariants_ok": True, "problems": []},
    "storage": {"flows": {0: {"files": 9, "bytes": 3_000_000}},
                "repair": {"short": 0, "lost": 0},
                "miners": [{"miner": 0, "shards": 12}, {"miner": 1, "shards": 13}]},
    "da": {"epoch": 4, "statuses": {"FINALIZED": 30, "PROCESSING": 2},
           "confirmed_bytes": 10_000_000},
    "compute": {"providers": [{"index": 0, "model": "SmolLM2", "served": 40,
                               "unsettled_requests": 5, "unsettled_fees": ZG // 1000}]},
    "kv": {"nodes": [{"index": 0, "network_id": 0, "replayed": 7, "entries": 9, "lag": 2,
                      "last_error": None}, {"index": 1, "down": "ActorDiedError"}]},
    "endpoints": {"DA Disperser (gRPC)": "10.0.0.1:50051",
                  "network 0 Ethereum (JSON-RPC)": "http://10.0.0.1:8545/evm/0",
                  "KV (JSON-RPC)": "http://10.0.0.1:8545/kv"},
}


def later(seconds: float, **changes: object) -> dict:
    """LOOK `seconds` later, with counters moved on."""
    look = copy.deepcopy(LOOK)
    look["at"] += seconds
    look["networks"][0]["committed_txs"] += changes.get("txs", 0)
    look["networks"][0]["identity"] = changes.get("identity", 0)
    look["storage"]["flows"][0]["bytes"] += changes.get("stored", 0)
    look["da"]["confirmed_bytes"] += changes.get("certified", 0)
    look["compute"]["providers"][0]["served"] += changes.get("served", 0)
    return look


def text(look: dict, per_s: dict | None = None) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render(look, per_s))
    return console.export_text()


def test_rates_per_second_between_two_looks() -> None:
    per_s = rates(LOOK, later(2.0, txs=800, stored=1_000_000, certified=3_000_000, served=4))
    assert per_s["seconds"] == 2.0
    assert per_s["tx_per_s"] == {0: 400.0, 1: None}  # a retired network has no count
    assert per_s["stored_bytes_per_s"] == {0: 500_000.0}
    assert per_s["da_mb_per_s"] == 1.5
    assert per_s["requests_per_s"] == {0: 2.0}


def test_a_counter_that_went_back_or_another_validator_gives_no_rate() -> None:
    restarted = later(1.0)
    restarted["compute"]["providers"][0]["served"] = 1  # the provider restarted
    assert rates(LOOK, restarted)["requests_per_s"] == {0: None}
    # Counts of two validators differ: no rate rather than a wrong one.
    assert rates(LOOK, later(1.0, txs=50, identity=2))["tx_per_s"][0] is None


def test_the_view_shows_every_pillar_and_its_figures() -> None:
    shown = text(later(2.0, txs=800), rates(LOOK, later(2.0, txs=800, certified=3_000_000,
                                                        served=4, stored=1_000_000)))
    for figure in ("pillars in namespace zg", "chain: consensus networks", "400.0",
                   "ZG supply 1,000.00", "invariants ok", "storage", "3.00 MB", "0.50",
                   "shards per miner 0: 12, 1: 13", "DA (epoch 4)", "FINALIZED", "30", "1.50",
                   "compute providers", "SmolLM2", "2.00", "0.001000",
                   "DA Disperser (gRPC)", "10.0.0.1:50051", "rates over 2.0 s",
                   "KV nodes", "replay lag", "down (ActorDiedError)",
                   "network 0 Ethereum (JSON-RPC)", "http://10.0.0.1:8545/evm/0",
                   "KV (JSON-RPC)"):
        assert figure in shown, figure


def test_replay_lag_is_the_flow_entries_a_kv_node_has_not_replayed() -> None:
    statuses = [{"index": 0, "network_id": 0, "next_tx_seq": 7, "last_error": None},
                {"index": 1, "network_id": 3, "next_tx_seq": 5},
                {"index": 2, "down": "ActorDiedError"}]
    lag = replay_lag(statuses, {0: 9})
    assert [n.get("lag") for n in lag] == [2, None, None]
    assert lag[0]["replayed"] == 7 and lag[0]["entries"] == 9 and lag[2]["down"]


def test_one_look_has_no_rates_and_a_down_stack_shows_only_its_pillars() -> None:
    assert "no rates (one look)" in text(LOOK)
    down = {"namespace": "zg", "at": 0.0, "endpoints": {},
            "pillars": {name: {**p, "state": "down", "running": 0} for name, p in
                        PILLARS.items()}}
    shown = text(down)
    assert "down" in shown
    for part in ("consensus networks", "shards per miner", "DA (epoch", "compute providers",
                 "endpoints", "KV nodes"):
        assert part not in shown, part


def watch(monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[float]:
    """`zg status --watch` over three looks, with Ctrl-C at the third nap; the naps."""
    from zg_actors import cli, glance

    looks = iter([LOOK, later(1.0, txs=100), later(2.0, txs=300)])
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C

    monkeypatch.setattr(cli, "connect", lambda args, config: None)
    monkeypatch.setattr(glance, "look", lambda config: next(looks))
    monkeypatch.setattr(cli.time, "sleep", nap)
    assert cli.main(["status", "--watch", *argv]) == 0
    return naps


def test_watch_redraws_the_view_in_place(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert watch(monkeypatch, "--interval", "2") == [2.0, 2.0, 2.0]
    drawn = capsys.readouterr().err
    assert "chain: consensus networks" in drawn and "200.0" in drawn  # the latest rates


def test_watch_with_json_prints_each_look_with_rates(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    naps = watch(monkeypatch, "--interval", "0.1", "--json")
    out = capsys.readouterr().out
    documents = [json.loads(part) for part in out.replace("}\n{", "}\x00{").split("\x00")]
    assert [d["rates"]["tx_per_s"]["0"] for d in documents] == [100.0, 200.0]
    assert naps == [0.5, 0.5, 0.5]  # never more often than WATCH_MIN_INTERVAL_S
