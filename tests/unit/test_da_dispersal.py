"""Dispersal logic without Ray: batching, routing, slices per signer, retrieval checks;
and the gRPC error mapping."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from zg_actors.da.blob import BlobHeader, encode_blob
from zg_actors.da.dispersal import (
    GROUP_ENCODE_MAX_BYTES,
    BatchQueue,
    Collected,
    NodeLiveness,
    PendingBlob,
    Resume,
    Routes,
    SignatureTally,
    check_quorum_live,
    choose_network,
    collect_signatures,
    encode_blobs,
    format_slots,
    resume_action,
    slices_for,
    slots_by_signer,
    verified_slices,
)
from zg_actors.da.errors import (
    BlobTooLarge,
    InvalidBlob,
    Overloaded,
    QuorumUnavailable,
    UnknownBlob,
)
from zg_actors.da.params import BlobStatus
from zg_actors.da.quorum import EpochRegistry, EpochSigner, Quorum
from zg_actors.errors import InvalidInput, Unavailable
from zg_actors.rpc.errors import (
    RpcInvalidArgument,
    RpcNotFound,
    RpcResourceExhausted,
    RpcUnavailable,
    error_details,
    from_status,
    status_code,
)


def pending(size: int) -> PendingBlob:
    blob = encode_blob(b"x" * size, 2, 6)
    return PendingBlob(BlobHeader(blob.data_root, size, 0, 0, 0), blob, 0.0)


def test_batches_close_by_count_bytes_or_interval() -> None:
    queue = BatchQueue(interval_s=1.0, max_blobs=3, max_bytes=10_000)
    queue.add((0, 0, 0), pending(10), now=100.0)
    queue.add((1, 0, 0), pending(10), now=100.5)
    assert queue.due(100.9) == [] and len(queue) == 2
    assert queue.due(101.0) == [(0, 0, 0)]
    queue.add((1, 0, 0), pending(10), now=100.6)
    queue.add((1, 0, 0), pending(10), now=100.7)
    assert (1, 0, 0) in queue.due(100.7)  # three blobs
    assert len(queue.pop((1, 0, 0))) == 3
    queue.add((2, 0, 0), pending(10_000), now=100.0)
    assert (2, 0, 0) in queue.due(100.0)  # byte limit


def test_a_batch_out_for_signatures_holds_the_next_one_open_until_full() -> None:
    queue = BatchQueue(interval_s=1.0, max_blobs=3, max_bytes=10_000, max_signing=1)
    key = (0, 0, 0)
    queue.add(key, pending(10), now=100.0)
    assert queue.due(101.0) == [key]
    assert len(queue.pop(key)) == 1  # out for signatures
    queue.add(key, pending(10), now=101.0)
    assert queue.due(105.0) == []  # past its interval, but the first is still signing
    queue.add((1, 0, 0), pending(10), now=101.0)
    assert queue.due(105.0) == [(1, 0, 0)]  # other quorums are not held
    queue.pop((1, 0, 0))
    queue.add(key, pending(10), now=101.5)
    queue.add(key, pending(10), now=101.6)
    assert key in queue.due(101.6)  # full: sealed even while the first is signing
    assert len(queue.pop(key)) == 3
    queue.signed(key)
    queue.signed(key)
    assert key not in queue.signing
    queue.add(key, pending(10), now=106.0)
    assert queue.due(107.0) == [key]  # nothing signing: the interval seals it again


def test_routing_prefers_the_least_loaded_then_the_newest_network() -> None:
    assert choose_network({0: 5, 1: 2}, {0: 10, 1: 10}) == 1
    assert choose_network({0: 0, 1: 0}, {0: 10}) == 1  # a just-launched network gets work
    assert choose_network({0: 0, 1: 0}, {0: 3, 1: 3}) == 0


def test_each_signer_gets_exactly_its_slots_and_bad_slices_are_dropped() -> None:
    quorum = Quorum(0, (2, 0, 2, 1, 0, 2))
    assert slots_by_signer(quorum) == {2: [0, 2, 5], 0: [1, 4], 1: [3]}
    p = pending(3_000)
    rows = slices_for(p.blob, [0, 2, 5])
    assert rows.shape == (3, p.blob.slices.shape[1])
    assert (rows[1] == p.blob.slices[2]).all()
    proofs = [p.blob.slice_proof(s).to_list() for s in (0, 2, 5)]
    served = {slot: (row.copy(), proof) for slot, row, proof in zip([0, 2, 5], rows, proofs,
                                                                      strict=True)}
    served[2][0][0] ^= 1
    served[4] = (rows[1], proofs[1])  # the right bytes claimed for another slot
    assert sorted(verified_slices(p.header, 6, served)) == [0, 5]


@pytest.mark.parametrize(("error", "code", "client_type"), [
    (BlobTooLarge("too big", size=9), grpc.StatusCode.INVALID_ARGUMENT, RpcInvalidArgument),
    (UnknownBlob("no such blob"), grpc.StatusCode.NOT_FOUND, RpcNotFound),
    (Unavailable("no network"), grpc.StatusCode.UNAVAILABLE, RpcUnavailable),
    (Overloaded("busy"), grpc.StatusCode.RESOURCE_EXHAUSTED, RpcResourceExhausted),
])
def test_errors_map_to_grpc_codes_and_back(error, code, client_type) -> None:
    assert status_code(error) == code
    back = from_status(code, error_details(error))
    assert isinstance(back, client_type) and str(back) == str(error)
    assert back.details["error"] == type(error).__name__
    assert status_code(RuntimeError("bug")) == grpc.StatusCode.INTERNAL


def test_cli_da_commands_name_a_bad_request_id(capsys: pytest.CaptureFixture) -> None:
    from zg_actors.cli import main

    assert main(["da", "status", "not-hex", "--json", "--gateway", "127.0.0.1:1"]) == 2
    out = capsys.readouterr().out
    assert '"code": "INVALID_INPUT"' in out and "not-hex" in out


# A quorum of 12 slots (threshold 8) held by signers 0..3 with 4, 4, 3, 1 slots.
FOUR_SIGNERS = Quorum(0, (0, 1, 0, 2, 1, 0, 2, 3, 1, 0, 2, 1))


def test_blobs_are_refused_when_live_nodes_hold_fewer_slots_than_a_certificate_needs() -> None:
    check_quorum_live(FOUR_SIGNERS, {0, 1}, {}, "quorum 0")  # 8 of 12: enough
    with pytest.raises(QuorumUnavailable) as refused:
        check_quorum_live(FOUR_SIGNERS, {0, 2}, {1: "DA node 1 not running"}, "quorum 0")
    error = refused.value
    assert isinstance(error, Unavailable)
    assert status_code(error) == grpc.StatusCode.UNAVAILABLE
    assert error.details == {"live_slots": 7, "slots": 12, "needed": 8,
                             "missing_slots": "1, 4, 7-8, 11"}
    assert "signer 1: DA node 1 not running; signer 3: down" in str(error)


def test_node_liveness_follows_the_last_call() -> None:
    liveness = NodeLiveness()
    assert liveness.is_live(2) and not liveness.is_live(None)
    liveness.failed(2, "not running")
    assert not liveness.is_live(2) and liveness.down == {2: "not running"}
    liveness.answered(2)
    assert liveness.is_live(2)


def test_a_batch_certifies_with_the_signers_that_answered_once_they_reach_the_threshold() -> None:
    """With one node down, the other three hold 11 of 12 slots: the batch certifies."""
    tally = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2}, missed={3: "DA node 3 down"})
    tally.answered(0, b"s0")
    assert tally.outcome() == Collected.WAIT
    tally.answered(1, b"s1")
    assert tally.outcome() == Collected.WAIT  # 8 of 12 signed: waits for the last one
    tally.answered(2, b"s2")
    assert tally.outcome() == Collected.CERTIFY and tally.signed_slots == 11
    # A slow node at the deadline is left out when the rest reach the threshold.
    late = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2})
    late.answered(0, b"s0")
    late.answered(1, b"s1")
    assert late.outcome(past_deadline=True) == Collected.CERTIFY
    late.leave_out_waiting("no signature within 10 s")
    assert late.outcome() == Collected.CERTIFY and late.missed == {
        2: "no signature within 10 s", 3: "not asked"}


def test_past_the_deadline_a_batch_short_of_the_threshold_waits_for_late_signers() -> None:
    """One node down leaves no slack: a live node that is merely slow must not fail the
    batch at the deadline (the batch certifies when it answers)."""
    tally = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2}, missed={3: "DA node 3 down"})
    tally.answered(0, b"s0")
    tally.answered(2, b"s2")  # 7 of 12 slots: short of 8
    assert tally.outcome(past_deadline=True) == Collected.WAIT
    tally.answered(1, b"s1")
    assert tally.outcome(past_deadline=True) == Collected.CERTIFY
    # The same late signer found down: out of reach at once.
    gone = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2}, missed={3: "DA node 3 down"})
    gone.answered(0, b"s0")
    gone.answered(2, b"s2")
    gone.failed(1, "DA node 1 not running")
    assert gone.outcome(past_deadline=True) == Collected.INSUFFICIENT


def test_insufficient_signatures_says_which_slots_are_missing_and_why() -> None:
    tally = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2}, missed={3: "DA node 3 down"})
    tally.answered(0, b"s0")
    tally.failed(1, "DA node 1 failed (RayActorError)")
    # 4 signed + 3 waiting < 8: out of reach at once, no wait for node 2.
    assert tally.outcome() == Collected.INSUFFICIENT
    assert tally.missing_reason() == (
        "4 of 12 slots signed, need 8; missing slots 1, 3-4, 6-8, 10-11 (signer 1: DA node 1 "
        "failed (RayActorError); signer 2: no answer yet; signer 3: DA node 3 down)")
    assert format_slots([5, 0, 1, 2, 9, 10]) == "0-2, 5, 9-10"


def test_a_restarted_disperser_resumes_what_it_acknowledged() -> None:
    assert resume_action(BlobStatus.UNKNOWN, has_payload=True) == (Resume.REDISPERSE, "")
    for on_chain in (BlobStatus.CONFIRMED, BlobStatus.FINALIZED, BlobStatus.FAILED):
        assert resume_action(on_chain, has_payload=False) == (Resume.TRACK, "")
    action, why = resume_action(BlobStatus.UNKNOWN, has_payload=False)
    assert action == Resume.FAIL and "no payload" in why


def test_routes_spread_blobs_count_their_load_and_keep_the_nonce_sequence() -> None:
    routes = Routes()
    with pytest.raises(Unavailable, match="no consensus network"):
        routes.route()
    routes.open(0, nonce=7)
    routes.open(1, nonce=3)
    assert [routes.route() for _ in range(4)] == [0, 1, 0, 1]
    assert routes.load == {0: 2, 1: 2} and routes.in_flight() == 4
    routes.release(0, 2)
    routes.release(0)  # never below zero
    assert routes.load[0] == 0 and routes.route() == 0
    assert [routes.next_quorum(3) for _ in range(4)] == [0, 1, 2, 0]
    with pytest.raises(Unavailable, match="no quorums yet") as rotating:
        routes.next_quorum(0)  # an epoch rotation whose quorums are not posted yet
    assert rotating.value.details == {"quorums": 0}
    assert routes.next_quorum(3) == 1  # the turn did not move
    assert routes.nonce(0) == 7
    routes.sent(0, 7)
    assert routes.nonce(0) == 8 and routes.networks == [0, 1]
    routes.close(1)
    assert 1 not in routes and routes.networks == [0]
    with pytest.raises(Unavailable, match="network 1 was retired") as retired:
        routes.nonce(1)
    assert retired.value.details == {"network_id": 1}
    assert all(routes.route() == 0 for _ in range(3))


def test_batch_limits_change_only_when_every_limit_is_positive() -> None:
    queue = BatchQueue(0.5, 10, 1 << 20)
    assert queue.set_limits(max_blobs=20) == {"interval_s": 0.5, "max_blobs": 20,
                                              "max_bytes": 1 << 20}
    with pytest.raises(InvalidInput, match="batch max_bytes must be > 0, got 0") as bad:
        queue.set_limits(interval_s=2.0, max_bytes=0)
    assert bad.value.details == {"max_bytes": 0}
    assert (queue.interval_s, queue.max_blobs, queue.max_bytes) == (0.5, 20, 1 << 20)


class LocalEncoder:
    """The encoder pool's encode_many_with_roots_async, in this process: each call is
    recorded, so a test sees how blobs were grouped."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def encode_many_with_roots_async(self, payloads, k, m, unit):
        self.calls.append(len(payloads))
        out = []
        for payload in payloads:
            blob = encode_blob(np.asarray(payload).tobytes(), k, k + m)
            out.append((blob.slices, list(blob.slice_roots), blob.data_root))
        return out


