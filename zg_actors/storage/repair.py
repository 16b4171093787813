"""Which shards to rebuild, and onto which miner (pure): the decisions of the repairer.

Every segment should be held as k + m shards on k + m distinct live miners
(docs/spec/storage.md "Redundancy"). A shard is missing when no live miner holds it:
its miner crashed, was lost, or restarted on an empty store. A segment that still
has k shards can be decoded, so each missing shard is rebuilt from them onto one
live miner that holds no shard of that segment: the shard's own miner when it is
alive (a restarted miner on a fresh store), otherwise a stand-in, in the segment's
rotation order so that every observer picks the same one. A segment with fewer than
k shards is lost: nothing can rebuild it.

    plan = plan_repairs(tx_seq, segments, holdings, live, redundancy)
    plan.rebuilds   # Rebuild(segment, shard, miner, sources) for each missing shard
    plan.lost       # segments below k
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from zg_actors.storage.miner import Redundancy
from zg_actors.storage.placement import shard_miner

Holdings = Mapping[int, Mapping[int, int]]  # {live miner: {segment: shard index it keeps}}
ShardKey = tuple[int, int, int, int]  # (network, tx_seq, segment, shard)


@dataclass(frozen=True)
class Rebuild:
    """Shard `shard` of `segment` is missing: `miner` rebuilds it from `sources`."""

    segment: int
    shard: int
    miner: int
    sources: tuple[int, ...]  # live miners holding other shards of the segment, data first


@dataclass(frozen=True)
class RepairPlan:
    rebuilds: tuple[Rebuild, ...] = ()
    lost: tuple[int, ...] = ()  # segments held as fewer than k shards
    short: tuple[int, ...] = ()  # segments held as fewer than k + m shards (lost included)
    # Missing shards no live miner can take (every live miner holds one of that segment).
    unplaced: tuple[tuple[int, int], ...] = ()  # (segment, shard)


def held_shards(holdings: Holdings, segment: int) -> dict[int, list[int]]:
    """{shard index: live miners holding it} for one segment."""
    held: dict[int, list[int]] = {}
    for miner in sorted(holdings):
        shard = holdings[miner].get(segment)
        if shard is not None:
            held.setdefault(shard, []).append(miner)
    return held


def rebuild_target(tx_seq: int, segment: int, shard: int, live: Collection[int],
                   occupied: Collection[int], miners: int) -> int | None:
    """The live miner that takes a rebuilt shard: its own miner if alive and free, else
    the first free live miner in the segment's rotation order; None if all are taken."""
    home = shard_miner(tx_seq, segment, shard, miners)
    order = [home] + [shard_miner(tx_seq, segment, position, miners)
                      for position in range(miners)]
    return next((m for m in order if m in live and m not in occupied), None)


def plan_repairs(tx_seq: int, segments: int, holdings: Holdings, live: Collection[int],
                 redundancy: Redundancy) -> RepairPlan:
    """The rebuilds that bring every segment of entry `tx_seq` back to k + m shards.

    `holdings` lists what each live miner answered it keeps of this entry; `live` is
    every miner that answered (some may hold nothing of it).
    """
    k = redundancy.data_shards
    rebuilds: list[Rebuild] = []
    lost: list[int] = []
    short: list[int] = []
    unplaced: list[tuple[int, int]] = []
    for segment in range(segments):
        held = held_shards(holdings, segment)
        missing = [j for j in range(redundancy.shards) if j not in held]
        if not missing:
            continue
        short.append(segment)
        if len(held) < k:
            lost.append(segment)
            continue
        occupied = {m for holders in held.values() for m in holders}
        sources = tuple(holders[0] for _, holders in sorted(held.items()))
        for shard in missing:
            target = rebuild_target(tx_seq, segment, shard, live, occupied, redundancy.miners)
            if target is None:
                unplaced.append((segment, shard))
                continue
            occupied.add(target)
            rebuilds.append(Rebuild(segment, shard, target, sources))
    return RepairPlan(tuple(rebuilds), tuple(lost), tuple(short), tuple(unplaced))


@dataclass
class ShortageClock:
    """When each missing shard was first seen missing. A shard is rebuilt only after it has
    been missing for `grace_s`: a miner that Ray restarts, or an upload still sending its
    shards, fills the gap sooner, and a rebuild then would be a wasted copy."""

    grace_s: float
    since: dict[ShardKey, float] = field(default_factory=dict)

    def due(self, missing: Iterable[ShardKey], now: float) -> set[ShardKey]:
        """The missing shards that have been missing for grace_s; forgets the others."""
        self.since = {key: self.since.get(key, now) for key in missing}
        return {key for key, first in self.since.items() if now - first >= self.grace_s}
