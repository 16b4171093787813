"""`zg chaos`'s core for a short run with a fixed seed on the shared local Ray cluster:
validators, storage miners, DA nodes and compute providers killed and paused (within
their rules, then beyond them and back), and C0, the relayer, the gRPC gateway and the
disperser too, under transfers, uploads, blobs and inference; the audit finds nothing
lost, duplicated or unreadable."""

from __future__ import annotations

import pytest

from zg_actors.chaos.run import ChaosOptions, run_chaos
from zg_actors.compute.actors import launch_providers

from .test_jobs import QUIET, disperser, network0, storage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

SEED = 3
DURATION_S = 90.0  # the CI share: under 150 s with the pillars' start and the audit


def test_chaos_loses_nothing_acknowledged_under_kills_and_pauses(
        network0, storage, disperser) -> None:  # noqa: F811
    _, config = network0
    providers = launch_providers(config.to_dict(), config.data_dir, 2,
                                 config.compute.provider_num_cpus, detached=False)
    # No network churn here: 4 more validators would not fit the CI's 2 CPUs and share.
    report = run_chaos(config, ChaosOptions(seed=SEED, duration_s=DURATION_S, rate_tps=10.0,
                                            settle_s=60.0, churn=False), QUIET)
    del providers
    print({k: report[k] for k in ("faults_injected", "faults_beyond_rule", "faults_failed",
                                  "acknowledged", "lost", "duplicated", "unreadable")})
    assert not any(report["lost"].values()), report["examples"]
    assert not any(report["duplicated"].values()), report["examples"]
    assert not any(report["unreadable"].values()), report["examples"]
    assert all(f["ok"] for f in report["invariants"].values()), report["invariants"]
    assert report["ok"]
    assert report["kinds_hit"] == report["kinds_scheduled"] == [
        "da_node", "disperser", "gateway", "miner", "provider", "relayer", "staking",
        "validator"]  # the manager is not detached here: it owns the validators
    assert {key.split("/")[1] for key in report["faults_injected"]} == {"kill", "pause"}
    assert report["faults_beyond_rule"] >= 2  # a whole group beyond its rule, and back
    # No KV nodes nor EVM JSON-RPC in this stack (their loads run where `zg up` starts them).
    assert report["acknowledged"]["kv"] == report["acknowledged"]["evm"] == 0
    assert all(report["acknowledged"][kind] > 0 for kind in ("tx", "file", "blob", "receipt")
               ), report["acknowledged"]
