"""Following a network's flow into the replayer (pure: the flow is reached through a
`FlowSource` the KV node actor gives, so this runs in unit tests without Ray).

A KV node learns of each entry from the flow (sender, tx_seq, tags: what the `Submit`
event carries), replays entries strictly in tx_seq order, and fetches only the data of
entries it must judge. An entry whose data is not yet held by the miners (not
FINALIZED) is waited for, never skipped: the node stops there until a later block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from zg_actors.storage.constants import STATUS_FINALIZED
from zg_actors.storage.kv.replay import FlowEntry, Replayer


class FlowSource(Protocol):
    def entry_count(self) -> int:
        """Entries the flow has (the next tx_seq it will give)."""

    def entry(self, tx_seq: int) -> dict:
        """The flow's record of an entry: sender, tags, root, size, status."""

    def fetch(self, info: dict) -> bytes:
        """The entry's data, downloaded from the miners and verified against its root."""


# Told of each entry once it is persisted: the entry, its recorded result (None: not a KV
# tx of the followed streams) and the entries the flow has beyond it.
Replayed = Callable[[FlowEntry, str | None, int], None]


class Follower:
    """Replays every entry of the flow that the replayer has not applied yet."""

    def __init__(self, replayer: Replayer, flow: FlowSource,
                 on_replayed: Replayed | None = None) -> None:
        self.replayer = replayer
        self.flow = flow
        self.on_replayed = on_replayed
        self.waiting_for: int | None = None  # the entry whose data is not FINALIZED yet
        self.flow_entries = 0  # the flow's entry count at the latest look

    @property
    def lag_entries(self) -> int:
        """Flow entries (at the latest look) not replayed yet."""
        return max(0, self.flow_entries - self.replayer.state.next_tx_seq)

    def catch_up(self) -> int:
        """Apply entries in order until the flow's end or an entry whose data is not
        available yet; returns how many were applied. Each is persisted (with the progress
        past it) before the next is read."""
        applied = 0
        count = self.flow_entries = self.flow.entry_count()
        while (tx_seq := self.replayer.state.next_tx_seq) < count:
            info = self.flow.entry(tx_seq)
            entry = FlowEntry(tx_seq, info["sender"], info["tags"])
            data = None
            if self.replayer.needs_data(entry):
                if info["status"] != STATUS_FINALIZED:
                    self.waiting_for = tx_seq
                    return applied
                data = self.flow.fetch(info)
            result = self.replayer.apply(entry, data)
            applied += 1
            if self.on_replayed is not None:
                self.on_replayed(entry, result, count - tx_seq - 1)
        self.waiting_for = None
        return applied
