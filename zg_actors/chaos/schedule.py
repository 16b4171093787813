"""The chaos fault schedule (pure): from a seed, a duration and the deployment's shape, the
timed faults `zg chaos` injects.

A deployment is a set of fault groups, each a set of actors that fail together against one
fault-tolerance rule:

- a consensus network's validators: those down must hold less than 1/3 of its power
  (Tendermint stays safe and live with more than 2/3 up);
- the storage miners: at most m (the erasure code's parity shards) down at a time, and a
  miner's fault is followed by the repair grace before the next one starts (repair between);
- the DA nodes: those down must hold less than 1/3 of the quorum's slots (a certificate
  needs 2/3 of them signed);
- the compute providers: at least one serving;
- singletons (the gRPC gateway, a disperser, C0, the network manager, the relayer): one
  down at a time; their clients ride it out by retrying.

With churn, a network is launched at LAUNCH_AT of the run and retired at RETIRE_AT.

Phase 1 keeps every group within its rule. Phase 2 pauses more members of one group than
its rule allows at once (the network halts, uploads stall) and then lets them all come
back; the end of the run is quiet so that the audit sees the cluster recover. The same
seed and shape give the same schedule.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum

from zg_actors.errors import InvalidInput

# Fractions of --duration: phase 1 runs first, phase 2 after it, the rest is quiet.
PHASE1_END = 0.55
PHASE2_END = 0.8
FAULT_GAP_S = (1.5, 4.5)  # seconds between two faults (uniform)
PAUSE_S = (2.0, 6.0)  # how long a paused actor stays stopped (uniform)
BEYOND_PAUSE_S = (4.0, 8.0)  # phase 2: how long a group stays beyond its rule
RESTART_S = 5.0  # a killed actor counts as down this long: Ray restarts it, it resumes
SETTLE_AFTER_S = 3.0  # after a fault ends, its members count as busy a little longer
# Fractions of --duration: a network is launched, and retired, mid-run (phase 1).
LAUNCH_AT = 0.1
RETIRE_AT = 0.45
CHURN_GROUP = "network"  # the launch and retire faults' group and kind
CHURN_TARGET = "launched"  # the network this run launches


class Rule(StrEnum):
    """How much of a group may be down at once."""

    THIRD = "under 1/3 of the weight"  # validators' power, DA nodes' slots
    COUNT = "at most max_down members"  # storage miners (m), providers, singletons (1 of 1)


class Action(StrEnum):
    KILL = "kill"  # the actor's process dies; Ray restarts it and it resumes from its store
    PAUSE = "pause"  # SIGSTOP for duration_s, then SIGCONT
    LAUNCH = "launch"  # a new consensus network, which the load follows
    RETIRE = "retire"  # the network this run launched: drained, read back, retired


@dataclass(frozen=True)
class Member:
    name: str  # the Ray actor's name
    weight: int = 1  # voting power, DA slots, or 1


@dataclass(frozen=True)
class Group:
    """Actors that fail against one rule. recovery_s: after a member comes back, the group
    needs this long before it counts as whole again (the storage repair grace)."""

    name: str  # e.g. "network-0", "storage", "da", "compute", "gateway"
    kind: str  # what its members are: validator, miner, da_node, provider, gateway, ...
    members: tuple[Member, ...]
    rule: Rule
    max_down: int = 1  # for Rule.COUNT
    recovery_s: float = 0.0
    beyond: bool = True  # whether phase 2 takes this group beyond its rule

    @property
    def total_weight(self) -> int:
        return sum(m.weight for m in self.members)

    def allows(self, down: list[Member]) -> bool:
        """Whether the group keeps its promise with `down` down at once."""
        if self.rule is Rule.THIRD:
            return 3 * sum(m.weight for m in down) < self.total_weight
        return len(down) <= self.max_down


@dataclass(frozen=True)
class Shape:
    """What the schedule is drawn for: the deployment's fault groups."""

    groups: tuple[Group, ...]
    churn: bool = False  # launch a network mid-run and retire it later


@dataclass(frozen=True)
class Fault:
    """One fault: at `at_s` seconds into the run, `action` on actor `target` of `group`;
    a pause lasts duration_s. phase: 1 within the group's rule, 2 beyond it."""

    at_s: float
    action: Action
    target: str
    group: str
    kind: str
    duration_s: float
    phase: int

    @property
    def down_s(self) -> float:
        if self.action is Action.PAUSE:
            return self.duration_s
        return RESTART_S if self.action is Action.KILL else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "action": self.action.value}


