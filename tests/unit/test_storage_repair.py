"""The repairer's decisions (pure) and a miner keeping rebuilt shards (real LMDB): which
segments are short, which miner takes each rebuilt shard, and that a file held as k + m
shards survives losing m miners, a repair, then m more."""

from __future__ import annotations

import os

import numpy as np
import pytest

from zg_actors.erasure import encode as ec_encode
from zg_actors.errors import InvalidInput
from zg_actors.storage.constants import SEGMENT_BYTES
from zg_actors.storage.errors import DataUnavailable
from zg_actors.storage.file import file_tree, pad
from zg_actors.storage.miner import (
    EntryRef,
    MinerStore,
    Redundancy,
    collect_shards,
    rebuild_segment,
)
from zg_actors.storage.placement import miner_shard, shard_miner
from zg_actors.storage.repair import (
    Rebuild,
    ShortageClock,
    plan_repairs,
    rebuild_target,
)

K2M1 = Redundancy(miners=4, data_shards=2, parity_shards=1)
TX_SEQ = 5


def placed(tx_seq: int, segments: int, redundancy: Redundancy) -> dict[int, dict[int, int]]:
    """{miner: {segment: shard}} as an upload leaves it: every shard on its own miner."""
    holdings: dict[int, dict[int, int]] = {m: {} for m in range(redundancy.miners)}
    for segment in range(segments):
        for shard in range(redundancy.shards):
            holdings[shard_miner(tx_seq, segment, shard, redundancy.miners)][segment] = shard
    return holdings


def lose(holdings: dict[int, dict[int, int]], *miners: int) -> dict[int, dict[int, int]]:
    return {m: dict(held) for m, held in holdings.items() if m not in miners}


def apply(holdings: dict[int, dict[int, int]], rebuilds: tuple[Rebuild, ...]) -> None:
    for r in rebuilds:
        assert r.segment not in holdings[r.miner], "a miner keeps one shard per segment"
        holdings[r.miner][r.segment] = r.shard


def test_nothing_to_do_when_every_shard_is_held() -> None:
    plan = plan_repairs(TX_SEQ, 8, placed(TX_SEQ, 8, K2M1), range(4), K2M1)
    assert plan.rebuilds == () and plan.short == () and plan.lost == ()


def test_a_lost_miner_s_shards_go_to_the_one_free_live_miner() -> None:
    holdings = lose(placed(TX_SEQ, 8, K2M1), 1)
    plan = plan_repairs(TX_SEQ, 8, holdings, holdings.keys(), K2M1)
    short = [s for s in range(8) if miner_shard(TX_SEQ, s, 1, 4, 3) is not None]
    assert list(plan.short) == short and plan.lost == ()
    assert [r.segment for r in plan.rebuilds] == short
    for r in plan.rebuilds:
        assert r.shard == miner_shard(TX_SEQ, r.segment, 1, 4, 3)
        # The stand-in is the live miner that keeps no shard of the segment.
        assert miner_shard(TX_SEQ, r.segment, r.miner, 4, 3) is None and r.miner != 1
        # Sources: the k + m - 1 holders, data shards first.
        shards = [holdings[m][r.segment] for m in r.sources]
        assert shards == sorted(shards) and len(r.sources) == 2


def test_a_live_miner_on_an_empty_store_gets_its_own_shards_back() -> None:
    holdings = placed(TX_SEQ, 8, K2M1)
    holdings[2] = {}  # restarted on a fresh store: alive, holds nothing
    plan = plan_repairs(TX_SEQ, 8, holdings, range(4), K2M1)
    assert plan.rebuilds and all(r.miner == 2 for r in plan.rebuilds)
    assert all(r.shard == miner_shard(TX_SEQ, r.segment, 2, 4, 3) for r in plan.rebuilds)


