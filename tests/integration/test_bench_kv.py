"""`zg bench kv`'s core with tiny sizes on the shared Ray session: KV txs through the SDK
until readable through the kv_* JSON-RPC, reads back, the LMDB anchor, the report."""

from __future__ import annotations

import pytest

from zg_actors.storage.kv import bench
from zg_actors.workload import Progress

from .test_kv import NOTES, kv  # noqa: F401  (the fixture: miners, KV nodes, RPC)

pytestmark = pytest.mark.integration
DURATION_S = 3.0  # per measurement: a few txs each
BATCH = 5  # writes per batched tx


def test_the_kv_bench_core_commits_reads_and_reports_beside_lmdb(kv, tmp_path) -> None:  # noqa: F811
    client, storage, config, network_id, _ = kv
    lines: list[str] = []
    network = bench.measure_kv(client, storage, network_id, NOTES, DURATION_S,
                               Progress(write=lines.append), batch_writes=BATCH,
                               writers=2, readers=2)
    for phase, per_tx in (("batched", BATCH), ("single", 1)):
        figures = network[phase]
        assert figures["errors"] == 0, figures["error_kinds"]
        assert figures["txs"] >= 1 and figures["writes"] == figures["txs"] * per_tx
        assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"]
    assert network["reads"]["errors"] == 0 and network["reads"]["reads"] >= 1
    # What the bench wrote is on the stream, with the value of its tx.
    assert client.get_value(NOTES, bench.bench_key("batched", 0, BATCH - 1)).data == \
        bench.bench_value(0)
    anchor = bench.lmdb_anchor(tmp_path / "lmdb", NOTES, network["batched"]["txs"], BATCH,
                               network["single"]["txs"], network["reads"]["reads"], 64)
    report = bench.kv_report(network, anchor)
    assert report["errors"] == 0
    assert all(report[r] > 0 for r in ("batched_writes_ratio", "single_writes_ratio",
                                       "reads_ratio"))
    assert any(line.endswith("write(s) per flow entry, 2 txs in flight, 3 s")
               for line in lines), lines
