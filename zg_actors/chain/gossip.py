"""Eventual delivery of a validator's consensus messages: a pure outbox (no Ray, no clock).

Tendermint decides only once the messages between correct validators are delivered, but
a call to a peer that is down (crashed, restarting under Ray, or re-created as a new
actor) is lost.  So, as CometBFT's gossip does, a validator keeps what it signed at the
height it works on and at the height it committed last (a peer still there needs those
precommits), and re-sends each message to every peer that has not acknowledged it, with
pauses that grow while the peer does not answer, until the height is pruned.

A peer acknowledges with its incarnation, a random id drawn when its process starts: a
peer seen with a new incarnation restarted and lost what it had received, so everything
is due to it again.  A peer that answers without holding a message (say, it is too far
behind to buffer it) has not acknowledged it, and it is re-sent later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum


class MessageKind(IntEnum):
    PROPOSAL = 0
    PREVOTE = 1  # = VoteType.PREVOTE
    PRECOMMIT = 2  # = VoteType.PRECOMMIT


# (height, round, kind): a validator signs at most one message per key.
MessageKey = tuple[int, int, MessageKind]


@dataclass(frozen=True)
class RetrySchedule:
    """Seconds to wait before re-sending to a peer after `failures` sends in a row that it
    did not acknowledge: none at first, then doubling from `first_s` up to `max_s`, so a
    dead peer costs a call every `max_s` and a restarted one is reached within that."""

    first_s: float = 0.2
    factor: float = 2.0
    max_s: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.first_s <= self.max_s and self.factor >= 1):
            raise ValueError(f"bad retry schedule {self}")

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.max_s, self.first_s * self.factor ** (failures - 1))


@dataclass
class _PeerState:
    incarnation: bytes | None = None
    acknowledged: set[MessageKey] = field(default_factory=set)
    failures: int = 0  # sends in a row the peer did not fully acknowledge
    next_send_at: float = 0.0


class Outbox:
    """What one validator signed at its recent heights, and which peer holds which."""

    def __init__(self, peers: Iterable[int], schedule: RetrySchedule) -> None:
        self.schedule = schedule
        self.messages: dict[MessageKey, object] = {}
        self.peers = {peer: _PeerState() for peer in peers}

    def add(self, key: MessageKey, message: object) -> None:
        """A message we signed; the first one per key stays (we never sign two)."""
        self.messages.setdefault(key, message)

    def unacknowledged(self, peer: int) -> list[MessageKey]:
        acknowledged = self.peers[peer].acknowledged
        return [key for key in self.messages if key not in acknowledged]

    def due(self, peer: int, now: float) -> list[MessageKey]:
        """The messages to send `peer` now: its unacknowledged ones, unless it is in a
        pause after failed sends."""
        if now < self.peers[peer].next_send_at:
            return []
        return self.unacknowledged(peer)

    def wait_s(self, peer: int, now: float) -> float | None:
        """How long until something is due to `peer`; None: nothing until a new message."""
        if not self.unacknowledged(peer):
            return None
        return max(0.0, self.peers[peer].next_send_at - now)

    def delivered(self, peer: int, keys: list[MessageKey], held: list[bool],
                  incarnation: bytes, now: float) -> None:
        """`peer` (in `incarnation`) answered a send of `keys`, holding those marked."""
        self.seen_incarnation(peer, incarnation)
        state = self.peers[peer]
        state.acknowledged.update(k for k, h in zip(keys, held, strict=True) if h)
        if all(held):
            state.failures, state.next_send_at = 0, now
        else:
            self._pause(state, now)

    def failed(self, peer: int, now: float) -> None:
        """A send to `peer` got no answer (peer down, restarting, or too slow)."""
        self._pause(self.peers[peer], now)

    def seen_incarnation(self, peer: int, incarnation: bytes) -> bool:
        """Note `peer`'s incarnation (from its answer or its own message); True when it
        restarted, which makes everything due to it at once."""
        state = self.peers.get(peer)
        if state is None or state.incarnation == incarnation:
            return False
        restarted = state.incarnation is not None
        state.incarnation = incarnation
        if restarted:
            state.acknowledged.clear()
            state.failures, state.next_send_at = 0, 0.0
        return restarted

    def prune(self, below_height: int) -> None:
        """Forget messages of heights below `below_height`: no peer needs them any more."""
        stale = [key for key in self.messages if key[0] < below_height]
        for key in stale:
            del self.messages[key]
        for state in self.peers.values():
            state.acknowledged.difference_update(stale)

    def _pause(self, state: _PeerState, now: float) -> None:
        state.failures += 1
        state.next_send_at = now + self.schedule.delay(state.failures)
