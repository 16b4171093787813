"""The status feed of a disperser and the gateway's cache that follows it."""

from __future__ import annotations

import asyncio

from zg_actors.da.params import BlobStatus
from zg_actors.da.status import StatusCache, StatusFeed


def status(key: int, value: BlobStatus) -> dict:
    return {"request_id": bytes([key]) * 32, "status": int(value), "error": "",
            "network_id": 0}


def test_the_feed_numbers_changes_and_reports_gaps() -> None:
    feed = StatusFeed(max_changes=3)
    assert feed.since(-1) == {"incarnation": feed.incarnation, "seq": 0, "complete": True,
                              "changes": []}
    feed.publish([status(1, BlobStatus.PROCESSING), status(2, BlobStatus.PROCESSING)])
    answer = feed.since(0)
    assert answer["seq"] == 2 and answer["complete"]
    assert [c["request_id"][0] for c in answer["changes"]] == [1, 2]
    assert feed.since(1)["changes"] == [status(2, BlobStatus.PROCESSING)]
    assert feed.since(-1)["changes"] == []  # a new follower starts from now
    feed.publish([status(1, BlobStatus.CONFIRMED), status(2, BlobStatus.CONFIRMED)])
    # Change 1 was dropped (3 kept): a follower at 0 missed it, one at 1 did not.
    assert not feed.since(0)["complete"]
    assert feed.since(1)["complete"] and len(feed.since(1)["changes"]) == 3
    assert StatusFeed().incarnation != feed.incarnation


def test_a_follower_at_the_head_of_the_feed_waits_for_the_next_change() -> None:
    async def follow() -> tuple[dict, dict, dict]:
        feed = StatusFeed()
        feed.publish([status(1, BlobStatus.PROCESSING)])
        behind = await feed.wait_since(0, 30.0)  # changes after 0: at once
        waiting = asyncio.ensure_future(feed.wait_since(1, 30.0))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        feed.publish([status(1, BlobStatus.CONFIRMED)])  # wakes it
        woken = await asyncio.wait_for(waiting, 5.0)
        quiet = await feed.wait_since(2, 0.05)  # nothing new in time: an empty answer
        return behind, woken, quiet

    behind, woken, quiet = asyncio.run(follow())
    assert [c["status"] for c in behind["changes"]] == [BlobStatus.PROCESSING]
    assert woken["seq"] == 2 and woken["changes"] == [status(1, BlobStatus.CONFIRMED)]
    assert quiet["seq"] == 2 and quiet["changes"] == []


def test_the_cache_answers_only_while_every_feed_is_followed() -> None:
    feeds = [StatusFeed(), StatusFeed()]
    cache = StatusCache(2)
    processing = status(1, BlobStatus.PROCESSING)
    cache.learn(processing)
    assert cache.get(processing["request_id"]) is None  # not following yet: not live
    cache.apply(0, feeds[0].since(cache.position(0)))
    assert not cache.live
    cache.apply(1, feeds[1].since(cache.position(1)))
    assert cache.live and cache.position(0) == 0
    cache.learn(processing)  # DisperseBlob's answer
    assert cache.get(processing["request_id"]) == processing
    feeds[0].publish([status(1, BlobStatus.CONFIRMED), status(3, BlobStatus.FINALIZED)])
    cache.apply(0, feeds[0].since(cache.position(0)))
    assert cache.get(bytes([1]) * 32)["status"] == BlobStatus.CONFIRMED
    assert cache.get(bytes([3]) * 32)["status"] == BlobStatus.FINALIZED
    # A direct read that is older than what the feed brought does not step back.
    cache.learn(processing)
    assert cache.get(bytes([1]) * 32)["status"] == BlobStatus.CONFIRMED
    # A final status may follow CONFIRMED (FAILED after a bad-encoding proof).
    feeds[0].publish([status(1, BlobStatus.FAILED)])
    cache.apply(0, feeds[0].since(cache.position(0)))
    assert cache.get(bytes([1]) * 32)["status"] == BlobStatus.FAILED
    # A feed that cannot be read: nothing is answered from the cache until followed again.
    cache.lost(1)
    assert not cache.live and cache.get(bytes([3]) * 32) is None


def test_a_restarted_disperser_or_a_gap_clears_the_cache() -> None:
    feed = StatusFeed(max_changes=2)
    cache = StatusCache(1)
    cache.apply(0, feed.since(cache.position(0)))
    feed.publish([status(1, BlobStatus.PROCESSING)])
    cache.apply(0, feed.since(cache.position(0)))
    assert cache.get(bytes([1]) * 32)["status"] == BlobStatus.PROCESSING
    restarted = StatusFeed(max_changes=2)  # it marked the blob FAILED at start, before any follower
    cache.apply(0, restarted.since(cache.position(0)))
    assert cache.get(bytes([1]) * 32) is None and cache.live
    assert cache.position(0) == restarted.seq
    cache.learn(status(1, BlobStatus.FAILED))
    restarted.publish([status(i, BlobStatus.PROCESSING) for i in range(2, 6)])
    cache.apply(0, restarted.since(cache.position(0)))  # 4 changes, 2 kept: a gap
    assert cache.get(bytes([1]) * 32) is None and cache.position(0) == 4


def test_the_cache_keeps_the_most_recently_used() -> None:
    feed = StatusFeed()
    cache = StatusCache(1, max_blobs=2)
    cache.apply(0, feed.since(-1))
    for key in (1, 2):
        cache.learn(status(key, BlobStatus.PROCESSING))
    assert cache.get(bytes([1]) * 32) is not None  # 1 used: 2 is now the oldest
    cache.learn(status(3, BlobStatus.PROCESSING))
    assert cache.get(bytes([2]) * 32) is None
    assert cache.get(bytes([1]) * 32) is not None and cache.get(bytes([3]) * 32) is not None
