"""Blob status changes as a feed: a disperser publishes them, the gRPC gateway caches them.

Without it every GetBlobStatus poll costs a Ray call to a disperser and an LMDB read
there, and clients poll each blob several times. With it a disperser appends each
change (after persisting it) to a bounded in-memory feed; the gateway follows the feed
with one long-poll call at a time and answers polls from its cache. The cache is trusted
only while every feed it follows is live and complete: a restarted disperser (a new
incarnation) or a gap in a feed clears it, and unknown ids still go to the dispersers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict, deque
from typing import Any

from zg_actors.da.params import BlobStatus

FEED_MAX_CHANGES = 65_536  # changes a disperser keeps for followers that fall behind
CACHE_MAX_BLOBS = 32_768  # statuses a gateway keeps (~0.5 KB each), least recently used out

Status = dict[str, Any]  # Disperser.status's answer: request_id, status, error, header fields


def _stage(status: int) -> int:
    """Where a status is in a blob's life at a disperser: 0 PROCESSING, 1 CONFIRMED, 2 final
    (FINALIZED, FAILED, INSUFFICIENT_SIGNATURES)."""
    return {int(BlobStatus.PROCESSING): 0, int(BlobStatus.CONFIRMED): 1}.get(int(status), 2)


class StatusFeed:
    """A disperser's recent status changes, numbered from 1 in the order they happened."""

    def __init__(self, max_changes: int = FEED_MAX_CHANGES) -> None:
        self.incarnation = os.urandom(8).hex()  # a restarted disperser starts a new feed
        self.seq = 0
        self._changes: deque[tuple[int, Status]] = deque(maxlen=max_changes)
        self._changed = asyncio.Event()  # set, then replaced, by each publish

    def publish(self, statuses: list[Status]) -> None:
        """Call after the changes are persisted: followers may answer from them at once."""
        for status in statuses:
            self.seq += 1
            self._changes.append((self.seq, status))
        self._changed.set()  # wakes the followers waiting in wait_since
        self._changed = asyncio.Event()

    async def wait_since(self, seq: int, wait_s: float) -> dict[str, Any]:
        """since(seq), after waiting up to `wait_s` for a change when there is none after
        `seq` yet (a long poll: a follower asks again at once)."""
        if 0 <= seq == self.seq and wait_s > 0:
            with contextlib.suppress(TimeoutError):  # no change in time: answer empty
                await asyncio.wait_for(self._changed.wait(), wait_s)
        return self.since(seq)

    def since(self, seq: int) -> dict[str, Any]:
        """Changes after `seq` (-1: none, only where the feed is now). `complete` is False
        when some were already dropped: the follower's view has a gap."""
        oldest = self._changes[0][0] if self._changes else self.seq + 1
        complete = seq < 0 or seq >= oldest - 1
        changes: list[Status] = []
        for number, status in reversed(self._changes):  # newest first: only the new ones
            if number <= seq or seq < 0:
                break
            changes.append(status)
        changes.reverse()
        return {"incarnation": self.incarnation, "seq": self.seq, "complete": complete,
                "changes": changes}


class StatusCache:
    """The gateway's view of blob statuses, kept by following each disperser's feed."""

    def __init__(self, feeds: int, max_blobs: int = CACHE_MAX_BLOBS) -> None:
        self.max_blobs = max_blobs
        self._statuses: OrderedDict[bytes, Status] = OrderedDict()
        # Per feed: (incarnation, last seq applied), or None while it is not followed.
        self._followed: list[tuple[str, int] | None] = [None] * feeds

    @property
    def live(self) -> bool:
        """Answers may come from the cache only while every feed is followed."""
        return all(f is not None for f in self._followed)

    def position(self, feed: int) -> int:
        """The seq to ask feed `feed` for next (-1: start following from now)."""
        followed = self._followed[feed]
        return -1 if followed is None else followed[1]

    def apply(self, feed: int, answer: dict[str, Any]) -> None:
        """Take a StatusFeed.since answer. A new incarnation or a gap clears the cache
        (statuses may have changed unseen); the feed is followed on from where it is."""
        followed = self._followed[feed]
        if followed is not None:
            if followed[0] != answer["incarnation"] or not answer["complete"]:
                self.clear()
            else:
                for status in answer["changes"]:
                    self._put(status)
        self._followed[feed] = (answer["incarnation"], answer["seq"])

    def lost(self, feed: int) -> None:
        """Feed `feed` could not be read: until it is followed again, nothing is cached."""
        self.clear()

    def clear(self) -> None:
        self._statuses.clear()
        self._followed = [None] * len(self._followed)

    def get(self, request_id: bytes) -> Status | None:
        """The cached status, or None when the cache does not know or is not live."""
        if not self.live:
            return None
        status = self._statuses.get(request_id)
        if status is not None:
            self._statuses.move_to_end(request_id)
        return status

    def learn(self, status: Status) -> None:
        """A status read from a disperser or given by DisperseBlob (kept only while live;
        an older stage than the one known is ignored)."""
        if self.live:
            self._put(status)

    def _put(self, status: Status) -> None:
        key = status["request_id"]
        known = self._statuses.get(key)
        # A status read directly may be newer than a change still on its way in the feed:
        # never step back (PROCESSING, then CONFIRMED, then a final status).
        if known is not None and _stage(status["status"]) < _stage(known["status"]):
            return
        self._statuses[key] = status
        self._statuses.move_to_end(key)
        while len(self._statuses) > self.max_blobs:
            self._statuses.popitem(last=False)