def test_blobs_that_arrive_together_are_encoded_small_ones_in_one_call() -> None:
    rng = np.random.default_rng(5)
    sizes = [1_000, GROUP_ENCODE_MAX_BYTES + 1, 3_000]
    blobs = [rng.integers(0, 256, size, dtype=np.uint8) for size in sizes]
    pool = LocalEncoder()
    encoded = asyncio.run(encode_blobs(pool, blobs, 4, 12))
    assert sorted(pool.calls) == [1, 2]  # the two small blobs together, the big one alone
    for blob, got in zip(blobs, encoded, strict=True):  # in the order given
        assert got.data_root == encode_blob(blob.tobytes(), 4, 12).data_root
        assert got.size == len(blob)


REGISTRY = EpochRegistry(0, b"seed", tuple(
    EpochSigner(bytes([i]) * 20, b"", 1, b"") for i in range(5)))
NODE_OF = {bytes([i]) * 20: i for i in range(4)}  # signer 4 is no DA node of ours


def test_liveness_names_why_each_signer_is_down() -> None:
    liveness = NodeLiveness()
    liveness.failed(3, "not running")
    assert liveness.live_signers(FOUR_SIGNERS, REGISTRY, NODE_OF) == {0, 1, 2}
    assert liveness.why_down(REGISTRY, NODE_OF) == {
        3: "DA node 3 not running", 4: "not a DA node of this deployment"}


