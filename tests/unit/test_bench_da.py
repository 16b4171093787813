"""The DA benchmark's pure parts (`zg bench da`): its single-process anchor, window and
sender sizes, aims, sustained-rate arithmetic, batching, and the median of timed runs."""

from __future__ import annotations

import pytest

from zg_actors.config import load_config


def test_bench_anchor_runs_the_pure_pipeline() -> None:
    from zg_actors.config import load_config
    from zg_actors.da.bench import make_payloads, single_process_pipeline

    payloads = make_payloads(3, 2_000)
    assert len(set(payloads)) == 3 and all(len(p) == 2_000 for p in payloads)
    config = load_config().replace(**{"da.k": 4, "da.n": 12, "da.max_votes": 3})
    anchor = single_process_pipeline(config, blobs=2, blob_bytes=10_000)
    assert anchor["blobs"] == 2 and anchor["mb_per_s"] > 0


def test_bench_window_sizes_and_aims() -> None:
    import argparse

    from zg_actors.da.bench import IN_FLIGHT_BYTES, MAX_WINDOW, da_aims, window_for
    from zg_actors.da.cli import parse_byte_sizes

    assert parse_byte_sizes("128KiB,2MiB,16777216") == [131072, 2 << 20, 16 << 20]
    with pytest.raises(argparse.ArgumentTypeError, match="not a size: '2GB'"):
        parse_byte_sizes("2GB")
    assert window_for(16 << 20, 256) == IN_FLIGHT_BYTES // (16 << 20)
    assert window_for(2 << 20, 1024) == min(MAX_WINDOW, IN_FLIGHT_BYTES // (2 << 20))
    assert window_for(1024, 4 * MAX_WINDOW) == MAX_WINDOW and window_for(1024, 20) == 10
    assert window_for(1 << 30, 256) == 2
    from zg_actors.da.bench import INITIAL_WINDOW, initial_window_for
    assert initial_window_for(512, 64) == 128  # two batches of 64
    assert initial_window_for(512, 8) == INITIAL_WINDOW and initial_window_for(24, 64) == 24
    from zg_actors.da.bench import MAX_SENDERS, MIN_SENDERS, senders_for
    # Small blobs: many calls open, so that the gateway's groups fill; big ones: two.
    assert senders_for(128 << 10) == MAX_SENDERS == 64 and senders_for(1) == MAX_SENDERS
    assert senders_for(2 << 20) == 4
    assert senders_for(16 << 20) == senders_for(32_505_852) == MIN_SENDERS == 2
    from zg_actors.da.bench import STALL_MARGIN_S, stall_after_s
    # A blob may wait for its own batch to fill while the one before it is certified.
    assert stall_after_s(20.0) == 40.0 + STALL_MARGIN_S

    def run(backend: str, size: int, mb_s: float, ratio: float) -> dict:
        return {"backend": backend, "blob_bytes": size, "ratio_to_single_process": ratio,
                "stream": {"confirmed_mb_per_s": mb_s}}

    aims = da_aims([run("milagro", 1 << 17, 1.0, 0.35), run("milagro", 2 << 20, 5.0, 0.40),
                    run("py_ecc", 1 << 17, 0.1, 0.02), run("py_ecc", 2 << 20, 3.0, 0.36)])
    assert aims["ratio_met"] and aims["independence_met"]
    # Judged on the ratios to each run's own anchor; the raw MB/s quotient is reported.
    assert aims["py_ecc_over_fast"] == {2 << 20: 0.9}  # 128 KiB is not held to it
    assert aims["py_ecc_over_fast_mb_s"] == {2 << 20: 0.6}
    missed = da_aims([run("milagro", 2 << 20, 5.0, 0.2), run("py_ecc", 2 << 20, 5.0, 0.1)])
    assert not missed["ratio_met"] and missed["independence_met"] is False
    alone = da_aims([run("milagro", 2 << 20, 5.0, 0.4)])  # nothing to compare with
    assert alone["ratio_met"] and alone["independence_met"] is None


def test_bench_sustained_rate_leaves_out_the_first_batch_and_the_drain() -> None:
    from zg_actors.da.bench import MB, ratios, sustained_mb_per_s

    # Batches of 4 blobs seen at 10 s, 20 s, 30 s: 8 blobs over 20 s.
    seen = [10.0] * 4 + [20.0] * 4 + [30.0] * 4
    assert sustained_mb_per_s(seen, MB) == 8 / 20
    # The offer stopped at 32 s: a last, partial batch that sealed on the interval at
    # 55 s is the drain, not the steady state.
    assert sustained_mb_per_s(seen + [55.0], MB, offered_until=32.0) == 8 / 20
    assert sustained_mb_per_s(seen + [55.0], MB) == 9 / 45
    assert sustained_mb_per_s(seen, MB, offered_until=15.0) is None  # one round left
    assert sustained_mb_per_s([10.0, 12.0], MB) is None  # too short a span
    assert sustained_mb_per_s([], MB) is None
    stream = {"sustained_mb_per_s": 0.4, "confirmed_mb_per_s": 0.3}
    assert ratios(stream, 2.0) == {"ratio_to_single_process": 0.2, "whole_run_ratio": 0.15}
    short = {"sustained_mb_per_s": None, "confirmed_mb_per_s": 0.3}
    assert ratios(short, 2.0)["ratio_to_single_process"] == 0.15


def test_bench_batches_grow_only_for_big_blobs() -> None:
    from zg_actors.da.bench import BENCH_BATCH_INTERVAL_S, BENCH_BATCH_MAX_BYTES, batching_for

    da = load_config().da
    assert batching_for(128 * 1024, da) == {"interval_s": 1.0, "max_blobs": 64,
                                            "max_bytes": 64 << 20}
    assert batching_for(2 << 20, da) == {"interval_s": BENCH_BATCH_INTERVAL_S,
                                         "max_blobs": 64, "max_bytes": BENCH_BATCH_MAX_BYTES}
    assert batching_for(16 << 20, da)["max_blobs"] == 64  # never below the config's
    few = da.__class__(**{**da.__dict__, "batch_max_blobs": 8})
    assert batching_for(4 << 20, few)["max_blobs"] == 32  # 128 MiB of 4 MiB blobs
    slow = da.__class__(**{**da.__dict__, "batch_interval_s": 60.0})
    assert batching_for(16 << 20, slow)["interval_s"] == 60.0


def test_median_timing_is_the_true_median() -> None:
    """Odd counts: the middle timing. Even counts (the DA anchor's 3 + 3): the mean of
    the two middle ones, not the upper one."""
    from zg_actors.runtime import median_timing

    odd = median_timing([{"mb_per_s": v, "seconds": 1 / v} for v in (30.0, 10.0, 20.0)])
    assert odd["mb_per_s"] == 20.0 and odd["repeats_mb_per_s"] == [10.0, 20.0, 30.0]
    even = median_timing([{"mb_per_s": v, "seconds": s}
                          for v, s in ((25.0, 4.0), (16.0, 6.0), (15.0, 7.0), (26.0, 3.0))])
    assert even["mb_per_s"] == 20.5 and even["seconds"] == 5.0
