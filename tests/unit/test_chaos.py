"""The chaos schedule and audit without Ray: the same seed gives the same faults, phase 1
keeps every group within its rule, phase 2 goes beyond it; the audit finds a loss, a
duplicate, a fork, a differing file, an unpaid receipt, a dead network."""

from __future__ import annotations

import pytest

from zg_actors.chaos.audit import (
    ChainCopy,
    EvmRead,
    KvRead,
    Ledger,
    Readback,
    audit,
    digest,
)
from zg_actors.chaos.schedule import (
    RESTART_S,
    Action,
    Group,
    Member,
    Rule,
    Shape,
    count_by,
    make_schedule,
)
from zg_actors.errors import InvalidInput


def devnet_shape() -> Shape:
    validators = tuple(Member(f"zg-validator-0-{i}", 100_000) for i in range(4))
    return Shape((
        Group("network-0", "validator", validators, Rule.THIRD),
        Group("storage", "miner", tuple(Member(f"miner-{i}") for i in range(4)), Rule.COUNT,
              max_down=1, recovery_s=12.0),
        Group("da", "da_node", tuple(Member(f"da-{i}", 24) for i in range(4)), Rule.THIRD),
        Group("compute", "provider", tuple(Member(f"provider-{i}") for i in range(2)),
              Rule.COUNT, max_down=1),
        Group("gateway", "gateway", (Member("gateway"),), Rule.COUNT, beyond=False),
    ))


def down_at(faults: list, group: str, t: float) -> list[str]:
    return [f.target for f in faults
            if f.group == group and f.at_s <= t < f.at_s + f.down_s]


def test_same_seed_same_schedule_another_seed_another() -> None:
    first = make_schedule(7, 120, devnet_shape())
    assert first == make_schedule(7, 120, devnet_shape())
    assert first != make_schedule(8, 120, devnet_shape())


def test_every_group_is_hit_with_both_actions() -> None:
    faults = make_schedule(1, 300, devnet_shape())
    kinds = count_by(faults, "kind")
    assert set(kinds) == {"validator", "miner", "da_node", "provider", "gateway"}
    assert {f.action for f in faults} == {Action.KILL, Action.PAUSE}
    assert all(0 <= f.at_s < 300 for f in faults)


@pytest.mark.parametrize("seed", range(20))
def test_phase1_keeps_each_group_within_its_rule(seed: int) -> None:
    shape = devnet_shape()
    faults = [f for f in make_schedule(seed, 200, shape) if f.phase == 1]
    for group in shape.groups:
        members = {m.name: m for m in group.members}
        for fault in faults:
            if fault.group == group.name:
                down = [members[n] for n in down_at(faults, group.name, fault.at_s)]
                assert group.allows(down), (seed, fault, down)


def test_storage_faults_leave_the_repair_grace_between() -> None:
    shape = devnet_shape()
    miners = [f for f in make_schedule(3, 300, shape) if f.group == "storage" and f.phase == 1]
    for before, after in zip(miners, miners[1:], strict=False):
        assert after.at_s >= before.at_s + before.down_s + 12.0


def test_phase2_goes_beyond_each_rule_and_comes_back() -> None:
    shape = devnet_shape()
    faults = make_schedule(5, 300, shape)
    beyond = [f for f in faults if f.phase == 2]
    by_group: dict[str, list] = {}
    for fault in beyond:
        by_group.setdefault(fault.group, []).append(fault)
    assert set(by_group) == {"network-0", "storage", "da", "compute"}  # not the singleton
    for group in shape.groups:
        if group.name in by_group:
            members = {m.name: m for m in group.members}
            at = by_group[group.name][0].at_s
            down = [members[n] for n in down_at(faults, group.name, at)]
            assert not group.allows(down)
            assert all(f.action is Action.PAUSE for f in by_group[group.name])
    last = max(f.at_s + f.down_s for f in faults)
    assert last < 300 * 0.9  # the end is quiet: the audit sees the recovery


def test_a_validator_rule_is_about_power_not_count() -> None:
    group = Group("n", "validator", (Member("big", 40), Member("a", 20), Member("b", 20),
                                     Member("c", 20)), Rule.THIRD)
    assert not group.allows([Member("big", 40)])
    assert group.allows([Member("a", 20)])
    assert not group.allows([Member("a", 20), Member("b", 20)])


