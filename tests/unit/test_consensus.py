"""The Tendermint state machine under reordered, duplicated and late messages, timeouts,
dead proposers, locking, unequal stakes, invalid blocks and equivocation (no Ray)."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field, replace

import pytest

from zg_actors.chain.consensus import (
    NIL,
    BroadcastProposal,
    BroadcastVote,
    ConsensusMachine,
    Decide,
    Equivocation,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Step,
    TimeoutConfig,
    Vote,
    VoteType,
)
from zg_actors.chain.gossip import MessageKind, Outbox, RetrySchedule

TIMEOUTS = TimeoutConfig(1.0, 0.5, 0.5, 0.25, 0.5, 0.25)


def round_robin(n: int):
    return lambda height, round_: (height + round_) % n


class Net:
    """N machines exchanging messages with random delays, duplicates and reordering."""

    def __init__(self, powers: list[int], seed: int, *, dead: frozenset[int] = frozenset(),
                 invalid: frozenset[str] = frozenset(), max_delay: float = 0.3,
                 dup_rate: float = 0.2, height: int = 1) -> None:
        self.rng = random.Random(seed)
        self.n = len(powers)
        self.dead = dead
        self.invalid = invalid
        self.max_delay = max_delay
        self.dup_rate = dup_rate
        self.now = 0.0
        self.events: list = []
        self.seq = 0
        self.decisions: dict[int, Decide] = {}
        self.equivocations: list[Equivocation] = []
        self.sent_votes: list[Vote] = []
        self.machines = {
            i: ConsensusMachine(height, powers, i, round_robin(self.n),
                                lambda block: block is not None and block[0] not in invalid,
                                TIMEOUTS)
            for i in range(self.n) if i not in dead}

    def push(self, at: float, item: tuple) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, item))

    def send(self, dest: int, kind: str, payload: object) -> None:
        copies = 2 if self.rng.random() < self.dup_rate else 1
        for _ in range(copies):
            self.push(self.now + self.rng.uniform(0, self.max_delay), (dest, kind, payload))

    def handle(self, i: int, effects: list) -> None:
        machine = self.machines[i]
        for effect in effects:
            if isinstance(effect, RequestProposal):
                block = (f"block-{effect.height}-{effect.round}-by-{i}",)
                self.handle(i, machine.propose(block[0].encode(), block))
            elif isinstance(effect, BroadcastProposal):
                for j in self.machines:
                    if j != i:
                        self.send(j, "proposal", effect.proposal)
            elif isinstance(effect, BroadcastVote):
                signed = replace(effect.vote, signature=f"sig-{i}".encode())
                self.sent_votes.append(signed)
                for j in self.machines:
                    if j != i:
                        self.send(j, "vote", signed)
                self.handle(i, machine.on_vote(signed))
            elif isinstance(effect, ScheduleTimeout):
                self.push(self.now + effect.delay, (i, "timeout", effect))
            elif isinstance(effect, Decide):
                self.decisions[i] = effect
            elif isinstance(effect, Equivocation):
                self.equivocations.append(effect)

    def run(self, until: float = 60.0) -> None:
        for i, machine in self.machines.items():
            self.handle(i, machine.start())
        while self.events and len(self.decisions) < len(self.machines):
            at, _, (dest, kind, payload) = heapq.heappop(self.events)
            if at > until:
                break
            self.now = at
            machine = self.machines[dest]
            if kind == "proposal":
                self.handle(dest, machine.on_proposal(payload))
            elif kind == "vote":
                self.handle(dest, machine.on_vote(payload))
            else:
                self.handle(dest, machine.on_timeout(payload.height, payload.round,
                                                     payload.step))

    def decided_hashes(self) -> set[bytes]:
        return {d.block_hash for d in self.decisions.values()}


@pytest.mark.parametrize("seed", range(25))
def test_honest_network_agrees_under_reordering_and_duplicates(seed: int) -> None:
    net = Net([1, 1, 1, 1], seed, max_delay=0.4, dup_rate=0.3)
    net.run()
    assert len(net.decisions) == 4
    assert len(net.decided_hashes()) == 1
    decision = next(iter(net.decisions.values()))
    # The certificate's precommits are > 2/3 of the power, all for the decided block.
    assert len(decision.precommits) >= 3
    assert all(v.block_hash == decision.block_hash and v.signature for v in
               decision.precommits)


@pytest.mark.parametrize("seed", range(10))
def test_slow_network_with_late_messages_still_agrees(seed: int) -> None:
    # Delays beyond the first timeouts: rounds are skipped, late votes must still count.
    net = Net([1, 1, 1, 1], seed, max_delay=2.5, dup_rate=0.3)
    net.run(until=500.0)
    assert len(net.decisions) == 4
    assert len(net.decided_hashes()) == 1


def test_dead_proposer_is_skipped_by_timeouts() -> None:
    # Round 0 of height 1 belongs to validator 1 (round robin); it is dead.
    net = Net([1, 1, 1, 1], seed=7, dead=frozenset({1}), max_delay=0.1, dup_rate=0.0)
    net.run()
    assert len(net.decisions) == 3
    decision = next(iter(net.decisions.values()))
    assert decision.round >= 1
    assert b"-by-1" not in decision.block_hash
    assert len(net.decided_hashes()) == 1


def test_invalid_block_is_not_decided() -> None:
    # The round-0 proposer (validator 1) proposes a block every honest node rejects.
    net = Net([1, 1, 1, 1], seed=3, invalid=frozenset({"block-1-0-by-1"}), max_delay=0.1)
    net.run()
    assert len(net.decisions) == 4
    decision = next(iter(net.decisions.values()))
    assert decision.block_hash != b"block-1-0-by-1"
    assert decision.round >= 1
    round0_prevotes = [v for v in net.sent_votes
                       if v.round == 0 and v.vote_type == VoteType.PREVOTE]
    assert round0_prevotes and all(v.block_hash == NIL for v in round0_prevotes)


def test_voting_power_not_head_count_decides() -> None:
    # Total power 9: validator 0 holds 5.  Three dead small validators leave 6/9 = 2/3,
    # which is not more than 2/3: nothing may be decided.  Two dead leave 7/9: decided.
    stuck = Net([5, 1, 1, 1, 1], seed=1, dead=frozenset({2, 3, 4}), max_delay=0.1)
    stuck.run(until=40.0)
    assert stuck.decisions == {}
    live = Net([5, 1, 1, 1, 1], seed=1, dead=frozenset({3, 4}), max_delay=0.1)
    live.run()
    assert len(live.decisions) == 3 and len(live.decided_hashes()) == 1


# ---- single-machine scenarios ---------------------------------------------------------
def machine(my_index: int = 0, powers: list[int] | None = None,
            valid: bool = True) -> ConsensusMachine:
    powers = powers or [1, 1, 1, 1]
    return ConsensusMachine(1, powers, my_index, round_robin(len(powers)),
                            lambda block: valid and block is not None, TIMEOUTS)


def prevote(round_: int, block_hash: bytes, validator: int) -> Vote:
    return Vote(1, round_, VoteType.PREVOTE, block_hash, validator, b"s%d" % validator)


def precommit(round_: int, block_hash: bytes, validator: int) -> Vote:
    return Vote(1, round_, VoteType.PRECOMMIT, block_hash, validator, b"s%d" % validator)


def proposal(round_: int, block_hash: bytes, pol_round: int = -1) -> Proposal:
    return Proposal(1, round_, block_hash, pol_round, (block_hash,), (1 + round_) % 4)


def votes_of(effects: list) -> list[Vote]:
    return [e.vote for e in effects if isinstance(e, BroadcastVote)]


def echo(m: ConsensusMachine, effects: list) -> list:
    """Feed our own votes back, signed, as the Validator actor does."""
    out = list(effects)
    for effect in effects:
        if isinstance(effect, BroadcastVote):
            out += echo(m, m.on_vote(replace(effect.vote, signature=b"own")))
    return out


def feed(m: ConsensusMachine, *messages: object) -> list:
    effects = []
    for message in messages:
        if isinstance(message, Proposal):
            effects += echo(m, m.on_proposal(message))
        else:
            effects += echo(m, m.on_vote(message))
    return effects


def test_votes_before_proposal_then_proposal_decides() -> None:
    m = machine(my_index=0)
    m.start()
    effects = feed(m, precommit(0, b"X", 1), precommit(0, b"X", 2), precommit(0, b"X", 3))
    assert not any(isinstance(e, Decide) for e in effects)
    effects = feed(m, proposal(0, b"X"))
    decisions = [e for e in effects if isinstance(e, Decide)]
    assert len(decisions) == 1 and decisions[0].block_hash == b"X"
    assert m.step == Step.COMMIT


def test_duplicates_do_not_count_twice() -> None:
    m = machine(my_index=0)
    m.start()
    effects = feed(m, proposal(0, b"X"), precommit(0, b"X", 1), precommit(0, b"X", 1),
                   precommit(0, b"X", 2), precommit(0, b"X", 2))
    assert not any(isinstance(e, Decide) for e in effects)
    assert not any(isinstance(e, Equivocation) for e in effects)
    assert m.votes[(0, VoteType.PRECOMMIT)].power_any == 2  # 1 and 2, once each


def test_late_commit_of_an_earlier_round_is_decided() -> None:
    m = machine(my_index=0)
    m.start()
    feed(m, proposal(0, b"X"))
    m.on_timeout(1, 0, Step.PREVOTE)  # wrong step: ignored
    assert m.round == 0
    # Move to round 2 via round skip (> 1/3 of the power sends round-2 messages).
    feed(m, prevote(2, NIL, 1), prevote(2, NIL, 2))
    assert m.round == 2
    effects = feed(m, precommit(0, b"X", 1), precommit(0, b"X", 2), precommit(0, b"X", 3))
    decisions = [e for e in effects if isinstance(e, Decide)]
    assert decisions and decisions[0].round == 0 and decisions[0].block_hash == b"X"


def test_round_skip_needs_more_than_one_third() -> None:
    m = machine(my_index=0)
    m.start()
    feed(m, prevote(5, NIL, 1))  # 1/4 of the power
    assert m.round == 0
    feed(m, precommit(5, NIL, 2))  # 2/4 > 1/3
    assert m.round == 5 and m.step == Step.PROPOSE


def test_lock_is_kept_against_a_new_value_and_released_by_a_later_polka() -> None:
    m = machine(my_index=0)
    m.start()
    feed(m, proposal(0, b"X"))
    effects = feed(m, prevote(0, b"X", 1), prevote(0, b"X", 2))
    assert [v.block_hash for v in votes_of(effects)] == [b"X"]  # precommit X
    assert m.locked_hash == b"X" and m.locked_round == 0
    feed(m, precommit(0, NIL, 1), precommit(0, NIL, 2))  # > 2/3 precommits, no commit
    echo(m, m.on_timeout(1, 0, Step.PRECOMMIT))
    assert m.round == 1
    # Round 1: a different value without a proof-of-lock: prevote nil.
    effects = feed(m, proposal(1, b"Y"))
    assert [(v.vote_type, v.block_hash) for v in votes_of(effects)] == [
        (VoteType.PREVOTE, NIL)]
    # Everyone else prevotes Y in round 1: that polka (round 1 > our lock round 0)
    # lets us accept Y when it is re-proposed with pol_round 1 in round 2.
    feed(m, prevote(1, b"Y", 1), prevote(1, b"Y", 2), prevote(1, b"Y", 3))
    echo(m, m.on_timeout(1, 1, Step.PREVOTE))
    echo(m, m.on_timeout(1, 1, Step.PRECOMMIT))
    assert m.round == 2
    effects = feed(m, proposal(2, b"Y", pol_round=1))
    assert [(v.vote_type, v.block_hash) for v in votes_of(effects)] == [
        (VoteType.PREVOTE, b"Y")]


def test_locked_value_is_reproposed_by_the_locked_proposer() -> None:
    # Validator 1 proposes round 0 of height 1; validator 0 proposes round 3.
    m = machine(my_index=0)
    m.start()
    feed(m, proposal(0, b"X"), prevote(0, b"X", 1), prevote(0, b"X", 2))
    assert m.valid_hash == b"X"
    feed(m, precommit(3, NIL, 1), precommit(3, NIL, 2))  # skip to round 3
    assert m.round == 3
    # start_round(3) made us proposer with a valid value: we re-propose it, no request.
    prop = m.proposals[3]
    assert prop.block_hash == b"X" and prop.pol_round == 0


def test_proposer_gets_a_request_and_prevotes_its_own_block() -> None:
    m = machine(my_index=1)
    effects = m.start()
    assert RequestProposal(1, 0) in effects
    effects = m.propose(b"B", (b"B",))
    assert any(isinstance(e, BroadcastProposal) for e in effects)
    assert [(v.vote_type, v.block_hash) for v in votes_of(effects)] == [
        (VoteType.PREVOTE, b"B")]
    assert m.propose(b"C", (b"C",)) == []  # a second block for the round is refused


def test_proposal_from_the_wrong_proposer_is_ignored() -> None:
    m = machine(my_index=0)
    m.start()
    wrong = replace(proposal(0, b"X"), proposer=2)
    assert m.on_proposal(wrong) == []
    assert 0 not in m.proposals


def test_equivocation_is_reported_once_and_not_counted() -> None:
    m = machine(my_index=0)
    m.start()
    feed(m, proposal(0, b"X"))
    effects = feed(m, prevote(0, b"X", 3), prevote(0, b"Y", 3), prevote(0, b"Z", 3))
    reports = [e for e in effects if isinstance(e, Equivocation)]
    assert len(reports) == 1
    assert reports[0].first.block_hash == b"X" and reports[0].second.block_hash == b"Y"
    assert m.votes[(0, VoteType.PREVOTE)].power_any == 2  # ours and the first of 3


def test_timeouts_grow_with_the_round() -> None:
    m = machine(my_index=0)
    delays = []
    effects = m.start()
    for round_ in range(4):
        delays += [e.delay for e in effects
                   if isinstance(e, ScheduleTimeout) and e.step == Step.PROPOSE]
        effects = m.on_timeout(1, round_, Step.PROPOSE)
        effects += feed(m, prevote(round_, NIL, 1), prevote(round_, NIL, 2))
        effects += m.on_timeout(1, round_, Step.PREVOTE)
        effects += feed(m, precommit(round_, NIL, 1), precommit(round_, NIL, 2))
        effects += m.on_timeout(1, round_, Step.PRECOMMIT)
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert delays == [TIMEOUTS.delay(Step.PROPOSE, r) for r in range(4)]


def test_observer_never_votes() -> None:
    m = ConsensusMachine(1, [1, 1, 1], None, round_robin(3), lambda b: True, TIMEOUTS)
    effects = m.start()
    effects += feed(m, Proposal(1, 0, b"X", -1, (b"X",), 1), prevote(0, b"X", 0),
                    prevote(0, b"X", 1), prevote(0, b"X", 2))
    assert votes_of(effects) == []


def test_bad_powers_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        ConsensusMachine(1, [1, 0], 0, round_robin(2), lambda b: True, TIMEOUTS)


def test_restored_lock_and_round_survive_a_restart() -> None:
    # Before a crash we precommitted X in round 2; the new machine resumes in round 2,
    # locked on X: it prevotes nil on a fresh value Y and re-proposes X when it proposes.
    m = machine(my_index=0)
    m.restore_lock(2, b"X", (b"X",))
    effects = m.start(2)
    assert m.round == 2 and m.locked_hash == b"X"
    assert not any(isinstance(e, RequestProposal) for e in effects)  # round 2: proposer 3
    effects = feed(m, proposal(2, b"Y"))
    assert [(v.vote_type, v.block_hash) for v in votes_of(effects)] == [
        (VoteType.PREVOTE, NIL)]
    feed(m, precommit(3, NIL, 1), precommit(3, NIL, 2))  # skip to round 3: our turn
    assert m.proposals[3].block_hash == b"X" and m.proposals[3].pol_round == 2


# ---- eventual delivery: lossy links, partitions that heal, crashes, several heights ----
CALL_TIMEOUT_S = 1.0  # a call that got no answer is given up after this long
FUTURE_HEIGHTS_HELD = 3  # as the Validator actor: messages this far ahead are buffered


@dataclass
class SimNode:
    """One validator of GossipNet: its machine and outbox (lost at a crash) and what it
    persisted before sending (kept): its signed messages, last round and lock."""

    index: int
    height: int = 1
    machine: ConsensusMachine | None = None
    outbox: Outbox | None = None
    incarnation: bytes = b""
    in_flight: set[int] = field(default_factory=set)
    buffer: dict[int, list] = field(default_factory=dict)
    decisions: dict[int, Decide] = field(default_factory=dict)
    signed: dict[tuple, object] = field(default_factory=dict)  # (height, round, kind) -> msg
    last_round: dict[int, int] = field(default_factory=dict)
    locks: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    down: bool = False


class GossipNet:
    """Validators that send through the Outbox (chain/gossip.py) over links that lose calls
    and answers, are cut by a partition until `heal_at`, and whose `crashed` nodes are down
    from `crash_at` to `heal_at` (losing memory, keeping what they persisted); the heights
    1..`heights` must each commit at every node, one block per height."""

    def __init__(self, powers: list[int], seed: int, *, heights: int = 3, loss: float = 0.3,
                 loss_after_heal: float = 0.1, partition: frozenset[int] = frozenset(),
                 crashed: frozenset[int] = frozenset(), crash_at: float = 2.0,
                 heal_at: float = 20.0, max_delay: float = 0.3, resend: bool = True) -> None:
        self.rng = random.Random(seed)
        self.resend = resend
        self.powers = powers
        self.n = len(powers)
        self.heights = heights
        self.loss, self.loss_after_heal = loss, loss_after_heal
        self.partition, self.crashed = partition, crashed
        self.crash_at, self.heal_at = crash_at, heal_at
        self.max_delay = max_delay
        self.now = 0.0
        self.events: list = []
        self.seq = 0
        self.nodes = {i: SimNode(i) for i in range(self.n)}

    # ---- plumbing ---------------------------------------------------------------------
    def push(self, at: float, item: tuple) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, item))

    def lost(self, a: int, b: int) -> bool:
        if self.nodes[a].down or self.nodes[b].down:
            return True
        if self.now < self.heal_at:
            return (a in self.partition) != (b in self.partition) or (
                self.rng.random() < self.loss)
        return self.rng.random() < self.loss_after_heal

    def pump(self, i: int) -> None:
        node = self.nodes[i]
        if node.down:
            return
        for peer in node.outbox.peers:
            keys = [] if peer in node.in_flight else node.outbox.due(peer, self.now)
            if not keys:
                continue
            messages = [node.outbox.messages[k] for k in keys]
            if self.resend:
                node.in_flight.add(peer)
            else:  # fire and forget: what the first send lost stays lost
                node.outbox.peers[peer].acknowledged.update(keys)
            if self.lost(i, peer):
                self.push(self.now + CALL_TIMEOUT_S, ("failed", i, node.incarnation, peer))
            else:
                self.push(self.now + self.rng.uniform(0, self.max_delay),
                          ("call", peer, i, node.incarnation, keys, messages))

    def wake_later(self, i: int) -> None:
        node = self.nodes[i]
        for peer in node.outbox.peers:
            wait = node.outbox.wait_s(peer, self.now)
            if wait is not None and peer not in node.in_flight:
                self.push(self.now + wait, ("wake", i, node.incarnation))

    # ---- a validator ------------------------------------------------------------------
    def boot(self, i: int) -> None:
        """Start (or restart after a crash) node i at its height, from what it persisted."""
        node = self.nodes[i]
        node.down = False
        node.incarnation = self.rng.randbytes(8)
        node.in_flight = set()
        node.buffer = {}
        node.outbox = Outbox([j for j in range(self.n) if j != i], RetrySchedule())
        self.start_height(i)

    def start_height(self, i: int) -> None:
        node = self.nodes[i]
        h = node.height
        node.machine = ConsensusMachine(h, self.powers, i, round_robin(self.n),
                                        lambda block: block is not None, TIMEOUTS)
        node.outbox.prune(h - 1)
        if h in node.locks:
            lock_round, lock_hash = node.locks[h]
            node.machine.restore_lock(lock_round, lock_hash, (lock_hash,))
        self.handle(i, node.machine.start(node.last_round.get(h, 0)))
        for message in node.buffer.pop(h, []):
            self.feed(i, message)
        self.pump(i)

    def sign(self, i: int, key: tuple, message: object) -> object:
        """Persist-then-send, as the actor: a key signed before a crash keeps its message."""
        node = self.nodes[i]
        message = node.signed.setdefault(key, message)
        node.outbox.add(key, message)
        return message

    def handle(self, i: int, effects: list) -> None:
        node = self.nodes[i]
        machine = node.machine
        for effect in effects:
            if isinstance(effect, RequestProposal):
                earlier = node.signed.get((effect.height, effect.round, MessageKind.PROPOSAL))
                block = earlier.block if earlier else (
                    f"block-{effect.height}-{effect.round}-by-{i}".encode(),)
                self.handle(i, machine.propose(block[0], block))
            elif isinstance(effect, BroadcastProposal):
                p = effect.proposal
                self.sign(i, (p.height, p.round, MessageKind.PROPOSAL), p)
            elif isinstance(effect, BroadcastVote):
                v = effect.vote
                node.last_round[v.height] = v.round
                signed = self.sign(i, (v.height, v.round, MessageKind(v.vote_type)),
                                   replace(v, signature=f"sig-{i}".encode()))
                if signed.vote_type == VoteType.PRECOMMIT and signed.block_hash:
                    node.locks[v.height] = (v.round, signed.block_hash)
                self.handle(i, machine.on_vote(signed))
            elif isinstance(effect, ScheduleTimeout):
                self.push(self.now + effect.delay, ("timeout", i, node.incarnation, effect))
            elif isinstance(effect, Decide):
                self.decide(i, effect)
                return  # the machine of this height is gone
        self.pump(i)

    def decide(self, i: int, decision: Decide) -> None:
        node = self.nodes[i]
        node.decisions[decision.height] = decision
        node.height = decision.height + 1
        if node.height <= self.heights + 1:  # one height past the last, for its precommits
            self.start_height(i)

    def feed(self, i: int, message: object) -> bool:
        """Hand a message to node i; whether it holds it (its acknowledgement)."""
        node = self.nodes[i]
        if message.height < node.height:
            return True  # decided there already
        if message.height > node.height:
            if message.height > node.height + FUTURE_HEIGHTS_HELD:
                return False
            node.buffer.setdefault(message.height, []).append(message)
            return True
        if isinstance(message, Proposal):
            self.handle(i, node.machine.on_proposal(message))
        else:
            self.handle(i, node.machine.on_vote(message))
        return True

    def sync(self, i: int, peer: int, height: int) -> None:
        """A message of a later height came from `peer`: fetch the decisions it has (with
        their > 2/3 precommits, as the actor's sync checks a block's certificate)."""
        node, source = self.nodes[i], self.nodes[peer]
        while node.height < height and node.height in source.decisions:
            decision = source.decisions[node.height]
            assert 3 * sum(self.powers[v.validator] for v in decision.precommits) > \
                2 * sum(self.powers)
            self.decide(i, decision)

    # ---- the run ----------------------------------------------------------------------
    def done(self) -> bool:
        return all(len(n.decisions) >= self.heights for n in self.nodes.values())

    def run(self, until: float) -> None:
        for i in self.nodes:
            self.boot(i)
        crash_pending = bool(self.crashed)
        while self.events and not self.done():
            at, _, event = heapq.heappop(self.events)
            if at > until:
                break
            if crash_pending and at >= self.crash_at:
                crash_pending = False
                for i in self.crashed:
                    self.nodes[i].down = True
                self.push(self.heal_at, ("restart",))
            self.now = at
            self.dispatch(event)

    def dispatch(self, event: tuple) -> None:
        kind = event[0]
        if kind == "restart":
            for i in self.crashed:
                self.boot(i)
            return
        if kind == "call":  # to node i, from sender
            _, i, sender, incarnation, keys, messages = event
            node = self.nodes[i]
            if node.down:
                self.push(self.now + CALL_TIMEOUT_S, ("failed", sender, incarnation, i))
                return
            if node.outbox.seen_incarnation(sender, incarnation):
                self.pump(i)
            if max(m.height for m in messages) > node.height:
                self.sync(i, sender, max(m.height for m in messages))
            held = [self.feed(i, m) for m in messages]
            answer = ("answer", sender, incarnation, i, keys, held, node.incarnation)
            if self.lost(i, sender):  # the answer is lost: the sender gives up later
                self.push(self.now + CALL_TIMEOUT_S, ("failed", sender, incarnation, i))
            else:
                self.push(self.now + self.rng.uniform(0, self.max_delay), answer)
            return
        _, i, incarnation = event[:3]
        node = self.nodes[i]
        if node.down or node.incarnation != incarnation:
            return  # for a process that has crashed since
        if kind == "answer":
            _, _, _, peer, keys, held, peer_incarnation = event
            node.in_flight.discard(peer)
            node.outbox.delivered(peer, keys, held, peer_incarnation, self.now)
        elif kind == "failed":
            peer = event[3]
            node.in_flight.discard(peer)
            node.outbox.failed(peer, self.now)
        elif kind == "timeout":
            timeout = event[3]
            if node.machine is not None and node.machine.height == timeout.height:
                self.handle(i, node.machine.on_timeout(timeout.height, timeout.round,
                                                       timeout.step))
        self.pump(i)
        self.wake_later(i)

    def committed(self) -> dict[int, set[bytes]]:
        out: dict[int, set[bytes]] = {}
        for node in self.nodes.values():
            for height, decision in node.decisions.items():
                out.setdefault(height, set()).add(decision.block_hash)
        return out


def assert_every_height_committed_once(net: GossipNet) -> None:
    committed = net.committed()
    assert all(len(hashes) == 1 for hashes in committed.values()), committed
    for node in net.nodes.values():
        assert set(range(1, net.heights + 1)) <= set(node.decisions), (
            node.index, sorted(node.decisions), node.height,
            node.machine and (node.machine.round, node.machine.step))


@pytest.mark.parametrize("seed", range(40))
def test_lossy_links_every_height_commits(seed: int) -> None:
    net = GossipNet([1, 1, 1, 1], seed, heights=4, loss=0.4, heal_at=10.0)
    net.run(until=400.0)
    assert_every_height_committed_once(net)


@pytest.mark.parametrize("seed", range(40))
def test_partition_that_heals_every_height_commits(seed: int) -> None:
    # 2 | 2: no side has > 2/3, nothing commits until the partition heals.
    net = GossipNet([1, 1, 1, 1], seed, heights=3, loss=0.2, partition=frozenset({0, 1}),
                    heal_at=30.0)
    net.run(until=30.0)
    assert all(not node.decisions for node in net.nodes.values())
    net = GossipNet([1, 1, 1, 1], seed, heights=3, loss=0.2, partition=frozenset({0, 1}),
                    heal_at=30.0)
    net.run(until=400.0)
    assert_every_height_committed_once(net)


@pytest.mark.parametrize("seed", range(40))
def test_two_of_four_crash_together_every_height_commits(seed: int) -> None:
    # Half the power crashes mid-height (memory lost, signed votes and locks kept) and
    # restarts at heal_at; the two left re-send what the crashed ones missed.
    net = GossipNet([1, 1, 1, 1], seed, heights=4, loss=0.2, crashed=frozenset({2, 3}),
                    crash_at=0.4 + 0.1 * (seed % 10), heal_at=15.0)
    net.run(until=400.0)
    assert_every_height_committed_once(net)


@pytest.mark.parametrize("seed", range(10))
def test_unequal_stakes_partition_heals(seed: int) -> None:
    # The minority side {0} holds 5 of 9: the others (4/9) cannot commit without it.
    net = GossipNet([5, 1, 1, 1, 1], seed, heights=3, loss=0.3, partition=frozenset({0}),
                    heal_at=20.0)
    net.run(until=400.0)
    assert_every_height_committed_once(net)


def test_without_resending_a_partition_that_heals_stays_stuck() -> None:
    # The control: messages sent once are lost across the partition and nothing re-sends
    # them, so after healing the round state cannot move (what the network did before).
    net = GossipNet([1, 1, 1, 1], 1, heights=1, loss=0.0, loss_after_heal=0.0,
                    partition=frozenset({0, 1}), heal_at=30.0, resend=False)
    net.run(until=400.0)
    assert any(not node.decisions for node in net.nodes.values())


def test_retry_schedule_backs_off_to_a_ceiling() -> None:
    schedule = RetrySchedule(first_s=0.2, factor=2.0, max_s=2.0)
    assert [schedule.delay(f) for f in range(7)] == [0.0, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    with pytest.raises(ValueError):
        RetrySchedule(first_s=0.0)


def test_outbox_resends_until_held_and_everything_after_a_restart() -> None:
    box = Outbox([1, 2], RetrySchedule(first_s=1.0, factor=2.0, max_s=4.0))
    a, b = (5, 0, MessageKind.PROPOSAL), (5, 0, MessageKind.PREVOTE)
    box.add(a, "proposal")
    box.add(b, "prevote")
    box.add(b, "another prevote")  # never a second message for one key
    assert box.messages[b] == "prevote"
    assert box.due(1, 0.0) == [a, b]
    box.failed(1, 0.0)  # peer 1 is down: paused 1 s, then 2 s
    assert box.due(1, 0.5) == [] and box.wait_s(1, 0.5) == 0.5
    box.failed(1, 1.0)
    assert box.due(1, 2.9) == [] and box.due(1, 3.0) == [a, b]
    box.delivered(1, [a, b], [True, False], b"inc-1", 3.0)  # b not held: paused again
    assert box.due(1, 3.0) == [] and box.unacknowledged(1) == [b]
    box.delivered(1, [b], [True], b"inc-1", 20.0)
    assert box.due(1, 20.0) == [] and box.wait_s(1, 20.0) is None
    assert box.due(2, 0.0) == [a, b]  # peer 2 has its own state
    assert box.seen_incarnation(1, b"inc-1") is False
    assert box.seen_incarnation(1, b"inc-2") is True  # restarted: lost all it had
    assert box.due(1, 20.0) == [a, b]
    box.prune(6)
    assert box.messages == {} and box.due(1, 20.0) == []