@dataclass
class _Busy:
    member: Member
    until_s: float


def check_duration(duration_s: float) -> None:
    """A run needs time for its faults; NaN and infinity are no duration."""
    if not 0 < duration_s < float("inf"):
        raise InvalidInput(f"--duration {duration_s}: seconds must be positive and finite",
                           duration=duration_s)


def make_schedule(seed: int, duration_s: float, shape: Shape) -> list[Fault]:
    """The faults of a run of `duration_s` seconds, in time order."""
    check_duration(duration_s)
    rng = random.Random(seed)
    groups = [g for g in shape.groups if g.members]
    busy: dict[str, list[_Busy]] = {g.name: [] for g in groups}
    faults: list[Fault] = []
    order: list[Group] = []
    at = rng.uniform(*FAULT_GAP_S) / 2
    while at < duration_s * PHASE1_END and groups:
        if not order:  # every group once per round, in a seeded order: each kind is hit
            order = rng.sample(groups, len(groups))
        group = order.pop()
        fault = _within_rule(rng, group, busy[group.name], at)
        if fault is not None:
            faults.append(fault)
        at += rng.uniform(*FAULT_GAP_S)
    beyond = [g for g in groups if g.beyond and len(g.members) > 1]
    at = max(at, duration_s * PHASE1_END)
    for group in rng.sample(beyond, len(beyond)):
        if at >= duration_s * PHASE2_END:
            break
        start = max([at] + [b.until_s for b in busy[group.name]])
        chosen = _beyond_rule(rng, group)
        pause_s = round(rng.uniform(*BEYOND_PAUSE_S), 2)
        for member in chosen:
            faults.append(Fault(round(start, 2), Action.PAUSE, member.name, group.name,
                                group.kind, pause_s, 2))
        busy[group.name] = [_Busy(m, start + pause_s + group.recovery_s + SETTLE_AFTER_S)
                            for m in chosen]
        at = start + pause_s + rng.uniform(*FAULT_GAP_S)
    if shape.churn:
        faults += [Fault(round(duration_s * LAUNCH_AT, 2), Action.LAUNCH, CHURN_TARGET,
                         CHURN_GROUP, CHURN_GROUP, 0.0, 1),
                   Fault(round(duration_s * RETIRE_AT, 2), Action.RETIRE, CHURN_TARGET,
                         CHURN_GROUP, CHURN_GROUP, 0.0, 1)]
    return sorted(faults, key=lambda f: (f.at_s, f.group, f.target))


def _within_rule(rng: random.Random, group: Group, busy: list[_Busy],
                 at: float) -> Fault | None:
    """A phase-1 fault on a member of `group` that keeps it within its rule while every
    earlier fault still counts (None if no member can go down now)."""
    busy[:] = [b for b in busy if b.until_s > at]
    down = [b.member for b in busy]
    candidates = [m for m in group.members if m not in down and group.allows(down + [m])]
    if not candidates:
        return None
    member = rng.choice(candidates)
    action = rng.choice([Action.KILL, Action.PAUSE])
    duration_s = round(rng.uniform(*PAUSE_S), 2) if action is Action.PAUSE else 0.0
    fault = Fault(round(at, 2), action, member.name, group.name, group.kind, duration_s, 1)
    busy.append(_Busy(member, at + fault.down_s + group.recovery_s + SETTLE_AFTER_S))
    return fault


def _beyond_rule(rng: random.Random, group: Group) -> list[Member]:
    """The fewest members (drawn in a seeded order) whose loss breaks the group's rule."""
    chosen: list[Member] = []
    for member in rng.sample(list(group.members), len(group.members)):
        chosen.append(member)
        if not group.allows(chosen):
            break
    return chosen


def count_by(faults: list[Fault], *fields: str) -> dict[str, int]:
    """How many faults there are per value of `fields` joined by '/' (e.g. kind/action)."""
    counts: dict[str, int] = {}
    for fault in faults:
        key = "/".join(str(getattr(fault, f).value if isinstance(getattr(fault, f), Enum)
                           else getattr(fault, f)) for f in fields)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
