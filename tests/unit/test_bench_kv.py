"""The pure parts of `zg bench kv`: the report and its ratios, the table, the keys and
values it writes, the single-process LMDB anchor, and how a tx's readability is judged."""

from __future__ import annotations

import pytest

from zg_actors.errors import Unavailable
from zg_actors.storage.kv import bench
from zg_actors.storage.kv.encoding import stream_id_from_name
from zg_actors.storage.kv.state import KeyValue
from zg_actors.workload import Tally, summarize

STREAM = stream_id_from_name(bench.BENCH_STREAM)


def network_figures() -> dict:
    def phase(writes_per_tx: int, txs: int, seconds: float, errors: int = 0) -> dict:
        tally = Tally()
        for i in range(txs):
            tally.ok(0.5 + i / 100)
        for _ in range(errors):
            tally.error("Unavailable: KV tx 7: VersionConfliction")
        report = summarize(tally, seconds, unit="txs")
        return {**report, "writes_per_tx": writes_per_tx, "writes": txs * writes_per_tx,
                "writes_per_s": txs * writes_per_tx / seconds}

    reads = Tally()
    for _ in range(300):
        reads.ok(0.002)
    return {"batched": phase(100, 20, 10.0), "single": phase(1, 40, 10.0, errors=2),
            "reads": summarize(reads, 1.0, unit="reads"), "writers": 4, "readers": 4,
            "value_bytes": bench.VALUE_BYTES}


ANCHOR = {"batched": {"writes_per_s": 50_000.0}, "single": {"writes_per_s": 800.0},
          "reads": {"reads_per_s": 150_000.0}}


def test_the_report_puts_each_network_figure_beside_the_lmdb_anchor_as_a_ratio() -> None:
    report = bench.kv_report(network_figures(), ANCHOR)
    assert report["batched_writes_ratio"] == pytest.approx(200.0 / 50_000)
    assert report["single_writes_ratio"] == pytest.approx(4.0 / 800)
    assert report["reads_ratio"] == pytest.approx(300.0 / 150_000)
    assert report["errors"] == 2
    assert report["network"]["batched"]["latency_p50_s"] <= \
        report["network"]["batched"]["latency_p99_s"]


def test_a_ratio_is_none_without_a_figure_or_with_a_zero_anchor() -> None:
    assert bench.ratio(None, 10.0) is None
    assert bench.ratio(5.0, 0.0) is None
    assert bench.ratio(5.0, None) is None
    assert bench.ratio(5.0, 10.0) == 0.5


def test_the_table_shows_the_figures_ratios_latencies_and_errors() -> None:
    table = bench.format_kv_bench(bench.kv_report(network_figures(), ANCHOR))
    rows = list(zip(*[column._cells for column in table.columns], strict=True))
    assert rows[0][:4] == ("writes committed/s, 100 per entry", "200.0", "50000", "0.004")
    assert rows[1][:4] == ("writes committed/s, 1 per entry", "4.0", "800", "0.005")
    assert rows[2][:4] == ("kv_getValue reads/s", "300", "150000", "0.002")
    assert rows[0][4] == "600 ms / 690 ms"  # nearest rank of 0.50..0.69 s
    assert "2 errors" in table.caption and "VersionConfliction" in table.caption


def test_every_tx_writes_fresh_keys_with_a_value_of_its_own() -> None:
    first, second = bench.tx_writes("batched", 0, 3), bench.tx_writes("batched", 1, 3)
    keys = [k for k, _ in first + second + bench.tx_writes("single", 0, 1)]
    assert len(set(keys)) == len(keys) == 7
    assert {v for _, v in first} == {bench.bench_value(0)} != {v for _, v in second}
    assert all(len(v) == bench.VALUE_BYTES for _, v in first)
    assert bench.readable_pairs("batched", 2, 3) == first + second


def test_the_anchor_commits_the_same_rows_to_lmdb_and_reads_them_back(tmp_path) -> None:
    anchor = bench.lmdb_anchor(tmp_path / "lmdb", STREAM, batched_txs=3, batch_writes=4,
                               single_txs=5, reads=10, map_mb=16)
    assert anchor["batched"]["txs"] == bench.ANCHOR_MIN_TXS  # the timing floor
    assert anchor["batched"]["writes"] == 4 * bench.ANCHOR_MIN_TXS
    assert anchor["single"]["writes"] == bench.ANCHOR_MIN_TXS
    assert anchor["reads"]["reads"] == bench.ANCHOR_MIN_READS
    for figure in ("batched", "single"):
        assert anchor[figure]["writes_per_s"] > 0
    assert anchor["reads"]["reads_per_s"] > 0


class ResultOnly:
    """A KV client whose key never reads back, with a recorded result."""

    def __init__(self, result: str | None) -> None:
        self.result = result

    def get_value(self, stream_id: bytes, key: bytes) -> KeyValue:
        return KeyValue(key, 0, b"")

    def transaction_result(self, tx_seq: int) -> str | None:
        return self.result


def test_a_tx_that_did_not_commit_is_an_error_naming_its_result() -> None:
    with pytest.raises(Unavailable, match="KV tx 7: VersionConfliction"):
        bench.wait_readable(ResultOnly("VersionConfliction"), STREAM, b"k", b"v", 7, 5.0)


def test_a_tx_never_readable_is_an_error_after_the_timeout() -> None:
    with pytest.raises(Unavailable, match="not readable after 0 s"):
        bench.wait_readable(ResultOnly(None), STREAM, b"k", b"v", 7, 0.05)