def test_kill_counts_as_down_for_the_restart() -> None:
    faults = make_schedule(2, 100, devnet_shape())
    kill = next(f for f in faults if f.action is Action.KILL)
    assert kill.down_s == RESTART_S and kill.duration_s == 0


def test_churn_launches_then_retires_a_network_in_phase_1() -> None:
    shape = devnet_shape()
    plain = make_schedule(4, 100, shape)
    churned = make_schedule(4, 100, Shape(shape.groups, churn=True))
    network = [f for f in churned if f.kind == "network"]
    assert [f.action for f in network] == [Action.LAUNCH, Action.RETIRE]
    assert network[0].at_s < network[1].at_s < 100 * 0.55
    assert [f for f in churned if f.kind != "network"] == plain  # the rest is the same


def test_a_schedule_needs_a_positive_duration() -> None:
    for duration in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="--duration"):
            make_schedule(1, duration, devnet_shape())


# ---- the audit ---------------------------------------------------------------------
H = [bytes([i]) * 32 for i in range(10)]
STREAM = b"s" * 32


def healthy() -> tuple[Ledger, Readback]:
    ledger = Ledger()
    ledger.tx(0, H[1])
    ledger.tx(0, H[2])
    ledger.file(b"file-a", b"alpha")
    ledger.blob(b"blob-a", b"beta")
    ledger.receipt(b"p" * 20, b"u" * 20, 11)
    chain = {1: H[7], 2: H[8]}
    txs = {1: (H[1],), 2: (H[2], H[3])}
    copies = [ChainCopy(f"v{i}", dict(chain), dict(txs)) for i in range(4)]
    readback = Readback(chains={0: copies}, files={b"file-a": digest(b"alpha")},
                        blobs={b"blob-a": digest(b"beta")}, paid=[(b"p" * 20, b"u" * 20, 11)],
                        live={0: True})
    ledger.kv_tx(5, STREAM, b"k5", b"v5")  # flow entry 5 FINALIZED: a KV tx writing k5
    readback.kv[5] = KvRead(("Commit", "Commit"), 5, digest(b"v5"))
    ledger.evm_tx(0, H[3])  # an EVM tx, committed at height 2
    readback.evm[H[3]] = EvmRead((H[8], 2), "already known: tx 0x03.. is in the txpool")
    return ledger, readback


def test_a_clean_history_passes() -> None:
    result = audit(*healthy())
    assert result.ok, result.to_dict()
    assert result.acknowledged == {"tx": 2, "file": 1, "blob": 1, "receipt": 1, "kv": 1,
                                   "evm": 1}
    assert result.invariants["no_fork"].detail == "4 validator stores compared"


def test_a_lost_tx_is_found() -> None:
    ledger, readback = healthy()
    ledger.tx(0, H[4])  # acknowledged, never committed
    result = audit(ledger, readback)
    assert not result.ok
    assert result.lost["tx"] == 1 and result.duplicated["tx"] == 0
    assert result.examples["lost_tx"] == ["0/0x" + H[4].hex()]


def test_a_duplicated_tx_is_found() -> None:
    ledger, readback = healthy()
    for copy in readback.chains[0]:
        copy.block_hashes[3] = H[9]
        copy.tx_hashes[3] = (H[1],)  # committed again at height 3
    result = audit(ledger, readback)
    assert result.duplicated["tx"] == 1 and not result.ok


def test_a_fork_is_found_even_on_one_validator_of_four() -> None:
    ledger, readback = healthy()
    readback.chains[0][3].block_hashes[2] = H[9]
    result = audit(ledger, readback)
    assert not result.invariants["no_fork"].ok
    assert "network 0 height 2: 2 blocks" in result.invariants["no_fork"].detail
    assert not any(result.lost.values())
    assert not result.ok


def test_a_fork_on_a_network_without_acknowledged_txs_is_found() -> None:
    ledger, readback = healthy()
    readback.chains[1] = [ChainCopy("a", {1: H[1]}, {}), ChainCopy("b", {1: H[2]}, {})]
    assert not audit(ledger, readback).invariants["no_fork"].ok


def test_differing_and_missing_bytes_are_found() -> None:
    ledger, readback = healthy()
    ledger.file(b"file-b", b"gamma")  # acknowledged, gone
    readback.blobs[b"blob-a"] = digest(b"not beta")
    result = audit(ledger, readback)
    assert result.lost["file"] == 1 and result.unreadable["blob"] == 1
    assert result.invariants["blobs_byte_identical"].detail == (
        "0 lost, 1 unreadable (1 other bytes)")
    assert not result.invariants["files_byte_identical"].ok
    assert not result.invariants["blobs_byte_identical"].ok


