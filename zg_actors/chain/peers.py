"""A validator's links to the other validators of its network.

No Ray here: the actor passes in how a peer's handle is looked up, so unit tests drive this
with stand-in peers.  It caches handles (and drops one whose call failed: the name may now
belong to a re-created actor), sends fire-and-forget calls, and runs one delivery loop per
peer that sends what our Outbox (chain/gossip.py) says the peer has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from zg_actors.chain.gossip import MessageKey, Outbox, RetrySchedule

log = logging.getLogger(__name__)

HEIGHT_CALL_TIMEOUT_S = 2.0  # a peer not telling its height by then is left out of a sync
PEER_CALL_TIMEOUT_S = 3.0  # a send to a peer not answered by then is re-sent (gossip.py)
RESEND_SCHEDULE = RetrySchedule(first_s=0.2, factor=2.0, max_s=2.0)

# What a peer's on_messages answers: its incarnation and, per message, whether it holds it.
Acknowledgement = tuple[bytes, list[bool]]


class Peers:
    """The other members of one network, as seen by validator `me`."""

    def __init__(self, me: int, members: list[int], lookup: Callable[[int], Any],
                 schedule: RetrySchedule = RESEND_SCHEDULE) -> None:
        self.me = me
        self.others = [i for i in members if i != me]
        self.lookup = lookup  # identity -> handle of that validator (raises ValueError)
        self._handles: dict[int, Any] = {}
        # Drawn anew by every process: peers that see a new one re-send what we lost.
        self.incarnation = os.urandom(8)
        self.outbox = Outbox(self.others, schedule)
        self._changed = asyncio.Event()  # set, then replaced, at every outbox change
        self._deliveries: dict[int, asyncio.Task] = {}  # peer -> its sending loop
        self.stopped = False

    def handle(self, identity: int) -> Any:
        """The peer's handle (looked up once; raises ValueError while its name is gone)."""
        if identity not in self._handles:
            self._handles[identity] = self.lookup(identity)
        return self._handles[identity]

    def forget(self, identity: int) -> None:
        """Look the peer's name up again next time: it may be a new actor."""
        self._handles.pop(identity, None)

    def call(self, identity: int, method: str, *args: Any) -> Awaitable[Any]:
        """Start a call to one peer; the handle is forgotten when the lookup fails."""
        try:
            return getattr(self.handle(identity), method).remote(*args)
        except ValueError:
            self.forget(identity)
            raise

    def broadcast(self, method: str, *args: Any) -> None:
        """Call `method` on every other member, not waiting for answers."""
        for identity in self.others:
            with contextlib.suppress(ValueError):  # its name is gone (restarting): it syncs
                self.call(identity, method, *args)

    async def most_advanced(self, height: int) -> int | None:
        """The peer with the highest committed height above `height`, if any answers."""
        refs = {}
        for identity in self.others:
            with contextlib.suppress(ValueError):
                refs[identity] = self.call(identity, "committed_height")
        best, best_height = None, height
        for identity, ref in refs.items():
            try:
                peer_height = await asyncio.wait_for(ref, HEIGHT_CALL_TIMEOUT_S)
            except Exception:
                self.forget(identity)
                continue
            if peer_height > best_height:
                best, best_height = identity, peer_height
        return best

    async def blocks_from(self, start: int, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` committed (block, certificate) pairs from height `start` on, from
        the most advanced peer; [] when no peer is ahead or the one asked did not answer."""
        best = await self.most_advanced(start - 1)
        if best is None:
            return []
        try:
            return await self.call(best, "get_blocks", start, limit)
        except Exception:
            self.forget(best)
            return []

    # ---- eventual delivery of our proposals and votes --------------------------------
    def gossip(self, key: MessageKey, message: object) -> None:
        """Send a message we signed to every peer, and again until each holds it."""
        self.outbox.add(key, message)
        self.touched()

    def received_from(self, sender: int, incarnation: bytes) -> None:
        """A message from `sender`: if it restarted, it lost what we had sent it."""
        if self.outbox.seen_incarnation(sender, incarnation):
            self.touched()

    def touched(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self.ensure_deliveries()

    def ensure_deliveries(self) -> None:
        """Start the delivery loop of every peer that has none running."""
        if self.stopped:
            return
        for peer in self.outbox.peers:
            task = self._deliveries.get(peer)
            if task is None or task.done():
                self._deliveries[peer] = asyncio.get_running_loop().create_task(
                    self._deliver_to(peer))

    def stop(self) -> None:
        self.stopped = True
        for task in self._deliveries.values():
            task.cancel()

    async def _deliver_to(self, peer: int) -> None:
        """One call to `peer` at a time, carrying what it has not acknowledged."""
        while not self.stopped:
            changed = self._changed
            now = time.monotonic()
            keys = self.outbox.due(peer, now)
            if not keys:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.outbox.wait_s(peer, now))
                continue
            messages = [self.outbox.messages[key] for key in keys]
            try:
                incarnation, held = await asyncio.wait_for(
                    self.call(peer, "on_messages", self.me, self.incarnation, messages),
                    PEER_CALL_TIMEOUT_S)
            except Exception as exc:  # down, restarting, re-created, or too slow
                log.debug("send to validator %d failed: %s", peer, exc)
                self.forget(peer)
                self.outbox.failed(peer, time.monotonic())
                continue
            self.outbox.delivered(peer, keys, held, incarnation, time.monotonic())
