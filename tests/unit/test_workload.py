"""The workload jobs' shared figures: percentiles, tallies and reports, seeded datasets,
pacing, background loads, and every job's command line."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from zg_actors.workload import (
    Background,
    Pacer,
    Progress,
    Tally,
    finish,
    mixed_sizes,
    percentile,
    seeded_bytes,
    summarize,
)

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def load_job(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentile_is_nearest_rank_and_none_without_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0 and percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_a_report_has_rate_mb_per_s_latencies_and_errors_by_kind() -> None:
    tally = Tally()
    for latency in (0.1, 0.2, 0.3, 0.4):
        tally.ok(latency, 500_000)
    tally.error(ValueError("bad input 7"))
    tally.error(ValueError("bad input 7"))
    tally.error("not started: --max-seconds passed")
    report = summarize(tally, 2.0, "files")
    assert report["files"] == 4 and report["files_per_s"] == 2.0
    assert report["mb_per_s"] == 1.0 and report["bytes"] == 2_000_000
    assert (report["latency_p50_s"], report["latency_p99_s"]) == (0.3, 0.4)
    assert report["errors"] == 3
    assert report["error_kinds"] == {"ValueError: bad input 7": 2,
                                     "not started: --max-seconds passed": 1}


def test_a_report_without_bytes_has_no_mb_per_s_and_none_latencies_when_empty() -> None:
    report = summarize(Tally(), 0.0)
    assert "mb_per_s" not in report and report["ops"] == 0
    assert report["latency_p50_s"] is None and report["errors"] == 0


def test_a_tally_shared_by_threads_loses_nothing() -> None:
    tally = Tally()

    def work() -> None:
        for _ in range(1000):
            tally.ok(0.01, 1)
            tally.count(tokens=2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (tally.ops, tally.bytes, tally.counts) == (4000, 4000, {"tokens": 8000})


def test_mixed_sizes_are_seeded_within_bounds_and_spread() -> None:
    sizes = mixed_sizes(200, 4096, 4 << 20, seed=1)
    assert sizes == mixed_sizes(200, 4096, 4 << 20, seed=1)
    assert sizes != mixed_sizes(200, 4096, 4 << 20, seed=2)
    assert all(4096 <= s <= 4 << 20 for s in sizes)
    # Log-uniform: many small files and a few big ones, both ends present.
    assert sum(s < 64 * 1024 for s in sizes) > 50 and sum(s > 1 << 20 for s in sizes) > 20
    with pytest.raises(ValueError, match="0 < min 0"):
        mixed_sizes(3, 0, 10, 1)


def test_seeded_bytes_regenerate_the_same_file() -> None:
    assert seeded_bytes(1, 5, 1000) == seeded_bytes(1, 5, 1000)
    assert seeded_bytes(1, 5, 1000) != seeded_bytes(1, 6, 1000)
    assert len(seeded_bytes(1, 0, 0)) == 0


def test_the_pacer_sends_at_the_rate_and_catches_up_after_a_stall() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock)
    assert pacer.due() == 1  # the first send is due at once
    pacer.mark()
    assert pacer.due() == 0 and pacer.wait_s() == pytest.approx(0.25)
    clock.now += 1.0  # a stall of a second: the four sends it missed are due
    assert pacer.due() == 4
    pacer.mark(4)
    assert pacer.due() == 0
    with pytest.raises(ValueError):
        Pacer(0.0)


def test_progress_lines_come_at_their_interval_and_not_when_quiet() -> None:
    clock, lines = FakeClock(), []
    progress = Progress(interval_s=5.0, clock=clock, write=lines.append)
    progress.tick(lambda: "early")
    clock.now += 5.0
    progress.tick(lambda: "due")
    progress.tick(lambda: "again")
    assert lines == ["[   5.0s] due"]
    quiet = Progress(quiet=True, clock=clock, write=lines.append)
    quiet.say("nothing")
    assert len(lines) == 1


def test_a_background_load_reports_each_window_with_its_errors() -> None:
    def operation(i: int) -> int:
        if i == 2:
            raise RuntimeError("miner gone")
        time.sleep(0.01)
        return 100

    load = Background("storage", operation).start()
    assert _wait(lambda: len(load.done) >= 4)
    load.stop(5.0)
    whole = load.window(0.0, time.monotonic())
    assert whole["ops"] == len(load.done) and whole["bytes"] == 100 * len(load.done)
    assert whole["error_kinds"] == {"RuntimeError: miner gone": 1}
    assert load.window(0.0, 1.0)["ops"] == 0


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("name", ["storage_ingest", "da_rollup", "inference_load",
                                  "ai_pipeline", "scale_networks", "kv_workload",
                                  "evm_load", "chaos"])
def test_every_job_has_help_json_and_the_common_options(name: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    job = load_job(name)
    with pytest.raises(SystemExit) as done:
        job.parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--json", "--config", "--address", "--quiet"):
        assert option in text
    assert "ray job submit --working-dir . -- python jobs/" in text
    assert job.parse_args(["--json"]).json


def test_scale_networks_takes_the_pillars_it_keeps_loaded() -> None:
    job = load_job("scale_networks")
    assert job.parse_args(["--pillars", "storage,da"]).pillars == ["storage", "da"]
    assert job.parse_args([]).pillars == []
    with pytest.raises(SystemExit):
        job.parse_args(["--pillars", "storage,kv"])


def test_kv_workload_contends_the_chosen_share_of_its_txs() -> None:
    job = load_job("kv_workload")
    assert job.contending(20, 0.25, 1).count(True) == 5
    assert job.contending(20, 0.25, 1) == job.contending(20, 0.25, 1)
    assert job.contending(3, 0.0, 1) == [False] * 3 and job.contending(3, 1.0, 2) == [True] * 3
    with pytest.raises(ValueError, match="1.5"):
        job.contending(3, 1.5, 1)


def test_evm_load_says_what_to_install_when_web3_or_vyper_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from zg_actors.errors import Unavailable
    from zg_actors.evm.contracts import erc20

    job = load_job("evm_load")
    monkeypatch.setitem(sys.modules, "web3", None)
    with pytest.raises(Unavailable, match="needs web3.py.*pip install web3"):
        job.needs()
    monkeypatch.setitem(sys.modules, "vyper", None)
    with pytest.raises(Unavailable, match="needs Vyper"):
        erc20()


def test_the_rollup_chains_its_batches_by_hash() -> None:
    from zg_actors.crypto.keccak import keccak256

    batches = load_job("da_rollup").sequencer_batches(1, 1024)
    (n0, b0), (n1, b1) = next(batches), next(batches)
    assert (n0, n1) == (0, 1) and len(b0) == len(b1) == 1024
    assert b1[:8] == (1).to_bytes(8, "big") and b1[8:40] == keccak256(b0)
    assert b0[8:40] == bytes(32)


def test_the_final_report_prints_roots_in_hex_and_fails_the_job_on_errors(
        capsys: pytest.CaptureFixture) -> None:
    import argparse
    import json

    report = {"job": "x", "where": {"roots": [b"\x01" * 32]}, "errors": 0}
    assert finish(argparse.Namespace(json=True), report) == 0
    assert json.loads(capsys.readouterr().out)["where"]["roots"] == ["0x" + "01" * 32]
    assert finish(argparse.Namespace(json=False), {**report, "errors": 2}) == 1
    assert "0x" + "01" * 32 in capsys.readouterr().out.replace("\n", "").replace(" ", "")\
        .replace("│", "")