def test_a_download_that_failed_counts_unreadable() -> None:
    ledger, readback = healthy()
    readback.files[b"file-a"] = None
    result = audit(ledger, readback)
    assert result.unreadable["file"] == 1
    assert result.invariants["files_byte_identical"].detail == (
        "0 lost, 1 unreadable (0 other bytes)")


def test_receipts_unpaid_and_paid_twice_are_found() -> None:
    ledger, readback = healthy()
    ledger.receipt(b"p" * 20, b"u" * 20, 12)  # never settled
    readback.paid.append((b"p" * 20, b"u" * 20, 11))  # settled twice
    result = audit(ledger, readback)
    assert result.lost["receipt"] == 1 and result.duplicated["receipt"] == 1


def test_supply_and_liveness_are_invariants() -> None:
    ledger, readback = healthy()
    readback.supply_ok, readback.supply_problems = False, ["supply 10 != 11"]
    readback.live[1] = False
    result = audit(ledger, readback)
    assert result.invariants["c0_supply"].detail == "supply 10 != 11"
    assert "[1]" in result.invariants["networks_live"].detail
    readback.retired.add(1)  # a network retired on purpose need not commit
    readback.supply_ok = True
    assert audit(ledger, readback).ok


def test_a_lost_kv_tx_is_found() -> None:
    ledger, readback = healthy()
    ledger.kv_tx(6, STREAM, b"k6", b"v6")  # FINALIZED, never replayed
    readback.kv[5] = KvRead(("Commit", None), 5, digest(b"v5"))  # one node has no result
    result = audit(ledger, readback)
    assert result.lost["kv"] == 2 and not result.ok
    assert result.examples["lost_kv"] == ["5", "6"]
    assert not result.invariants["kv_replayed_once"].ok


def test_a_kv_tx_replayed_twice_is_found() -> None:
    ledger, readback = healthy()
    readback.kv[5] = KvRead(("Commit", "Commit"), 9, digest(b"v5"))  # k5 written again at 9
    result = audit(ledger, readback)
    assert result.duplicated["kv"] == 1 and result.lost["kv"] == 0 and not result.ok


def test_a_kv_value_unreadable_at_its_version_or_results_differing_are_found() -> None:
    ledger, readback = healthy()
    readback.kv[5] = KvRead(("Commit", "Commit"), 5, None)
    assert audit(ledger, readback).unreadable["kv"] == 1
    readback.kv[5] = KvRead(("Commit", "VersionConfliction"), 5, digest(b"v5"))
    assert audit(ledger, readback).unreadable["kv"] == 1
    # A tx that did not commit writes nothing: no value to read, nothing wrong.
    readback.kv[5] = KvRead(("VersionConfliction",) * 2, 0, None)
    assert audit(ledger, readback).ok


def test_an_evm_hash_without_a_receipt_is_found() -> None:
    ledger, readback = healthy()
    ledger.evm_tx(0, H[5])  # answered, never committed
    readback.evm[H[3]] = EvmRead(None, "already known")  # committed, but no receipt
    result = audit(ledger, readback)
    assert result.lost["evm"] == 2 and not result.ok
    assert not result.invariants["evm_committed_once"].ok


def test_an_evm_tx_committed_twice_or_taken_again_is_found() -> None:
    ledger, readback = healthy()
    readback.evm[H[3]] = EvmRead((H[8], 2), "0x" + H[3].hex())  # the re-send was taken
    assert audit(ledger, readback).duplicated["evm"] == 1
    readback.evm[H[3]] = EvmRead((H[8], 2), "nonce too low: nonce 0 already used")
    assert audit(ledger, readback).ok
    for copy in readback.chains[0]:
        copy.tx_hashes[1] = (H[1], H[3])  # committed at heights 1 and 2
    assert audit(ledger, readback).duplicated["evm"] == 1


def test_an_evm_receipt_outside_the_committed_chain_is_found() -> None:
    ledger, readback = healthy()
    readback.evm[H[3]] = EvmRead((H[9], 2), "already known")  # not the block at height 2
    assert audit(ledger, readback).unreadable["evm"] == 1