def test_signatures_are_tallied_as_they_arrive_and_a_failed_node_is_down() -> None:
    """Signer 0 signs, signer 1 refuses (a typed error: it is up), signer 2's node fails
    (it is down from now on and the caller is told): 4 of 12 slots, INSUFFICIENT."""

    async def collect() -> tuple[SignatureTally, NodeLiveness, list]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(3)]
        futures[0].set_result(b"s0")
        futures[1].set_exception(InvalidBlob("wrong slots"))
        futures[2].set_exception(ConnectionError("node 12 died"))
        liveness, told = NodeLiveness(), []
        tally = SignatureTally(FOUR_SIGNERS, waiting={0, 1, 2}, missed={3: "DA node 13 down"})
        waiting = {f: (signer, 10 + signer) for signer, f in enumerate(futures)}
        await collect_signatures(waiting, tally, liveness, 5.0, 10.0, 0.1,
                                 lambda node, exc: told.append((node, type(exc).__name__)))
        return tally, liveness, told

    tally, liveness, told = asyncio.run(collect())
    assert tally.signed == {0: b"s0"} and tally.outcome() == Collected.INSUFFICIENT
    assert tally.missed[1] == "refused: wrong slots" and liveness.is_live(11)
    assert tally.missed[2] == "DA node 12 failed (ConnectionError)"
    assert not liveness.is_live(12) and told == [(12, "ConnectionError")]