def test_segments_below_k_are_lost_and_full_segments_have_no_room() -> None:
    holdings = lose(placed(TX_SEQ, 8, K2M1), 1, 2)
    plan = plan_repairs(TX_SEQ, 8, holdings, holdings.keys(), K2M1)
    both = [s for s in range(8) if miner_shard(TX_SEQ, s, 1, 4, 3) is not None
            and miner_shard(TX_SEQ, s, 2, 4, 3) is not None]
    assert list(plan.lost) == both and len(plan.short) == 8
    # The other segments have k shards on the two live miners: nowhere distinct to go.
    assert plan.rebuilds == () and len(plan.unplaced) == 8 - len(both)


def test_two_missing_shards_of_a_segment_go_to_distinct_miners() -> None:
    wide = Redundancy(miners=6, data_shards=2, parity_shards=2)
    holdings = lose(placed(TX_SEQ, 6, wide), 0, 1)
    plan = plan_repairs(TX_SEQ, 6, holdings, holdings.keys(), wide)
    by_segment: dict[int, list[Rebuild]] = {}
    for r in plan.rebuilds:
        by_segment.setdefault(r.segment, []).append(r)
    assert any(len(rs) == 2 for rs in by_segment.values())
    for segment, rs in by_segment.items():
        targets = [r.miner for r in rs]
        assert len(set(targets)) == len(targets)
        assert not set(targets) & {m for m in holdings if segment in holdings[m]}


def test_the_target_is_the_same_for_every_observer() -> None:
    # Rotation order from the shard's own miner: deterministic, no randomness.
    assert rebuild_target(TX_SEQ, 0, 1, live={0, 2, 3}, occupied={0, 3}, miners=4) == 2
    assert rebuild_target(TX_SEQ, 0, 1, live={0, 2, 3}, occupied={0, 2, 3}, miners=4) is None
    home = shard_miner(TX_SEQ, 0, 1, 4)
    assert rebuild_target(TX_SEQ, 0, 1, live=range(4), occupied=set(), miners=4) == home


# Full redundancy after m losses needs k + m live miners: miners >= k + 2m.
@pytest.mark.parametrize("redundancy", [K2M1, Redundancy(6, 2, 2), Redundancy(7, 3, 2),
                                        Redundancy(5, 1, 2, replicated=True)])
def test_a_finalized_file_survives_m_losses_a_repair_and_m_more(redundancy) -> None:
    segments = 3 * redundancy.miners
    m = redundancy.parity_shards
    holdings = placed(TX_SEQ, segments, redundancy)
    first = list(range(m))
    holdings = lose(holdings, *first)
    plan = plan_repairs(TX_SEQ, segments, holdings, holdings.keys(), redundancy)
    assert plan.lost == () and plan.unplaced == ()
    apply(holdings, plan.rebuilds)
    assert plan_repairs(TX_SEQ, segments, holdings, holdings.keys(), redundancy).short == ()
    holdings = lose(holdings, *range(m, 2 * m))
    for segment in range(segments):
        held = {h[segment] for h in holdings.values() if segment in h}
        assert len(held) >= redundancy.data_shards, (segment, held)
    # Without the repair, the same 2m losses leave some segment below k.
    unrepaired = lose(placed(TX_SEQ, segments, redundancy), *range(2 * m))
    assert plan_repairs(TX_SEQ, segments, unrepaired, unrepaired.keys(), redundancy).lost


def test_shortage_clock_waits_out_the_grace_and_forgets_what_came_back() -> None:
    clock = ShortageClock(grace_s=10.0)
    a, b = (0, TX_SEQ, 1, 2), (0, TX_SEQ, 3, 0)
    assert clock.due([a], now=100.0) == set()
    assert clock.due([a, b], now=109.0) == set()
    assert clock.due([a, b], now=110.0) == {a}
    assert clock.due([b], now=112.0) == set()  # a came back (its miner restarted)
    assert clock.due([a, b], now=119.0) == {b}  # a is new again: a fresh grace
    assert ShortageClock(grace_s=0.0).due([a], now=1.0) == {a}


def entry_with(size: int = 3 * SEGMENT_BYTES) -> tuple[EntryRef, object, bytes]:
    data = os.urandom(size)
    tree = file_tree(data)
    return EntryRef(0, TX_SEQ, tree.root, size), tree, pad(data)


def canonical(tree, padded: bytes, segment: int) -> np.ndarray:
    return ec_encode(np.frombuffer(tree.segment(padded, segment), dtype=np.uint8), 2, 1)


def test_a_stand_in_keeps_a_rebuilt_shard_across_a_reopen_and_reports_it(tmp_path) -> None:
    entry, tree, padded = entry_with()
    segment = 0
    stand_in = next(m for m in range(4) if miner_shard(TX_SEQ, segment, m, 4, 3) is None)
    lost_shard = 1
    shards = canonical(tree, padded, segment)
    peers = {j: shards[j] for j in (0, 2)}
    store = MinerStore(tmp_path / "s", stand_in, K2M1)
    assert store.keep_rebuilt(entry, [(segment, lost_shard, peers, tree.proof(segment))]) == [0]
    store.close()
    store = MinerStore(tmp_path / "s", stand_in, K2M1)
    got = store.get_shard(0, TX_SEQ, segment)
    assert got["shard"] == lost_shard and np.array_equal(got["data"], shards[lost_shard])
    assert store.holdings() == {(0, TX_SEQ): (entry.root, entry.size, {segment: lost_shard})}
    # It holds none of its own segments: it has nothing to confirm on chain.
    assert store.pending_confirmations() == []
    # A segment's shards stay on distinct miners: a second shard of it is refused.
    with pytest.raises(InvalidInput, match="keeps shard 1 of segment 0"):
        store.keep_rebuilt(entry, [(segment, 0, peers, tree.proof(segment))])


def test_an_own_shard_rebuilt_completes_the_miner_and_bad_shards_store_nothing(
        tmp_path) -> None:
    entry, tree, padded = entry_with(2 * SEGMENT_BYTES)
    miner = 1
    store = MinerStore(tmp_path / "o", miner, K2M1)
    own = store.assigned(entry)
    corrupt = {j: s.copy() for j, s in enumerate(canonical(tree, padded, own[0])) if j < 2}
    corrupt[0][9] ^= 1
    shard = miner_shard(TX_SEQ, own[0], miner, 4, 3)
    with pytest.raises(DataUnavailable):
        store.keep_rebuilt(entry, [(own[0], shard, corrupt, tree.proof(own[0]))])
    assert store.stats()["shards"] == 0
    rebuilds = []
    for segment in own:
        shards = canonical(tree, padded, segment)
        mine = miner_shard(TX_SEQ, segment, miner, 4, 3)
        others = {j: shards[j] for j in range(3) if j != mine}
        rebuilds.append((segment, mine, others, tree.proof(segment)))
    assert store.keep_rebuilt(entry, rebuilds) == own
    assert store.pending_confirmations() == [(0, TX_SEQ)]
    assert store.holdings()[(0, TX_SEQ)][2] == {s: miner_shard(TX_SEQ, s, miner, 4, 3)
                                                for s in own}


def test_collect_shards_joins_answers_per_segment() -> None:
    entry, tree, padded = entry_with()
    shards = {s: canonical(tree, padded, s) for s in range(3)}
    proof = tree.proof(1).to_list()

    def answer(segment: int, shard: int) -> dict:
        return {"shard": shard, "data": shards[segment][shard],
                "proof": tree.proof(segment).to_list()}

    fetched = collect_shards([([0, 1], [answer(0, 2), answer(1, 0)]),
                              ([1, 2], [answer(1, 1), None])])
    assert sorted(fetched) == [0, 1]  # nobody answered for segment 2
    assert sorted(fetched[1][0]) == [0, 1] and fetched[1][1].to_list() == proof
    assert rebuild_segment(entry, 1, fetched[1][0], fetched[1][1], K2M1)[0] == \
        tree.segment(padded, 1)
